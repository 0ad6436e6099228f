"""Abuse brakes every protocol listener shares: live connections per key, and a
growing delay after failed logins per user name and per client address.

Kept in memory per process (they are brakes, not accounting): with several duck
processes behind a balancer each enforces its own share. One ``LoginThrottle``
serves IMAP and POP3 together (duck/server.py), so guessing passwords over one
protocol slows guesses over the other too.
"""

from __future__ import annotations

import time
from collections import defaultdict

import attrs
import trio

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

    async def before_login(self, username: str, peer: str) -> tuple[str, str]:
        """Wait out the delay earned by failed logins of this user name or from
        this address; the keys to pass to ``failed`` or ``succeeded``."""
        keys = (f"user:{username.lower()}", f"ip:{peer}")
        delay = self.delay(*keys)
        if delay:
            await trio.sleep(delay)
        return keys

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
