"""A query's documents a page at a time, over one cursor: how a background pass
steps through a collection.

Paging by a range (``_id > last``, sorted, limited) looks cheaper than it is on the
embedded Rust engine: a range filter there reads the whole collection (measured:
~47 ms a page at 20k bodies, ~190 ms for the next mailbox id at 20k messages), so
a pass would cost the square of the collection. One cursor reads each document
once: a ``getMore`` per page, each page a worker-thread call of its own so that the
caller can pause between pages.
"""

from __future__ import annotations

import itertools
from typing import Any


class Pages:
    """Pages of ``size`` documents of a cursor (made with ``batch_size=size``)."""

    def __init__(self, cursor: Any, size: int) -> None:
        self._cursor = cursor
        self.size = size

    def next_page(self) -> list[dict[str, Any]] | None:
        """The next page, or None when there is none (blocking: one round trip)."""
        page = list(itertools.islice(self._cursor, self.size))
        return page or None

    def close(self) -> None:
        """Let the server forget the cursor (blocking; a no-op once exhausted)."""
        self._cursor.close()


def pages(collection: Any, filter_: dict[str, Any], projection: dict[str, Any] | None,
          size: int, hint: str | None = None) -> Pages:
    """``collection.find(filter_, projection)`` a page of ``size`` at a time (on the
    index named ``hint``, when given)."""
    return Pages(collection.find(filter_, projection, batch_size=size, hint=hint), size)
