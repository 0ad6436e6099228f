"""``GET /users/{user}/updates``: the user's changes as Server-Sent Events.

Each event's id is the change-feed cursor after it (``store.events``: the last
modseq delivered per mailbox), so a client reconnecting with ``Last-Event-ID``
gets exactly what it has not seen, from any process, for as long as the journal
keeps it. Events are read from the journal only as fast as the client takes them: a
producer task fills a bounded buffer (``buffer`` events) that the response
drains, so a slow client costs at most that much memory, never a growing queue;
one that leaves the buffer full for ``send_timeout`` seconds is dropped (it
reconnects with its last id and loses nothing).

Wake-ups come from the notifier (change streams reach every process). Several
streams of one user in this process share one journal read per wake-up (a
"flight"): a stream joins a read in progress only if that read started after the
wake-up that woke the stream was published, which the per-user publish counter
``_Gen`` tells; otherwise it starts a new read. So 1,000 tabs of one user cost
one read per change, not 1,000. A read's events are rendered once for all of
them, into chunks of bytes of up to ``CHUNK_EVENTS`` events each: a change costs
each stream one hand-over through its buffer, the response and the HTTP server
(a delivery's events, ``message.new`` and ``mailbox.counters``, one chunk), not
one per event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import trio
from sse_starlette.sse import EventSourceResponse, SendTimeoutError, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from ..store import Cursor, FeedBatch, InvalidInput, Notifier, Store, Subscription, user_key
from .bodies import ApiError, path_id
from .common import store_errors, store_of
from .convert import user_event
from .routing import Endpoint

log = logging.getLogger(__name__)

#: Most events in one chunk handed to a stream (its buffer counts chunks).
CHUNK_EVENTS = 16


@attrs.define
class _Flight:
    gen: int
    t: int
    done: trio.Event = attrs.Factory(trio.Event)
    result: FeedBatch | None = None
    #: The batch's events rendered once for every stream that shares the read.
    rendered: list[_Chunk] = attrs.Factory(list)


@attrs.frozen
class _Chunk:
    """Consecutive events encoded as one piece of the stream, and how many."""

    data: bytes
    events: int


@attrs.define
class _Gen:
    """A per-user publish counter: one subscription whose wake count is read."""

    sub: Subscription
    streams: int = 0


@attrs.define
class SseHub:
    """Live SSE streams of this process: caps, shared reads, statistics."""

    heartbeat: float = 15.0
    #: Seconds a client may leave its buffer full before it is dropped.
    send_timeout: float = 30.0
    #: Events buffered per stream (beyond the socket's own buffers).
    buffer: int = 256
    max_per_user: int = 256
    max_streams: int = 10000
    streams: int = 0
    dropped: int = 0
    reads: int = 0
    shared_reads: int = 0
    events_sent: int = 0
    _gens: dict[str, _Gen] = attrs.Factory(dict)
    _flights: dict[tuple[str, tuple[tuple[str, int], ...]], _Flight] = attrs.Factory(dict)
    #: The producers of open streams (cancelled by ``close``).
    _producers: set[trio.CancelScope] = attrs.Factory(set)
    closed: bool = False
    #: The open streams' subscriptions, which ``run`` wakes every heartbeat.
    _subs: set[Subscription] = attrs.Factory(set)
    #: ``run``'s scope while it runs (streams then need no timer of their own).
    _ticker: trio.CancelScope | None = None
    _ticking: bool = False

    async def run(self) -> None:
        """Wake every stream every ``heartbeat`` seconds (for its periodic re-read)
        until ``close``: one timer for all of them, where a timer per stream and
        wake-up (a cancel scope with a deadline) is a fair share of what a
        change costs each of 1,000 streams. Started with the first stream, as a
        trio system task (it belongs to no request; ``close`` or the end of the
        run stops it)."""
        with trio.CancelScope() as scope:
            self._ticker = scope
            if self.closed:
                scope.cancel()
            try:
                while True:
                    await trio.sleep(self.heartbeat)
                    for sub in list(self._subs):
                        sub.poke()
            finally:
                self._ticker = None

    def close(self) -> None:
        """End every stream now (server shutdown): a stream never ends by itself,
        and the HTTP server would otherwise wait its whole grace period for it.
        Clients reconnect elsewhere with their last event id and lose nothing."""
        self.closed = True
        if self._ticker is not None:
            self._ticker.cancel()
        if self._producers:
            log.info("closing %d update stream(s)", len(self._producers))
        for scope in list(self._producers):
            scope.cancel()

    def statistics(self) -> dict[str, int]:
        """Streams open, dropped, journal reads made and shared, events sent."""
        return {"streams": self.streams, "dropped": self.dropped, "reads": self.reads,
                "shared_reads": self.shared_reads, "events_sent": self.events_sent,
                "users": len(self._gens)}

    def _enter(self, notifier: Notifier, user_id: str) -> _Gen:
        gen = self._gens.get(user_id)
        if self.streams >= self.max_streams or (gen and gen.streams >= self.max_per_user):
            raise ApiError(429, "TooManyStreams", "too many update streams")
        if not self._ticking and not self.closed:
            self._ticking = True
            trio.lowlevel.spawn_system_task(self.run)
        if gen is None:
            gen = self._gens[user_id] = _Gen(notifier.subscribe(user_key(user_id)))
        gen.streams += 1
        self.streams += 1
        return gen

    def _leave(self, user_id: str) -> None:
        self.streams -= 1
        gen = self._gens[user_id]
        gen.streams -= 1
        if gen.streams == 0:
            gen.sub.close()
            del self._gens[user_id]

    async def read(self, store: Store, user_id: str, cursor: Cursor, woken: int
                   ) -> tuple[FeedBatch, list[_Chunk]]:
        """The changes after ``cursor`` (and their rendering), from a read that
        started after wake-up number ``woken``."""
        # Streams opened at different times have different cursor times: the key
        # leaves the time out, and a stream joins a read that looks back at least
        # as far as it would itself (a flight's time is not later than ours).
        key = (user_id, tuple(sorted(cursor.modseqs.items())))
        flight = self._flights.get(key)
        if flight is not None and flight.gen >= woken and flight.t <= cursor.t:
            await flight.done.wait()
            if flight.result is not None:
                self.shared_reads += 1
                return flight.result, flight.rendered
        flight = _Flight(self._gens[user_id].sub.wakeups, cursor.t)
        self._flights[key] = flight
        try:
            self.reads += 1
            batch = await store.events.read(user_id, cursor)
            events = [_sse(e.kind, e.cursor, user_event(user_id, e)) for e in batch.events]
            if batch.resync:
                # The cursor is older than the journal: the client reloads what it
                # shows (the API's lists) and goes on from this event's id.
                events = [_sse("resync", batch.cursor, {
                    "user": user_id, "reason": "the cursor is older than the journal"})]
            flight.rendered = _chunks(events)
            flight.result = batch
            return batch, flight.rendered
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.done.set()


def _chunks(events: list[ServerSentEvent]) -> list[_Chunk]:
    """The events encoded, ``CHUNK_EVENTS`` to a chunk."""
    return [_Chunk(b"".join(e.encode() for e in events[i:i + CHUNK_EVENTS]),
                   len(events[i:i + CHUNK_EVENTS]))
            for i in range(0, len(events), CHUNK_EVENTS)]


def _sse(name: str, cursor: Cursor, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(json.dumps(data, separators=(",", ":"), ensure_ascii=False),
                           event=name, id=cursor.encode())


async def _produce(hub: SseHub, store: Store, user_id: str, cursor: Cursor,
                   sub: Subscription, gen: _Gen, send: trio.MemorySendChannel[bytes],
                   release: Callable[[], None]) -> None:
    """Read the feed into the stream's bounded buffer; give up on a client that
    leaves it full for ``send_timeout`` seconds; stop at once when the hub closes."""
    scope = trio.CancelScope()
    hub._producers.add(scope)
    if hub.closed:
        scope.cancel()
    try:
        with scope:
            await _stream(hub, store, user_id, cursor, sub, gen, send)
    finally:
        hub._producers.discard(scope)
        release()


async def _stream(hub: SseHub, store: Store, user_id: str, cursor: Cursor,
                  sub: Subscription, gen: _Gen,
                  send: trio.MemorySendChannel[bytes]) -> None:
    """``_produce``'s loop: events into the buffer until the client lags or leaves."""

    async def put(chunk: bytes) -> bool:
        try:
            send.send_nowait(chunk)  # (the usual case: no timer to set up)
            return True
        except trio.WouldBlock:
            pass
        with trio.move_on_after(hub.send_timeout):
            await send.send(chunk)
            return True
        return False

    async with send:
        # The first event tells a fresh client its position, so that even a
        # reconnect before any change resumes from here.
        if not await put(_sse("ready", cursor, {"user": user_id}).encode()):
            return
        woken = gen.sub.wakeups
        while True:
            batch, rendered = await hub.read(store, user_id, cursor, woken)
            for chunk in rendered:
                if not await put(chunk.data):
                    hub.dropped += 1
                    log.info("SSE stream of %s dropped: the client stopped reading",
                             user_id)
                    return
                hub.events_sent += chunk.events
            cursor = batch.cursor
            if batch.more:
                continue
            # A read is repeated at least every heartbeat: a gap in a mailbox's
            # modseqs (a writer that died after allocating) is stepped over by
            # time (journal.GAP_GRACE) and wakes nobody.
            if hub._ticker is not None:
                await sub.wait()
            else:
                with trio.move_on_after(hub.heartbeat):
                    await sub.wait()
            woken = gen.sub.wakeups


async def _drain(receive: trio.MemoryReceiveChannel[bytes]) -> AsyncIterator[bytes]:
    async with receive:
        async for event in receive:
            yield event


async def updates(request: Request) -> Response:
    """The SSE stream of the user's changes (``Last-Event-ID`` resumes)."""
    user_id = path_id(request, "user")
    store = store_of(request)
    state = request.app.state.duck
    hub: SseHub = state.sse
    notifier: Notifier | None = state.notifier
    if notifier is None:
        raise ApiError(503, "Unavailable", "the notifier is not ready")
    last = request.headers.get("last-event-id") or request.query_params.get("since")
    with store_errors("user"):
        await store.users.get(user_id)
    # Subscribe before reading the position: a change in between wakes us.
    gen = hub._enter(notifier, user_id)
    sub = notifier.subscribe(user_key(user_id))
    hub._subs.add(sub)
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            hub._subs.discard(sub)
            sub.close()
            hub._leave(user_id)

    try:
        if last:
            try:
                cursor = Cursor.decode(last)
            except InvalidInput as exc:
                raise ApiError(400, "InvalidCursor", "invalid field Last-Event-ID") from exc
        else:
            with store_errors("user"):
                cursor = await store.events.current(user_id)
    except BaseException:
        release()
        raise

    # The stream's buffer: the producer below fills it, the response drains it.
    # Hypercorn shields its socket writes from cancellation, so a send timeout in
    # the response cannot fire; the bound is enforced here instead. It holds
    # chunks, about ``hub.buffer`` events' worth.
    send, receive = trio.open_memory_channel[bytes](max(1, hub.buffer // CHUNK_EVENTS))

    async def producer() -> None:
        await _produce(hub, store, user_id, cursor, sub, gen, send, release)

    response = EventSourceResponse(
        _drain(receive), data_sender_callable=producer,
        # (No send timeout of its own: ``_stream`` enforces it, see above; one
        # would be a timer per chunk and stream.)
        ping=hub.heartbeat, send_timeout=None,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
    return _StreamResponse(response, hub, release)


class _StreamResponse(Response):
    """Counts streams dropped for not reading; releases the stream however it ends."""

    def __init__(self, inner: EventSourceResponse, hub: SseHub,
                 release: Callable[[], None]) -> None:
        self._inner = inner
        self._hub = hub
        self._release = release
        self.status_code = inner.status_code

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self._inner(scope, receive, send)
        except SendTimeoutError:
            self._hub.dropped += 1
            log.info("SSE stream dropped: the client stopped reading")
        finally:
            self._release()


endpoints = [
    Endpoint("GET", "/users/{user}/updates", updates,
             "Stream the user's changes (Server-Sent Events)", "push",
             produces="text/event-stream", errors=(404, 429), access="user"),
]
