"""Delivery of NOTIFY events for mailboxes other than the selected one (RFC 5465 §5).

A session with a NOTIFY set subscribes to its user's wake-up key and, when woken,
reads the user's change feed (``store.events``, the reader the push stream uses)
from its own cursor. Message events become one untagged STATUS per mailbox with
the items the events imply (§5.1-5.3); mailbox creation, deletion and renaming
become LIST responses (§5.4, OLDNAME for a rename). The selected mailbox's own
changes are the session's ordinary updates (EXISTS, EXPUNGE, FETCH).

What is queued per session is capped: a backlog larger than :data:`MAX_QUEUED`
responses (or a journal gap) ends notification with ``* OK
[NOTIFICATIONOVERFLOW]`` (§5.8), after which the client re-synchronises itself.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from duck.store import DELIMITER, Cursor, Mailbox, StoreError, UserEvent, user_key

from .grammar.cmd_mailbox import StatusItem
from .grammar.resp_codes import Code
from .grammar.responses import ListData, StatusData, UntaggedStatus
from .notifications import NotifySet, status_items
from .wire import StreamClosed

if TYPE_CHECKING:
    from duck.store import Subscription

    from .context import CommandContext

log = logging.getLogger(__name__)

#: Untagged responses one wake-up may produce before the set overflows.
MAX_QUEUED = 1000

_MESSAGE_EVENTS = {"message.new": "MessageNew", "message.deleted": "MessageExpunge",
                   "message.flags": "FlagChange"}


class NotifyFeed:
    """A session's NOTIFY SET with its position in the user's change feed."""

    def __init__(self, notify_set: NotifySet, subscription: Subscription | None,
                 cursor: Cursor | None, mailboxes: list[Mailbox],
                 subscribed: set[str] | None = None) -> None:
        self.set = notify_set
        #: Subscribed names at SET time, for the SUBSCRIBED filter. (Changes
        #: after it are not followed: SUBSCRIBE is not in the journal.)
        self.subscribed = subscribed or set()
        self.subscription = subscription
        self.cursor = cursor
        #: What the session knows of each mailbox: id -> (path, UIDVALIDITY).
        self.known: dict[str, tuple[str, int]] = {
            m.id: (m.path, m.uid_validity) for m in mailboxes}

    def close(self) -> None:
        """Stop the wake-ups."""
        if self.subscription is not None:
            self.subscription.close()
            self.subscription = None


async def start(s: CommandContext, notify_set: NotifySet,
                mailboxes: list[Mailbox]) -> NotifyFeed:
    """A feed from "now" when the set wants anything beyond the selected mailbox."""
    assert s.user is not None
    if not notify_set.beyond_selected() or s.ctx.notifier is None:
        return NotifyFeed(notify_set, None, None, mailboxes)
    subscribed: set[str] = set()
    if any(g.filter == "SUBSCRIBED" for g in notify_set.groups):
        subscribed = set(await s.store.mailboxes.subscriptions(s.user.id))
    sub = s.ctx.notifier.subscribe(user_key(s.user.id))
    try:
        cursor = await s.store.events.current(s.user.id)
    except BaseException:
        sub.close()
        raise
    return NotifyFeed(notify_set, sub, cursor, mailboxes, subscribed)


async def receive_between_commands(s: CommandContext) -> bytes | None:
    """The client's next bytes (``s.receive``), sending NOTIFY events meanwhile."""
    while True:
        await deliver(s)
        if s.notify is None or s.notify.subscription is None:
            return await s.receive()
        result = await _receive_or_wake(s, s.notify.subscription)
        if result:
            if isinstance(result[0], StreamClosed):
                raise result[0]
            assert result[0] is None or isinstance(result[0], bytes)
            return result[0]


async def _receive_or_wake(s: CommandContext, sub: Subscription) -> list[object]:
    """[bytes or None or StreamClosed] from the client, or [] when woken first."""
    result: list[object] = []
    async with trio.open_nursery() as nursery:

        async def read() -> None:
            try:
                result.append(await s.receive())
            except StreamClosed as exc:
                result.append(exc)  # re-raised outside the nursery, not as a group
            nursery.cancel_scope.cancel()

        async def wake() -> None:
            await sub.wait_pending()
            nursery.cancel_scope.cancel()

        nursery.start_soon(read)
        nursery.start_soon(wake)
    return result


async def deliver(s: CommandContext) -> None:
    """Send what happened since the last delivery, if the feed was woken."""
    feed = s.notify
    if feed is None or feed.subscription is None or not feed.subscription.pending():
        return
    assert s.user is not None and feed.cursor is not None
    feed.subscription.clear()
    responses: list[Any] = []
    overflow = False
    while True:
        try:
            batch = await s.store.events.read(s.user.id, feed.cursor)
        except StoreError as exc:
            # The cursor did not move: the next wake-up reads these changes
            # again, so they are late, not lost (and a store that is down is not
            # asked again in a tight loop).
            log.warning("NOTIFY feed read failed: %r", exc)
            return
        if batch.resync:
            overflow = True
            break
        feed.cursor = batch.cursor
        responses += _responses(s, feed, batch.events)
        if len(responses) > MAX_QUEUED:
            overflow = True
            break
        if not batch.more:
            break
    if overflow:
        feed.close()
        s.notify = None
        await s.send(UntaggedStatus("OK", Code("NOTIFICATIONOVERFLOW"),
                                    "too many events: notification stopped"))
        return
    if responses:
        await s.send(*responses)


def _responses(s: CommandContext, feed: NotifyFeed, events: list[UserEvent]) -> list[Any]:
    selected = s.view.mailbox.id if s.view is not None else None
    out: list[Any] = []
    changed: dict[str, set[str]] = {}
    for ev in events:
        if ev.kind in _MESSAGE_EVENTS:
            changed.setdefault(ev.mailbox_id, set()).add(_MESSAGE_EVENTS[ev.kind])
        elif ev.kind == "mailbox.counters":
            happened = changed.pop(ev.mailbox_id, set())
            if ev.mailbox_id == selected or not happened or ev.counters is None:
                continue
            path = ev.path or feed.known.get(ev.mailbox_id, ("", 0))[0]
            wanted = feed.set.events_for(
                path, selected=False, subscribed=path in feed.subscribed) & happened
            items = status_items(frozenset(wanted))
            if not items:
                continue
            c = ev.counters
            validity = feed.known.get(ev.mailbox_id, ("", 0))[1]
            values = {StatusItem.MESSAGES: c.messages, StatusItem.UIDNEXT: c.uid_next,
                      StatusItem.UNSEEN: c.unseen, StatusItem.HIGHESTMODSEQ: c.highest_modseq,
                      StatusItem.UIDVALIDITY: validity}
            out.append(StatusData(path, [(i, values[i]) for i in items
                                         if i is not StatusItem.UIDVALIDITY or validity]))
        elif ev.kind in ("mailbox.created", "mailbox.renamed", "mailbox.deleted"):
            out += _mailbox_name(feed, ev, selected)
    return out


def _mailbox_name(feed: NotifyFeed, ev: UserEvent, selected: str | None) -> list[Any]:
    """RFC 5465 §5.4: LIST for a created, deleted (\\NonExistent) or renamed
    (OLDNAME) mailbox, when its name (old or new) is one the set watches."""
    old = feed.known.get(ev.mailbox_id, (None, 0))
    path = ev.path or old[0]
    if path is None:
        return []
    names = {path} | ({old[0]} if old[0] else set())
    if not any("MailboxName" in feed.set.events_for(
            n, selected=ev.mailbox_id == selected, subscribed=n in feed.subscribed)
            for n in names):
        return []
    if ev.kind == "mailbox.deleted":
        feed.known.pop(ev.mailbox_id, None)
        return [ListData(("\\NonExistent",), DELIMITER, path)]
    if ev.kind == "mailbox.renamed":
        feed.known[ev.mailbox_id] = (path, old[1])
        oldname = old[0] if old[0] and old[0] != path else None
        return [ListData((), DELIMITER, path, oldname=oldname)]
    feed.known[ev.mailbox_id] = (path, 0)
    return [ListData((), DELIMITER, path)]
