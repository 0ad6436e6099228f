"""The fault-injection soak: the whole system under load while it fails.

An embedded database and two ``duck serve`` processes on it; IMAP clients
(APPEND, STORE, COPY, MOVE, EXPUNGE, IDLE), LMTP deliveries and HTTP API changes
against both at once, with SSE readers and IDLE sessions watching; at random
moments a ``duck serve`` or the database is SIGKILLed and restarted. Checkpoints
verify that nothing acknowledged was lost or repeated and that every counter and
every push channel agrees with the message documents (bench/soak/verify.py).

    python -m bench.soak --minutes 30 [--seed N] [--fault-interval S]
"""
