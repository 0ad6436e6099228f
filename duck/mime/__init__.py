"""duck.mime: the MIME model and the streaming indexer (stdlib and attrs only)."""

from duck.mime.events import Event, LargeBodyBytes, LargeBodyEnd, LargeBodyStart, SkeletonBytes
from duck.mime.indexer import MessageIndexer, parse_message
from duck.mime.model import (
    Address,
    Envelope,
    IndexedMessage,
    IndexerLimits,
    LargeBody,
    Part,
)

__all__ = [
    "Address",
    "Envelope",
    "Event",
    "IndexedMessage",
    "IndexerLimits",
    "LargeBody",
    "LargeBodyBytes",
    "LargeBodyEnd",
    "LargeBodyStart",
    "MessageIndexer",
    "Part",
    "SkeletonBytes",
    "parse_message",
]
