"""duck's IMAP server: sessions (session.py), one module per command family
(commands/), the selected-mailbox view (view.py), the listeners (server.py).

Deliberate differences from RFC 3501, each also commented where it is made:

- \\Recent in an EXAMINEd mailbox: EXAMINE and STATUS RECENT report the messages no
  session has taken without taking them (§6.3.2, §6.3.10), and messages arriving
  later are not shown \\Recent in that session (it takes none; a later SELECT will).
- A FETCH (non-UID) that names a message another session expunged since the last
  update returns its data when this process still has it (the record cache), else
  nothing for it, and completes OK (RFC 2180 §4.1.2 allows either).
- After a SELECT (QRESYNC ...), VANISHED (EARLIER) lists every known UID that no
  longer exists, not only those expunged after the client's modseq (RFC 7162 §3.2.5).
- When the selected mailbox is deleted by another session the session ends with
  BYE [NONEXISTENT] rather than continuing in an undefined state.
- INTERNALDATE is returned in UTC (the instant is kept, the client's zone is not).
- An APPEND literal is held in memory (up to APPENDLIMIT) before it is stored;
  FETCH bodies are streamed from the store.
"""
