"""IDLE (RFC 2177): updates pushed as the notifier wakes the session, until DONE.

The session waits for client input, its wake-ups (the selected mailbox's and the
NOTIFY feed's subscriptions), the IDLE deadline and server shutdown on one event
(the "bell", which each of them sets); wake-ups carry no payload, the session
reads the journal from its own position (so a merged or spurious wake-up never
loses or duplicates anything). One delivery wakes every session IDLE on the
mailbox, so what a wake-up costs per session is what the fan-out costs: a
nursery, tasks and cancel scopes per wake-up (what waiting on several things
usually takes) cost ~10x the event. IDLE ends after ``limits.IDLE_MAX``
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
from ..grammar.resp_codes import Code
from ..grammar.responses import Continuation
from .registry import command
from .states import AUTHENTICATED

#: Seconds after a failed journal read before IDLE reads again unasked.
JOURNAL_RETRY = 2.0

if TYPE_CHECKING:
    from duck.store import Subscription

    from ..context import CommandContext


class _Alarm:
    """The IDLE deadline and server shutdown, told through the bell in use."""

    def __init__(self) -> None:
        self.bell: trio.Event | None = None
        self.rang = False

    async def run(self, s: CommandContext, deadline: float) -> None:
        with trio.move_on_at(deadline):
            await s.ctx.shutdown.wait()
        self.rang = True
        if self.bell is not None:
            self.bell.set()


def _subscriptions(s: CommandContext) -> list[Subscription]:
    return [sub for sub in (s.subscription, s.notify.subscription if s.notify else None)
            if sub is not None]


@command(Idle, AUTHENTICATED)
async def idle(s: CommandContext, cmd: Idle) -> object:
    """``+ idling``, then untagged updates as they happen, until ``DONE``."""
    await s.send(Continuation("idling"))
    deadline = trio.current_time() + s.ctx.limits.idle_max
    alarm = _Alarm()
    result: list[object] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(alarm.run, s, deadline)
        try:
            result.append(await _idle(s, alarm))
        except Exception as exc:
            result.append(exc)  # re-raised outside the nursery, not as a group
        finally:
            nursery.cancel_scope.cancel()
            assert s.wire is not None
            s.wire.bell = None
            for sub in _subscriptions(s):
                sub.bell = None
    if isinstance(result[0], Exception):
        raise result[0]
    return result[0]


async def _idle(s: CommandContext, alarm: _Alarm) -> object:
    """The IDLE loop: updates, then the client's next line or a wait on the bell."""
    wire = s.wire
    assert wire is not None
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
            # A fresh bell for every wait (an event cannot be unset); whatever
            # happened since the last one is seen below, before waiting.
            bell = trio.Event()
            subs = _subscriptions(s)
            for sub in subs:
                sub.bell = bell
            wire.bell = alarm.bell = bell
            got = wire.poll()  # (StreamClosed at EOF)
            if got is not None:
                s.reader.receive_data(got)
                continue
            if any(sub.pending() for sub in subs):
                continue  # woken while the updates were sent
            if alarm.rang:
                if s.ctx.shutdown.is_set():
                    await s.bye("server shutting down", Code("UNAVAILABLE"))
                elif s.state is not State.LOGOUT:
                    await s.bye("IDLE for too long")
                return ANSWERED
            if s.journal_unread:
                # The last journal read failed (the database is away): try it
                # again in a while, as no wake-up may come for what it missed.
                with trio.move_on_after(JOURNAL_RETRY):
                    await bell.wait()
            else:
                await bell.wait()
            continue
        assert isinstance(line, bytes)
        if line.strip().upper() == b"DONE":
            return None
        raise bad("expected DONE")
