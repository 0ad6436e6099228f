"""A portable rendering for tests/store/test_parsers.py: the id of the process that
made it, which tells a parse worker's from the caller's."""

from __future__ import annotations

import os
from typing import Any


def render(message: Any) -> dict[str, bytes]:
    """The rendering ``pid``: this process's id."""
    return {"pid": str(os.getpid()).encode()}
