"""ACL commands (RFC 4314 §3): SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS.

Administering a list needs ``a`` (every right on one's own mailboxes is implicit).
The owner's entry is not stored: GETACL shows it with every right and SETACL or
DELETEACL on it is refused, so that an owner can never lock themselves out (RFC 4314
§2 leaves this to the server; Dovecot and Cyrus protect the owner the same way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from duck.store import JournalEntry, NotFound, StoreError, rights

from ..errors import bad, no
from ..grammar.cmd_acl import (
    AclData,
    DeleteAcl,
    GetAcl,
    ListRights,
    ListRightsData,
    MyRights,
    MyRightsData,
    SetAcl,
)
from ..namespaces import ALL_TEXT, Place, open_mailbox
from .registry import command
from .states import AUTHENTICATED

if TYPE_CHECKING:
    from ..context import CommandContext

#: LISTRIGHTS for anyone but the owner: nothing always granted, each right alone.
OPTIONAL = tuple(rights.ALL)


def _owner_name(s: CommandContext, place: Place) -> str | None:
    assert s.user is not None
    return s.user.username if place.own else place.owner_name


async def _check_identifier(s: CommandContext, place: Place, identifier: str) -> str:
    """A known identifier (sign kept): anyone, authenticated or a user's name; the
    owner's own is refused. NO otherwise (RFC 4314 §3.1 lets a server refuse)."""
    try:
        rights.check_identifier(identifier)
    except StoreError:
        raise bad("invalid identifier") from None
    name = identifier[1:] if identifier.startswith("-") else identifier
    if name == _owner_name(s, place):
        raise no("the owner always has every right", "CANNOT")
    if name in (rights.ANYONE, rights.AUTHENTICATED):
        return identifier
    try:
        await s.store.users.by_username(name)
    except NotFound:
        raise no("no such identifier", "CANNOT") from None
    return identifier


def _announce(s: CommandContext, mailbox_id: str, modseq: int) -> None:
    # Sessions here that have the mailbox selected re-read their rights at once;
    # other processes learn it from the journal entry through their notifier.
    s.wrote(mailbox_id, [JournalEntry(mailbox_id, modseq, "acl")])


@command(SetAcl, AUTHENTICATED)
async def setacl(s: CommandContext, cmd: SetAcl) -> None:
    """SETACL mailbox identifier [+|-]rights (RFC 4314 §3.1)."""
    mailbox, place, _ = await open_mailbox(s, cmd.mailbox, "a")
    identifier = await _check_identifier(s, place, cmd.identifier)
    text, mode = cmd.rights, "replace"
    if text[:1] in ("+", "-"):
        text, mode = text[1:], "add" if text[0] == "+" else "remove"
    try:
        rights.parse(text)
    except StoreError:
        # RFC 4314 §3.1: an unrecognised right makes the command BAD.
        raise bad("unknown right in the rights list") from None
    modseq = await s.store.acl.set_rights(mailbox.id, identifier, text, mode)
    _announce(s, mailbox.id, modseq)


@command(DeleteAcl, AUTHENTICATED)
async def deleteacl(s: CommandContext, cmd: DeleteAcl) -> None:
    """DELETEACL mailbox identifier (RFC 4314 §3.2)."""
    mailbox, place, _ = await open_mailbox(s, cmd.mailbox, "a")
    try:
        rights.check_identifier(cmd.identifier)
    except StoreError:
        raise bad("invalid identifier") from None
    name = cmd.identifier.lstrip("-")
    if name == _owner_name(s, place):
        raise no("the owner always has every right", "CANNOT")
    modseq = await s.store.acl.delete(mailbox.id, cmd.identifier)
    _announce(s, mailbox.id, modseq)


@command(GetAcl, AUTHENTICATED)
async def getacl(s: CommandContext, cmd: GetAcl) -> None:
    """GETACL mailbox (RFC 4314 §3.3): the owner (all rights) and the stored entries."""
    mailbox, place, _ = await open_mailbox(s, cmd.mailbox, "a")
    entries: list[tuple[str, str]] = []
    owner = _owner_name(s, place)
    if owner is not None:
        entries.append((owner, ALL_TEXT))
    entries += [(ident, rights.render(given)) for ident, given in mailbox.acl]
    await s.send(AclData(cmd.mailbox, tuple(entries)))


@command(ListRights, AUTHENTICATED)
async def listrights(s: CommandContext, cmd: ListRights) -> None:
    """LISTRIGHTS mailbox identifier (RFC 4314 §3.4): the owner has every right
    always; anyone else may be given each right on its own."""
    _, place, _ = await open_mailbox(s, cmd.mailbox, "a")
    if cmd.identifier == _owner_name(s, place):
        await s.send(ListRightsData(cmd.mailbox, cmd.identifier, ALL_TEXT, ()))
        return
    await s.send(ListRightsData(cmd.mailbox, cmd.identifier, "", OPTIONAL))


@command(MyRights, AUTHENTICATED)
async def myrights(s: CommandContext, cmd: MyRights) -> None:
    """MYRIGHTS mailbox (RFC 4314 §3.5): any right lets one ask."""
    _, place, granted = await open_mailbox(s, cmd.mailbox)
    await s.send(MyRightsData(cmd.mailbox, ALL_TEXT if place.own else rights.render(granted)))
