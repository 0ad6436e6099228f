"""Progress on stderr: a rich progress bar on a terminal, else a line now and then
(a log file or a pipe gets a readable record, not redraw sequences)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

#: Seconds between two plain progress lines.
PLAIN_EVERY = 5.0


class Reporter:
    """``with Reporter("import") as r: r.start(total); r.advance(n)`` (thread-safe
    enough for one writer: advance is called from one task or thread at a time)."""

    def __init__(self, label: str, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.total: int | None = None
        self.done = 0
        self._bar: Progress | None = None
        self._task: object = None
        self._last = 0.0

    def __enter__(self) -> Reporter:
        if not self.quiet and self.stream.isatty():
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeRemainingColumn(),
                                 console=Console(file=self.stream), transient=False)
            self._bar.start()
        return self

    def start(self, total: int | None) -> None:
        """Set the expected number of items (None: unknown)."""
        self.total = total
        if self._bar is not None:
            self._task = self._bar.add_task(self.label, total=total)
        self._last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        """``n`` more items done."""
        self.done += n
        if self._bar is not None:
            if self._task is None:
                self.start(None)
            self._bar.update(self._task, advance=n)  # type: ignore[arg-type]
        elif not self.quiet and time.monotonic() - self._last >= PLAIN_EVERY:
            self._last = time.monotonic()
            self._line()

    def _line(self) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        print(f"duck {self.label}: {self.done}{of}", file=self.stream, flush=True)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif not self.quiet:
            self._line()
