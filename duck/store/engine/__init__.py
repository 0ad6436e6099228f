"""The engine room: how documents and bytes reach the database.

Owns the connection and its store calls (``database``: inline on the trio thread
over ``wire`` and ``inline``, or in worker threads, ``threadpool``), the embedded
MongoDB-wire server (``embedded``), round-trip counters (``metrics``), collection
names and indexes (``schema``), id parsing (``ids``), the store's clock (``clock``),
BSON conversion of the MIME model (``convert``) and the GridFS store of large
message bodies, deduplicated and reference-counted (``bodies``).

May use: the store's vocabulary (``duck/store/errors.py``, ``models.py``,
``limits.py``) and ``duck.mime``. No other room: every room stands on this one.
"""
