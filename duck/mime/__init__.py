"""duck.mime: the MIME model and the streaming indexer (stdlib and attrs only)."""

from duck.mime.bodystructure import BodyStructure, body_structure
from duck.mime.events import Event, LargeBodyBytes, LargeBodyEnd, LargeBodyStart, SkeletonBytes
from duck.mime.indexer import IndexerStatistics, MessageIndexer, parse_message
from duck.mime.model import (
    Address,
    Envelope,
    IndexedMessage,
    IndexerLimits,
    LargeBody,
    Part,
)
from duck.mime.sections import (
    HEADER,
    HEADER_FIELDS,
    HEADER_FIELDS_NOT,
    MIME,
    TEXT,
    HeaderFields,
    SectionSpec,
    filter_header_fields,
    join_header_fields,
    resolve_part,
    section_bytes,
    section_range,
    split_header_fields,
)

__all__ = [
    "HEADER",
    "HEADER_FIELDS",
    "HEADER_FIELDS_NOT",
    "MIME",
    "TEXT",
    "Address",
    "BodyStructure",
    "Envelope",
    "Event",
    "HeaderFields",
    "IndexedMessage",
    "IndexerLimits",
    "IndexerStatistics",
    "LargeBody",
    "LargeBodyBytes",
    "LargeBodyEnd",
    "LargeBodyStart",
    "MessageIndexer",
    "Part",
    "SectionSpec",
    "SkeletonBytes",
    "body_structure",
    "filter_header_fields",
    "join_header_fields",
    "parse_message",
    "resolve_part",
    "section_bytes",
    "section_range",
    "split_header_fields",
]
