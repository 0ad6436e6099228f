"""The mail room: the write side, where mailboxes and messages change.

Owns mailboxes (``mailboxes``), delivery, APPEND, COPY, MOVE and EXPUNGE
(``messages``), flag changes (``flags``), streaming ingestion of new messages
(``ingest``) and building their documents (``documents``). Each change is one
transaction that also keeps the digest (``index``), the journal (``push``) and the
quota (``accounts``) true.

May use: ``accounts``, ``index``, ``push``, ``engine`` and the store's vocabulary.
Only the top of the store (``store.py``, ``admin.py``, ``__init__.py``) sits above it.
"""
