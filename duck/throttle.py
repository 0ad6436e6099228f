"""Abuse brakes every protocol listener shares: live connections per key.

Kept in memory per process (a live connection belongs to one process). Failed
logins are counted elsewhere: in the database, by the store's one login check
(duck/store/accounts/loginthrottle.py), so that every process sees every failure.
"""

from __future__ import annotations

from collections import defaultdict

import attrs


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
