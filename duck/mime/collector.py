"""The cyclic collector's settings for duck's long-running processes: ``duck serve``
(duck/cli.py) and its parse workers (worker.py).

Python's default runs a young-generation pass every 700 allocations. Under a busy
IMAP load those passes took ~3% of the serving process's CPU (measured with
gc.callbacks under imaptest), ~0.7% with these thresholds; in a parse worker they
made one of imaptest's messages cost 0.65-0.81 ms of CPU against 0.58 ms (one
process, three rounds of 500). Cycles are rare on the hot paths, so the garbage
they hold until a pass stays small.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)


def settle() -> None:
    """Take what the process holds so far (its imports) out of the collector's walks
    (``gc.freeze``), and collect less often from now on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
