"""Selecting a mailbox: SELECT, EXAMINE (RFC 3501 §6.3.1-2, RFC 7162 §3.1.8), and
leaving it: CLOSE (§6.4.2), UNSELECT (RFC 3691); CHECK (§6.4.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from duck.store import normalize_path, rights

from ..context import Done
from ..errors import bad
from ..grammar.cmd_any import Check, Close, Unselect
from ..grammar.cmd_mailbox import Examine, QresyncParams, Select
from ..grammar.resp_codes import (
    Code,
    HighestModseq,
    MailboxId,
    OtherCode,
    PermanentFlags,
    UidNext,
    UidValidity,
    Unseen,
)
from ..grammar.responses import (
    ExistsData,
    FlagsData,
    RecentData,
    UntaggedStatus,
    VanishedData,
)
from ..namespaces import open_mailbox
from ..view import SelectedView
from .mailbox import mailbox_list_data
from .registry import command
from .states import AUTHENTICATED, SELECTED

if TYPE_CHECKING:
    from duck.store import Subscription

    from ..context import CommandContext


async def _open(s: CommandContext, cmd: Select | Examine, readonly: bool) -> Done:
    assert s.user is not None
    # RFC 3501 §6.3.1: a SELECT first leaves the selected mailbox, even if it fails.
    was_selected = s.view is not None
    s.unselect()
    if cmd.qresync is not None and not s.qresync:
        raise bad("QRESYNC is not enabled (RFC 7162 §3.2.5)")
    if was_selected and (s.qresync or s.rev2):
        # RFC 7162 §3.2.11, RFC 9051 §6.3.2: say where the old mailbox's responses end.
        await s.send(UntaggedStatus("OK", Code("CLOSED"), "previous mailbox closed"))
    if cmd.condstore:
        s.enabled.add("CONDSTORE")  # RFC 7162 §3.1: a CONDSTORE parameter enables it
    watching = s.watch(cmd.mailbox)
    try:
        done = await _load(s, cmd, readonly, watching)
    except BaseException:
        if watching is not None:
            watching.close()
        raise
    s.select(*done)
    code = "READ-ONLY" if done[0].readonly else "READ-WRITE"
    return Done(f"{cmd.VERB} completed", Code(code))


async def _load(s: CommandContext, cmd: Select | Examine, readonly: bool,
                watching: Subscription | None) -> tuple[SelectedView, Subscription | None]:
    """Read the mailbox and its view and send SELECT's untagged responses."""
    assert s.user is not None
    # RFC 4314 §4: SELECT and EXAMINE need r; without any right that changes the
    # mailbox (s, w, t, e) SELECT opens it read-only.
    mailbox, place, granted = await open_mailbox(s, cmd.mailbox, "r")
    readonly = readonly or not granted & rights.WRITE_RIGHTS
    # The mailbox is read first: journal entries after its modseq are applied on
    # top of the view, so nothing between the two reads is lost.
    summaries = await s.store.messages.view(mailbox.id, mailbox)
    seen = None if place.own else await s.store.acl.seen(mailbox.id, s.user.id)
    rev2 = s.rev2
    view = SelectedView.load(mailbox, summaries, readonly=readonly,
                             modseq=mailbox.highest_modseq, track_recent=not rev2, seen=seen)
    view.name = normalize_path(cmd.mailbox)
    if not place.own:
        view.rights = granted
    if rev2:
        pass  # RFC 9051 has no \Recent: none to claim, none to show.
    elif not readonly:
        if view.uids:
            first = await s.store.messages.claim_recent(mailbox.id, view.uid_max,
                                                        mailbox.recent_mark)
            view.recent.update(u for u in view.uids if u >= first)
    else:
        # RFC 3501 §6.3.2: EXAMINE shows \Recent as it stands and takes none of it.
        view.recent.update(u for u in view.uids if u > mailbox.recent_mark)
    view.announced_recent = len(view.recent)
    # Every keyword on a message of the mailbox (the view was loaded from all of
    # them); one that appears later is announced before the first FETCH showing it.
    responses: list[object] = [FlagsData(view.defined_flags()), ExistsData(view.exists)]
    if rev2:
        # RFC 9051 §6.3.2: a LIST response for the mailbox replaces RECENT and the
        # UNSEEN code.
        responses.append(await mailbox_list_data(s, mailbox, view.name))
    else:
        responses.append(RecentData(len(view.recent)))
        unseen = next((i + 1 for i, u in enumerate(view.uids)
                       if "\\Seen" not in view.flags.get(u, ())), None)
        if unseen is not None:
            responses.append(UntaggedStatus("OK", Unseen(unseen), "first unseen"))
    # RFC 3501 §7.1: a read-only mailbox has no permanent flags to offer.
    responses += [
        UntaggedStatus("OK", PermanentFlags(view.permanent_flags()), "flags permitted"),
        UntaggedStatus("OK", UidValidity(mailbox.uid_validity), "UIDs valid"),
        UntaggedStatus("OK", UidNext(max(mailbox.uid_next, view.uid_max + 1)), "next UID"),
        UntaggedStatus("OK", HighestModseq(max(view.highest_modseq, 1)), "highest modseq"),
        UntaggedStatus("OK", MailboxId(mailbox.id), "mailbox id"),  # RFC 8474 §4.2
        # RFC 4467 §2: the URLAUTH mechanisms this mailbox's URLs can be made with.
        UntaggedStatus("OK", OtherCode("URLMECH", "INTERNAL"), "URLAUTH mechanisms"),
    ]
    if cmd.qresync is not None and cmd.qresync.uidvalidity == mailbox.uid_validity:
        responses += _resync(view, cmd.qresync)
    await s.send(*responses)
    return view, watching


def _resync(view: SelectedView, params: QresyncParams) -> list[object]:
    """RFC 7162 §3.2.5.2: what changed since the client's modseq: VANISHED (EARLIER)
    for UIDs that no longer exist, then FETCH for messages changed since.

    Deviation (allowed by §3.2.5.2's "MAY"): the VANISHED set is every known UID
    that does not exist now, computed from the view, rather than only those
    expunged after the given modseq; clients ignore UIDs they already forgot.
    """
    top = max(view.uid_max, view.mailbox.uid_next - 1)
    known = params.known_uids.ranges(top) if params.known_uids is not None else [(1, top)]
    out: list[object] = []
    missing = view.missing_uids(known)
    if missing is not None:
        out.append(VanishedData(missing, earlier=True))
    in_known = params.known_uids.matcher(top) if params.known_uids is not None else None
    for seq, uid in enumerate(view.uids, start=1):
        if view.modseqs.get(uid, 0) > params.modseq and (in_known is None or uid in in_known):
            out.append(view.flag_fetch(seq, uid, condstore=True, with_uid=True))
    return out


@command(Select, AUTHENTICATED, updates=False)
async def select(s: CommandContext, cmd: Select) -> Done:
    """SELECT mailbox [(CONDSTORE)]."""
    return await _open(s, cmd, readonly=False)


@command(Examine, AUTHENTICATED, updates=False)
async def examine(s: CommandContext, cmd: Examine) -> Done:
    """EXAMINE mailbox: read-only, and \\Recent is left alone (RFC 3501 §6.3.2)."""
    return await _open(s, cmd, readonly=True)


@command(Close, SELECTED, updates=False)
async def close(s: CommandContext, cmd: Close) -> None:
    """Expunge silently (unless read-only) and leave the mailbox (RFC 3501 §6.4.2)."""
    view = s.view
    assert view is not None
    s.unselect()
    # RFC 4314 §4: CLOSE expunges only with e (silently skipped without it).
    may = view.rights is None or "e" in view.rights
    if not view.readonly and may and await s.store.messages.expunge(view.mailbox.id):
        s.changed(view.mailbox.id)


@command(Unselect, SELECTED, updates=False)
async def unselect(s: CommandContext, cmd: Unselect) -> None:
    """Leave the mailbox without expunging (RFC 3691)."""
    s.unselect()


@command(Check, SELECTED, poll=True)
async def check(s: CommandContext, cmd: Check) -> None:
    """Every write is durable when acknowledged; CHECK only reports updates."""
