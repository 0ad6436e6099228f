"""STORE and UID STORE (RFC 3501 §6.4.6), with UNCHANGEDSINCE/MODIFIED (RFC 7162 §3.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from duck.store import FlagChange, FlagsSnapshot, JournalEntry, StoreFlagsResult

from ..context import Done
from ..errors import bad, no
from ..grammar.cmd_message import Store, StoreMode
from ..grammar.fetch_items import FetchAttr
from ..grammar.resp_codes import Modified
from ..grammar.resp_fetch import FetchRows
from ..grammar.sequence import SequenceSet
from ..namespaces import flag_right, require
from ..view import InvalidSequence, SelectedView
from .registry import command
from .states import SELECTED

if TYPE_CHECKING:
    from ..context import CommandContext

_MODES = {StoreMode.REPLACE: "replace", StoreMode.ADD: "add", StoreMode.REMOVE: "remove"}


@command(Store, SELECTED, expunge_unless_seq=True)
async def store(s: CommandContext, cmd: Store) -> Done | None:
    """Change flags in one store call; answer with FETCH FLAGS unless .SILENT."""
    view = s.view
    assert view is not None
    if view.readonly:
        raise no("mailbox is read-only", "READ-ONLY")
    if cmd.unchangedsince is not None:
        await s.enable_condstore()  # RFC 7162 §3.1
    # The journal read the update after STORE would make, made before it: the
    # flags the store is given are then current, so it needs not read them (a
    # change by another session here otherwise costs a read of the messages and
    # of the mailbox's counters in the STORE's transaction).
    await s.catch_up()
    try:
        uids = view.resolve(cmd.sequence_set, uid=cmd.uid)
    except InvalidSequence as exc:
        raise bad(str(exc)) from None
    # RFC 3501 §2.3.2: \Recent cannot be set or cleared by a client; it is ignored.
    flags = [f for f in cmd.flags if f.lower() != "\\recent"]
    if view.rights is not None:
        require(view.rights, _needed(view, cmd.mode, flags, uids))
    if not uids:
        return None
    result: _Stored | StoreFlagsResult
    if view.seen is not None:
        result = await _store_shared(s, view, uids, cmd.mode, flags, cmd.unchangedsince)
    else:
        result = await s.store.messages.store_flags(
            view.mailbox.id, uids, _MODES[cmd.mode], flags,  # type: ignore[arg-type]
            cmd.unchangedsince, snapshot=_snapshot(view, uids, s.view_complete()),
        )
    changed = set(getattr(result, "seen_changed", ()))
    for change in result.changed:
        view.set_flags(change.uid, change.flags, change.modseq)
        changed.add(change.uid)
    s.wrote(view.mailbox.id, [JournalEntry(view.mailbox.id, c.modseq, "flags", uid=c.uid,
                                           flags=c.flags) for c in result.changed])
    modified = set(result.modified)
    rows = FetchRows(utf8=s.utf8)
    shown: list[tuple[str, ...]] = []
    for uid in uids:
        if uid in modified:
            continue
        seq = view.seq_of(uid)
        if seq is None:
            continue
        items: list[tuple[Any, Any]] = []
        if cmd.uid:
            items.append((FetchAttr.UID, uid))
        if not cmd.silent:
            now = view.flags_with_recent(uid)
            items.append((FetchAttr.FLAGS, now))
            shown.append(now)
        if s.condstore and (not cmd.silent or uid in changed):
            # RFC 7162 §3.2: with CONDSTORE the new MODSEQ is reported, even for .SILENT.
            items.append((FetchAttr.MODSEQ, view.modseqs.get(uid, 1)))
        if any(k is not FetchAttr.UID for k, _ in items):
            rows.add(seq, items)
    responses = rows.take()
    # A keyword new to this session is announced ahead of its FETCH (RFC 3501
    # §7.2.6), and after a .SILENT STORE that made it, as Dovecot does; the other
    # sessions announce it when the journal brings it.
    defined = view.announce(shown if not cmd.silent else [c.flags for c in result.changed])
    if defined or responses:
        await s.send(*defined, *responses)
    if modified:
        numbers = sorted(modified) if cmd.uid else sorted(
            n for n in (view.seq_of(u) for u in modified) if n is not None
        )
        if numbers:
            return Done("conditional STORE failed for some messages",
                        Modified(SequenceSet.from_ints(numbers)))
    return None


@attrs.frozen
class _Stored:
    """What a STORE did: the store's result, and this reader's own \\Seen changes."""

    changed: list[FlagChange]
    modified: list[int]
    seen_changed: tuple[int, ...] = ()


def _snapshot(view: SelectedView, uids: list[int], complete: bool) -> FlagsSnapshot:
    """The view's flags and modseqs of ``uids`` (those it has both of), current as of
    its modseq: the store trusts them when the mailbox has not moved since, and
    without asking when the view is ``complete`` (it has every change there is)."""
    flags, modseqs = view.flags, view.modseqs
    return FlagsSnapshot(view.modseq, {
        uid: (flags[uid], modseqs[uid]) for uid in uids
        if uid in flags and uid in modseqs and uid not in view.expunged}, complete)


def _needed(view: SelectedView, mode: StoreMode, flags: list[str], uids: list[int]) -> str:
    """The rights a STORE on another owner's mailbox needs (RFC 4314 §4): s for
    \\Seen, t for \\Deleted, w for any other flag, counting what a FLAGS
    replacement would clear on the messages named as well as what it sets."""
    touched = set(flags)
    if mode is StoreMode.REPLACE:
        for uid in uids:
            touched.update(view.flags.get(uid, ()))
    return "".join(sorted({flag_right(f) for f in touched}))


async def _store_shared(s: CommandContext, view: SelectedView, uids: list[int],
                        mode: StoreMode, flags: list[str],
                        unchangedsince: int | None) -> _Stored:
    """STORE on another owner's mailbox: \\Seen goes to this reader's own set (never
    the stored, owner's, flag); the other flags to the messages, a replacement made
    of a removal and an addition so that the stored \\Seen stays as it is."""
    assert s.user is not None
    seen = "\\Seen" in flags
    others = [f for f in flags if f != "\\Seen"]
    changed: list[FlagChange] = []
    modified: list[int] = []
    if mode is StoreMode.REPLACE:
        current = {f for u in uids for f in view.flags.get(u, ()) if f != "\\Seen"}
        drop = sorted(current - set(others))
        steps: list[tuple[str, list[str]]] = [("remove", drop), ("add", others)]
    else:
        steps = [(_MODES[mode], others)]
    for step, values in steps:
        if not values:
            continue
        result = await s.store.messages.store_flags(
            view.mailbox.id, uids, step, values, unchangedsince)  # type: ignore[arg-type]
        changed += result.changed
        modified += result.modified
    latest = {c.uid: c for c in changed}
    wanted = [u for u in uids if u not in set(modified)]
    seen_changed: list[int] = []
    if seen or mode is not StoreMode.ADD:
        present = seen if mode is not StoreMode.REMOVE else False
        if mode is StoreMode.REMOVE and not seen:
            wanted = []
        flips = [u for u in wanted if (u in view.seen) != present]  # type: ignore[operator]
        if flips:
            await s.store.acl.set_seen(view.mailbox.id, s.user.id,
                                       add=flips if present else (),
                                       remove=() if present else flips)
            seen_changed = view.set_seen(flips, present)
    return _Stored(list(latest.values()), modified, tuple(seen_changed))
