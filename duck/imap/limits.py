"""IMAP's per-process limits: connections per user and per IP (the counters are
shared with POP3: duck/throttle.py), and IMAP's timers. Failed logins are counted
in the database by the store, across processes (store/accounts/loginthrottle.py).
"""

from __future__ import annotations

import attrs

from ..throttle import ConnectionCounter

__all__ = ["ConnectionCounter", "ServerLimits"]

#: RFC 3501 §5.4: the autologout timer is at least 30 minutes once authenticated.
AUTOLOGOUT = 30 * 60.0
#: Before authentication a shorter timer applies (§5.4 constrains only the one
#: after it): idle unauthenticated connections are what connection floods are.
PREAUTH_TIMEOUT = 120.0
#: RFC 2177 §3: clients re-issue IDLE at least every 29 minutes; we end it at 30.
IDLE_MAX = 30 * 60.0
MAX_CONNECTIONS_PER_IP = 64
MAX_CONNECTIONS_PER_USER = 32
#: Literal cap before authentication (LOGIN/AUTHENTICATE need no more).
PREAUTH_LITERAL_MAX = 8 * 1024


@attrs.define
class ServerLimits:
    """The limits one IMAP listener set shares."""

    per_ip: ConnectionCounter = attrs.Factory(lambda: ConnectionCounter(MAX_CONNECTIONS_PER_IP))
    per_user: ConnectionCounter = attrs.Factory(
        lambda: ConnectionCounter(MAX_CONNECTIONS_PER_USER)
    )
    autologout: float = AUTOLOGOUT
    preauth_timeout: float = PREAUTH_TIMEOUT
    idle_max: float = IDLE_MAX
