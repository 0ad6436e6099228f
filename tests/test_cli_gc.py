"""The serving process's collector settings (duck/cli.py, ``_tune_gc``; duck/mime/collector.py)."""

from __future__ import annotations

import gc

from duck import cli
from duck.mime import collector


def test_serving_process_collects_less_often_and_freezes_its_imports() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    try:
        cli._tune_gc()
        assert gc.get_threshold() == collector.THRESHOLDS
        # A young-generation pass far less often than Python's default of 700.
        assert collector.THRESHOLDS[0] >= 10 * 700
        # The objects alive at start-up (the imports) are out of the collector's walks.
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
