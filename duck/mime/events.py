"""Events the streaming indexer emits while it is fed.

Concatenating the ``data`` of every SkeletonBytes and LargeBodyBytes, in event
order, gives back the input bytes exactly. A large body is announced by
LargeBodyStart, carried by LargeBodyBytes and closed by LargeBodyEnd; the store
writes those bytes to a content-addressed blob and keeps only a reference in the
skeleton.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class SkeletonBytes:
    """Message bytes that stay in the skeleton."""

    data: bytes


@attrs.frozen
class LargeBodyStart:
    """A leaf body larger than the threshold starts at `offset` of the message."""

    section: tuple[int, ...]
    offset: int


@attrs.frozen
class LargeBodyBytes:
    """The next bytes of the current large body."""

    data: bytes


@attrs.frozen
class LargeBodyEnd:
    """The current large body ended: `size` octets, SHA-256 of the raw bytes."""

    section: tuple[int, ...]
    size: int
    sha256: str


Event = SkeletonBytes | LargeBodyStart | LargeBodyBytes | LargeBodyEnd
