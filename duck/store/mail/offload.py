"""An APPEND's message made ready in a worker process: its parse, its renderings and
its document.

Why: under load an IMAP process is held back by its event loop's thread, where every
session's work runs; the embedded database and the machine's other cores have room.
An APPEND's MIME parse, its renderings (ENVELOPE, BODYSTRUCTURE, the SORT keys) and
its uid-independent document are pure CPU on bytes already in memory: measured under
imaptest's mix, an eighth of that thread's time. A worker process does them while
the loop serves other sessions, and the loop pays the hand-off: the bytes pickled
there and the document back (~0.3 ms of its CPU on a machine where the parse is
~1.5 ms). The parse also leaves the user's lock, which the APPEND takes only for
its transaction.

Which messages: those no larger than the indexer's large-body threshold. Such a
message has no body to stream to GridFS (a leaf body over the threshold cannot fit
in it), so its whole ingest is a function of its bytes (``ingest.ingest_alone``);
a larger one is ingested in the serving process as before, its large bodies written
out as they are parsed.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio_parallel

from duck.mime.model import IndexedMessage, IndexerLimits

from . import documents
from .ingest import ingest_alone

log = logging.getLogger(__name__)

#: Seconds a worker process waits for work before it ends (a day: a process that
#: APPENDs at all keeps its workers, and a first APPEND after a quiet night does
#: not wait for one to start).
IDLE_TIMEOUT = 24 * 3600.0
#: Worker failures in a row after which a process parses its APPENDs itself.
FAILURES = 3
#: Computes a message's rendering (see ``Messages.register_renderer``).
Renderer = Callable[[IndexedMessage], bytes | None]


def render_all(renderers: Mapping[str, Renderer], message: IndexedMessage
               ) -> dict[str, bytes]:
    """Every rendering of ``message`` by name (a failing renderer is logged and
    skipped: the rendering is made at the first FETCH instead)."""
    out: dict[str, bytes] = {}
    for name, renderer in renderers.items():
        try:
            value = renderer(message)
        except Exception:
            log.exception("renderer %s failed", name)
            continue
        if value is not None:
            out[name] = value
    return out


def message_document(data: bytes, limits: IndexerLimits,
                     renderers: Mapping[str, Renderer]) -> dict[str, Any]:
    """The uid-independent document of one stored copy of ``data`` (a message with no
    large body), with its renderings: what ``Messages.append`` makes of it inline."""
    ingested = ingest_alone(data, limits)
    base = documents.content(ingested)
    rendered = render_all(renderers, ingested.message)
    if rendered:
        base["render"] = rendered
    return base


def _warm() -> None:
    """Run in each worker as it starts: the imports a first job would pay for."""
    message_document(b"Subject: warm\r\n\r\nwarm\r\n", IndexerLimits(), {})


class Offload:
    """Worker processes that make APPENDed messages' documents (``processes`` at
    most at once); open with ``open_offload``."""

    def __init__(self, context: trio_parallel.WorkerContext, processes: int) -> None:
        self._context = context
        self._limiter = trio.CapacityLimiter(processes)
        #: Failures of the workers in a row (a worker that died, one that could not
        #: be started); at FAILURES the process stops asking them.
        self._failures = 0
        #: The renderers last checked, and whether they can be sent to a worker.
        self._checked: tuple[tuple[tuple[str, Renderer], ...], bool] = ((), True)

    def takes(self, size: int, limits: IndexerLimits,
              renderers: Mapping[str, Renderer]) -> bool:
        """Whether a message of ``size`` octets, to be rendered by ``renderers``, is
        made ready here."""
        return (self._failures < FAILURES and size <= limits.large_body_threshold
                and self._portable(renderers))

    def _portable(self, renderers: Mapping[str, Renderer]) -> bool:
        """Whether ``renderers`` can be sent to a worker (functions and objects of a
        module can; a lambda or a closure cannot, and is called here)."""
        key = tuple(renderers.items())
        if key != self._checked[0]:
            try:
                pickle.dumps(dict(renderers))
                portable = True
            except Exception:  # (PicklingError, AttributeError, TypeError)
                portable = False
            self._checked = (key, portable)
        return self._checked[1]

    async def message_document(self, data: bytes, limits: IndexerLimits,
                               renderers: Mapping[str, Renderer]) -> dict[str, Any] | None:
        """``message_document`` in a worker process; None when the worker died or
        could not be started (the caller makes it itself)."""
        try:
            made = await self._context.run_sync(message_document, data, limits,
                                                dict(renderers), limiter=self._limiter)
        except (trio_parallel.BrokenWorkerError, OSError) as exc:
            self._failed(exc)
            return None
        self._failures = 0
        return made

    def _failed(self, exc: BaseException) -> None:
        self._failures += 1
        log.warning("an APPEND's worker process failed (%s)%s", exc,
                    "; parsing in this process from now on"
                    if self._failures == FAILURES else "")

    async def warm(self) -> None:
        """Start the workers now rather than at the first APPENDs."""
        async with trio.open_nursery() as nursery:
            for _ in range(int(self._limiter.total_tokens)):
                nursery.start_soon(self._warm_one)

    async def _warm_one(self) -> None:
        try:
            await self._context.run_sync(_warm, limiter=self._limiter)
        except (trio_parallel.BrokenWorkerError, OSError) as exc:
            self._failed(exc)


@asynccontextmanager
async def open_offload(processes: int) -> AsyncIterator[Offload | None]:
    """Worker processes for APPENDs, ``processes`` at most (None for 0: APPENDs
    parse in this process); they end with the block."""
    if processes <= 0:
        yield None
        return
    async with trio_parallel.open_worker_context(idle_timeout=IDLE_TIMEOUT) as context:
        yield Offload(context, processes)
