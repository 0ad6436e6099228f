"""IDLE (RFC 2177): updates pushed as the notifier wakes the session, until DONE.

The wait covers client input and wake-ups at once; wake-ups carry no payload, the
session reads the journal from its own position (so a merged or spurious wake-up
never loses or duplicates anything). IDLE ends after ``limits.IDLE_MAX``
(RFC 2177 §3: clients re-issue it at least every 29 minutes) with a BYE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from .. import notifyfeed
from ..context import ANSWERED, State
from ..errors import bad
from ..grammar.cmd_any import Idle
from ..grammar.reader import NEED_DATA
from ..grammar.responses import Continuation
from ..wire import StreamClosed
from .registry import command
from .states import AUTHENTICATED

if TYPE_CHECKING:
    from ..context import CommandContext

_WOKEN = object()


async def _wait(s: CommandContext, deadline: float) -> object:
    """Client bytes, None (timeout/shutdown/close) or _WOKEN."""
    result: list[object] = [_WOKEN]
    async with trio.open_nursery() as nursery:

        async def read() -> None:
            try:
                result[0] = await s.receive(timeout=max(0.0, deadline - trio.current_time()))
            except StreamClosed as exc:
                result[0] = exc  # re-raised outside the nursery, not as a group
            nursery.cancel_scope.cancel()

        async def wake() -> None:
            # (The flags stay set: the update flush reads what was announced,
            # sharing the read other sessions here make for the same change.)
            await notifyfeed.wait_woken(s)
            nursery.cancel_scope.cancel()

        nursery.start_soon(read)
        nursery.start_soon(wake)
    if isinstance(result[0], StreamClosed):
        raise result[0]
    return result[0]


@command(Idle, AUTHENTICATED)
async def idle(s: CommandContext, cmd: Idle) -> object:
    """``+ idling``, then untagged updates as they happen, until ``DONE``."""
    await s.send(Continuation("idling"))
    deadline = trio.current_time() + s.ctx.limits.idle_max
    poll = True
    while True:
        if s.view is not None:
            await s.flush_updates(allow_expunge=True, poll=poll)
            poll = False
            if s.state is State.LOGOUT:
                return ANSWERED
        # RFC 5465: events of the other mailboxes named by NOTIFY.
        await notifyfeed.deliver(s)
        line = s.reader.next_line()
        if line is NEED_DATA:
            got = await _wait(s, deadline)
            if got is _WOKEN:
                continue
            if got is None:
                if s.state is not State.LOGOUT:
                    await s.bye("IDLE for too long")
                return ANSWERED
            assert isinstance(got, bytes)
            s.reader.receive_data(got)
            continue
        assert isinstance(line, bytes)
        if line.strip().upper() == b"DONE":
            return None
        raise bad("expected DONE")
