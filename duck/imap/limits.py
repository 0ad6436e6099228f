"""Per-process limits: connections per user and per IP, and failed-login delays.

Kept in memory per process (they are abuse brakes, not accounting): with several
duck processes behind a balancer each enforces its own share.
"""

from __future__ import annotations

import time
from collections import defaultdict

import attrs

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
#: Failed-login delay: BASE * 2**(failures-1) seconds, at most MAX; forgotten after
#: FORGET seconds without a failure.
DELAY_BASE = 0.25
DELAY_MAX = 15.0
FORGET = 15 * 60.0
#: Bound on the number of keys the throttle remembers (every buffer has a cap).
MAX_TRACKED = 100_000


@attrs.define
class ConnectionCounter:
    """Counts live connections per key and refuses beyond ``limit``."""

    limit: int
    counts: dict[str, int] = attrs.Factory(lambda: defaultdict(int))

    def try_acquire(self, key: str) -> bool:
        """Take a slot for ``key``; False when the limit is reached."""
        if self.counts[key] >= self.limit:
            return False
        self.counts[key] += 1
        return True

    def release(self, key: str) -> None:
        """Give a slot back."""
        n = self.counts.get(key, 0) - 1
        if n <= 0:
            self.counts.pop(key, None)
        else:
            self.counts[key] = n


@attrs.define
class LoginThrottle:
    """Failed logins per user name and per IP, each growing a delay."""

    failures: dict[str, tuple[int, float]] = attrs.Factory(dict)
    clock: object = time.monotonic

    def _now(self) -> float:
        return self.clock()  # type: ignore[operator,no-any-return]

    def delay(self, *keys: str) -> float:
        """Seconds to wait before answering a login attempt for these keys."""
        now = self._now()
        worst = 0
        for key in keys:
            n, last = self.failures.get(key, (0, 0.0))
            if n and now - last > FORGET:
                self.failures.pop(key, None)
                n = 0
            worst = max(worst, n)
        return 0.0 if worst == 0 else min(DELAY_BASE * 2 ** (worst - 1), DELAY_MAX)

    def failed(self, *keys: str) -> None:
        """Record a failure for each key."""
        now = self._now()
        if len(self.failures) >= MAX_TRACKED:
            # Drop the stalest entries rather than grow without bound.
            for key, _ in sorted(self.failures.items(), key=lambda kv: kv[1][1])[
                : MAX_TRACKED // 10
            ]:
                del self.failures[key]
        for key in keys:
            n, _ = self.failures.get(key, (0, 0.0))
            self.failures[key] = (n + 1, now)

    def succeeded(self, *keys: str) -> None:
        """Forget failures of the user name (the IP keeps its record)."""
        for key in keys:
            self.failures.pop(key, None)


@attrs.define
class ServerLimits:
    """The limits one IMAP listener set shares."""

    per_ip: ConnectionCounter = attrs.Factory(lambda: ConnectionCounter(MAX_CONNECTIONS_PER_IP))
    per_user: ConnectionCounter = attrs.Factory(
        lambda: ConnectionCounter(MAX_CONNECTIONS_PER_USER)
    )
    throttle: LoginThrottle = attrs.Factory(LoginThrottle)
    autologout: float = AUTOLOGOUT
    preauth_timeout: float = PREAUTH_TIMEOUT
    idle_max: float = IDLE_MAX
