"""Document ids as the store's callers name them: 24 hex digits."""

from __future__ import annotations

from bson import ObjectId
from bson.errors import InvalidId

from ..errors import NotFound


def parse_id(value: str) -> ObjectId:
    """A 24-hex id as an ObjectId, or :class:`NotFound` (an invalid id names nothing)."""
    try:
        return ObjectId(value)
    except (InvalidId, TypeError) as exc:
        raise NotFound("no such id") from exc
