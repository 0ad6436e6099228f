"""LMTP delivery (RFC 2033): a sans-IO protocol machine and a trio server.

Sans-IO, importing neither trio nor the store: ``replies``, ``address``,
``events``, ``commands``, ``dotstuff``, ``protocol``, ``backend``.
With I/O: ``server`` (``serve_lmtp``, ``LmtpServer``).
The store plugs in by implementing ``backend.LmtpBackend``.
"""
