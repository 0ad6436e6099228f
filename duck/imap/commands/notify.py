"""NOTIFY (RFC 5465): which mailboxes and events the client wants to hear about.

``NOTIFY SET`` replaces the session's notification set (§3); ``NOTIFY NONE``
clears it. With ``STATUS`` the server first sends a STATUS for every mailbox the
set names outside the selected one (§3), with the items the events imply.

Events for the selected mailbox are the ordinary untagged updates (EXISTS,
EXPUNGE, FETCH FLAGS) the session already sends; those of other mailboxes come
from duck/imap/notifyfeed.py.

Differences from RFC 5465, each for a reason:
- §5.2: fetch attributes after MessageNew for the selected mailbox are accepted
  but not sent unasked; the client sees EXISTS and fetches (the selected view's
  updates are shared with IDLE and NOOP and carry no per-message data).
- §5.1, §5.5-5.7: AnnotationChange, SubscriptionChange and the METADATA events
  are refused with BADEVENT: subscriptions and metadata changes are not
  journalled, ANNOTATE is not served.
- §6 "INBOXES": mail is only ever delivered to INBOX, so INBOXES is INBOX.
- MessageNew without MessageExpunge (a client MUST of §5) is accepted, as other
  servers do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from duck.store import Mailbox

from .. import notifyfeed
from ..errors import CommandError, bad, no
from ..grammar.cmd_ext import Notify
from ..grammar.resp_codes import OtherCode
from ..grammar.responses import StatusData
from ..notifications import NotifySet, status_items
from .mailbox import _status_items
from .registry import command
from .states import AUTHENTICATED

if TYPE_CHECKING:
    from ..context import CommandContext

#: Events served. AnnotationChange needs ANNOTATE, which is not served, and METADATA
#: changes are not journalled: RFC 5465 §5 lets the server refuse them with BADEVENT.
#: SubscriptionChange is refused too: subscriptions are not in the journal, so
#: another session's SUBSCRIBE could not be told (RFC 5465 §5 allows BADEVENT).
SUPPORTED_EVENTS = ("MessageNew", "MessageExpunge", "FlagChange", "MailboxName")
#: Caps per NOTIFY SET: mailbox names over all groups, and groups.
MAX_MAILBOXES = 1000
MAX_GROUPS = 100


def _check(cmd: Notify) -> None:
    assert cmd.groups is not None
    if len(cmd.groups) > MAX_GROUPS:
        raise no(f"at most {MAX_GROUPS} event groups", "LIMIT")
    if sum(len(g.mailboxes) for g in cmd.groups) > MAX_MAILBOXES:
        raise no(f"at most {MAX_MAILBOXES} mailboxes in one NOTIFY", "LIMIT")
    for g in cmd.groups:
        for e in g.events or ():
            if e.name not in SUPPORTED_EVENTS:
                raise CommandError(f"{e.name} is not supported", code=OtherCode(
                    "BADEVENT", "(" + " ".join(SUPPORTED_EVENTS) + ")"))
            if e.fetch_items and g.filter not in ("SELECTED", "SELECTED-DELAYED"):
                # RFC 5465 §5.2: fetch attributes only for the selected mailbox.
                raise bad("MessageNew fetch attributes are only for SELECTED")


@command(Notify, AUTHENTICATED)
async def notify(s: CommandContext, cmd: Notify) -> None:
    """NOTIFY SET / NOTIFY NONE."""
    assert s.user is not None
    if cmd.groups is None:
        _stop(s)
        return
    _check(cmd)
    new = NotifySet(cmd.groups)
    mailboxes: list[Mailbox] = await s.store.mailboxes.list(s.user.id)
    feed = await notifyfeed.start(s, new, mailboxes)
    _stop(s)
    s.notify = feed
    if not cmd.status:
        return
    selected = s.view.mailbox.id if s.view is not None else None
    subscribed: set[str] = set()
    if any(g.filter == "SUBSCRIBED" for g in new.groups):
        subscribed = feed.subscribed or set(await s.store.mailboxes.subscriptions(s.user.id))
    responses: list[Any] = []
    for mb in mailboxes:
        if mb.id == selected:
            continue  # RFC 5465 §3: not for the selected mailbox
        items = status_items(new.events_for(mb.path, selected=False,
                                            subscribed=mb.path in subscribed))
        if items:
            responses.append(StatusData(mb.path, await _status_items(s, mb, items)))
    if responses:
        await s.send(*responses)


def _stop(s: CommandContext) -> None:
    if s.notify is not None:
        s.notify.close()
        s.notify = None
