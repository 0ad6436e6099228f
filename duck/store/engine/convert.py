"""The one cattrs converter between the MIME model and BSON documents.

Defaults are omitted so that a message with thousands of parts stays well under
MongoDB's 16 MB document limit; tuples become arrays and come back as tuples.
"""

from __future__ import annotations

from typing import Any, TypeVar

import cattrs

from duck.mime.model import Envelope, Part

T = TypeVar("T")

converter = cattrs.Converter(omit_if_default=True)


def to_bson(value: Any) -> Any:
    """Unstructure an attrs value into plain BSON-able data."""
    return converter.unstructure(value)


def from_bson(data: Any, cls: type[T]) -> T:
    """Structure BSON data back into ``cls``."""
    return converter.structure(data, cls)


def part_from_bson(data: Any) -> Part:
    """A stored MIME part tree."""
    return converter.structure(data, Part)


def envelope_from_bson(data: Any) -> Envelope:
    """A stored envelope."""
    return converter.structure(data, Envelope)
