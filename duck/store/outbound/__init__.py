"""The outbound room: mail duck itself sends (Sieve redirect, vacation replies).

Owns the durable outbound queue (``queue``: accepted messages waiting for the
relay, claimed by one sender at a time across processes) and the vacation
memory (``vacation``: "this user answered this sender for this handle", with an
expiry). Sending is not here: the SMTP client and the sender task live in
``duck/outbound`` and use this room through ``store.outbound``.

May use: ``engine`` and the store's vocabulary. Only the top of the store sits
above it.
"""
