"""COPY (RFC 3501 §6.4.7) and MOVE (RFC 6851), with COPYUID (RFC 4315)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from duck.store import InvalidInput, NotFound

from ..context import Done
from ..errors import bad, no
from ..grammar.cmd_message import Copy, Move
from ..grammar.resp_codes import CopyUid
from ..grammar.responses import UntaggedStatus
from ..grammar.sequence import SequenceSet
from ..namespaces import locate, open_located
from ..view import InvalidSequence
from .registry import command
from .states import SELECTED

if TYPE_CHECKING:
    from duck.store import CopyResult

    from ..context import CommandContext


async def _transfer(s: CommandContext, cmd: Copy | Move, move: bool) -> CopyResult | None:
    view = s.view
    assert view is not None and s.user is not None
    if move and view.readonly:
        raise no("mailbox is read-only", "READ-ONLY")
    try:
        uids = view.resolve(cmd.sequence_set, uid=cmd.uid)
    except InvalidSequence as exc:
        raise bad(str(exc)) from None
    uids = [u for u in uids if u not in view.expunged]
    # The destination must exist (RFC 3501 §6.4.7: NO [TRYCREATE] otherwise) and,
    # when it is another owner's, take insertions (RFC 4314 §4: i). One's own is
    # found by the store's copy (from the document this process last wrote, else
    # read), so it is read here only to tell which mailbox is missing.
    place = await locate(s, cmd.mailbox)
    if not place.own or not uids:
        try:
            await open_located(s, place, "i")
        except NotFound:
            raise no("no such mailbox", "TRYCREATE") from None
    if not uids:
        return None
    op = s.store.messages.move if move else s.store.messages.copy
    # Into another owner's mailbox the copies count toward that owner's quota.
    try:
        result = await op(view.mailbox.id, uids, place.owner_id, place.path)
    except (NotFound, InvalidInput):
        # Which one: the destination (TRYCREATE; a name the store refuses fails
        # here as it would have before the copy), or the source, gone meanwhile.
        try:
            await s.store.mailboxes.get(place.owner_id, place.path)
        except NotFound:
            raise no("no such mailbox", "TRYCREATE") from None
        raise
    s.changed(result.mailbox_id, *((view.mailbox.id,) if move else ()))
    return result


def _copyuid(result: CopyResult) -> CopyUid | None:
    if not result.uids:
        return None
    return CopyUid(
        result.uid_validity,
        SequenceSet.from_ints(src for src, _ in result.uids),
        SequenceSet.from_ints(dst for _, dst in result.uids),
    )


@command(Copy, SELECTED, needs="r")
async def copy(s: CommandContext, cmd: Copy) -> Done | None:
    """Copy messages; COPYUID in the tagged OK."""
    result = await _transfer(s, cmd, move=False)
    if result is None:
        return None
    return Done("COPY completed", _copyuid(result))


@command(Move, SELECTED, needs="rte")
async def move(s: CommandContext, cmd: Move) -> None:
    """RFC 6851 §4.3: ``* OK [COPYUID ...]``, then the EXPUNGEs, then the tagged OK."""
    result = await _transfer(s, cmd, move=True)
    if result is None:
        return
    code = _copyuid(result)
    if code is not None:
        await s.send(UntaggedStatus("OK", code, "moved"))
    assert s.view is not None
    s.view.remove_now(src for src, _ in result.uids)
