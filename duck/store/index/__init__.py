"""The index room: the read side of mail.

Owns what answers FETCH and SEARCH without rewriting anything: the message
document's layout and indexes as read (``layout``), the typed query model and its
compilation to MongoDB (``query``), the per-mailbox digest (``digest``) and the
searches answered from it (``digestsearch``), the optional trigram index
(``textindex``), FETCH reads of summaries and records (``fetch``) and byte-exact
section reads (``reader``).

May use: ``engine`` and the store's vocabulary. The write side (``mail``) keeps the
digest current inside its own transactions by calling down into this room.
"""
