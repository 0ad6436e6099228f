"""The store's clock: times as BSON keeps them."""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    """The current time in UTC, at the millisecond precision BSON keeps."""
    t = dt.datetime.now(dt.UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)
