"""The push room: every change, in order, to whoever is listening.

Owns the journal of mailbox changes keyed by (mailbox, modseq) (``journal``), the
notifier that wakes sessions in every process (``notify``), the per-user change
feed behind the SSE stream (``events``) and webhook subscriptions and deliveries
(``webhooks``).

May use: ``engine`` and the store's vocabulary. The write side (``mail``) writes
journal entries in its transactions by calling down into this room; nothing here
writes mail.
"""
