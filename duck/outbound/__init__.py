"""Outbound mail: what duck sends itself (Sieve redirect, vacation replies).

- ``autoreply``: pure rules and builders (RFC 3834, RFC 5230, redirect loops);
  imports nothing of trio or pymongo, so any layer may use it.
- ``smtp``: a blocking SMTP client for the relay (smtplib; run in a worker
  thread).
- ``sender``: the trio task that claims due messages from the store's outbound
  queue (``store.outbound``) and sends them through the relay; ``duck serve``
  runs one per process when ``smtp_relay`` is set.

This package sits beside the protocols: it uses the store's public API and
never imports pymongo or a protocol package.
"""
