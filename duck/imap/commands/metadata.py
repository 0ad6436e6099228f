"""GETMETADATA and SETMETADATA (RFC 5464, METADATA and METADATA-SERVER).

Entries live in the store (``store.metadata``) on the mailbox's id, so they
follow RENAME and go with DELETE. Mailbox "" names the server annotations, which
are per user here: every mailbox belongs to one user, so /private and /shared
entries are both that user's own (RFC 5464 §3.2).

Not served: the unsolicited ``* METADATA mailbox entry`` change notices (§4.4.2
says a server MAY send them) and the NOTIFY metadata events (RFC 5465 §5.7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from duck.store import MetadataTooLarge, MetadataTooMany, valid_entry

from ..context import Done
from ..errors import CommandError, bad
from ..grammar.cmd_ext import GetMetadata, SetMetadata
from ..grammar.resp_codes import MetadataCode
from ..grammar.responses import MetadataData
from ..namespaces import open_mailbox
from .registry import command
from .states import AUTHENTICATED

if TYPE_CHECKING:
    from ..context import CommandContext

SERVER = ""


def _check_names(names: tuple[str, ...]) -> None:
    # RFC 5464 §3.2: "Invalid entry names result in a BAD response"; the grammar
    # already refused wildcards and empty components, this adds the prefixes.
    for name in names:
        if not valid_entry(name):
            raise bad(f"entry names start with /private or /shared: {name[:100]!r}")


async def _mailbox_id(s: CommandContext, name: str, needed: str) -> str | None:
    """The id of the mailbox named, None for the server; NO [NONEXISTENT] when the
    mailbox does not exist (the store's NotFound, mapped by the session). On
    another owner's mailbox the entries are still this user's own, behind the
    rights RFC 5464 §6.2.1 names (r to read, w to write... here for /private too)."""
    assert s.user is not None
    if name == SERVER:
        return None
    return (await open_mailbox(s, name, needed))[0].id


@command(GetMetadata, AUTHENTICATED)
async def getmetadata(s: CommandContext, cmd: GetMetadata) -> Done:
    """GETMETADATA [(MAXSIZE n DEPTH d)] mailbox entries (RFC 5464 §4.2)."""
    assert s.user is not None
    _check_names(cmd.entries)
    box = await _mailbox_id(s, cmd.mailbox, "r")
    found = await s.store.metadata.get(s.user.id, box, cmd.entries, cmd.depth or "0")
    values: dict[str, tuple[str, bytes | None]] = {
        name.lower(): (name, value) for name, value in found}
    # An entry asked for by name that has no value is answered with NIL (the
    # entry-values grammar of §4.4.1 allows it; clients read it as "not set").
    for name in cmd.entries:
        values.setdefault(name.lower(), (name, None))
    longest = 0
    out: list[tuple[str, bytes | None]] = []
    for _, (name, value) in sorted(values.items()):
        # §4.2.1: values longer than MAXSIZE are left out, and the tagged OK says
        # how long the longest of them is.
        if value is not None and cmd.maxsize is not None and len(value) > cmd.maxsize:
            longest = max(longest, len(value))
            continue
        out.append((name, value))
    if out:
        await s.send(MetadataData(cmd.mailbox, tuple(out)))
    if longest:
        return Done("GETMETADATA completed", MetadataCode("LONGENTRIES", longest))
    return Done("GETMETADATA completed")


@command(SetMetadata, AUTHENTICATED)
async def setmetadata(s: CommandContext, cmd: SetMetadata) -> None:
    """SETMETADATA mailbox (entry value ...): all set or none (RFC 5464 §4.3); NIL
    removes an entry."""
    assert s.user is not None
    _check_names(tuple(name for name, _ in cmd.entries))
    box = await _mailbox_id(s, cmd.mailbox, "w")
    try:
        await s.store.metadata.set(s.user.id, box, cmd.entries)
    except MetadataTooLarge as exc:
        raise CommandError("metadata value too large", code=MetadataCode(
            "MAXSIZE", exc.limit)) from None
    except MetadataTooMany:
        raise CommandError("too many metadata entries", code=MetadataCode(
            "TOOMANY")) from None
