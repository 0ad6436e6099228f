"""POP3 (RFC 1939, RFC 2449 CAPA, RFC 5034 SASL, RFC 2595 STLS) on duck's store.

Laid out as LMTP is: ``protocol.py`` is the sans-IO machine (line framing with
caps, typed commands from ``commands.py``, replies from ``replies.py``, which
commands each state allows), ``maildrop.py`` the session's numbered message list
and its deletion marks, ``multiline.py`` the byte transforms of multi-line
replies (CRLF, dot-stuffing, TOP); ``server.py`` drives them over trio streams
against the interface in ``backend.py``, and ``store_backend.py`` implements that
interface on the store (authentication, the maildrop lease, reads and the
expunge at QUIT).
"""
