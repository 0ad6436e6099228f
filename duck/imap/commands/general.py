"""Commands valid in any state: CAPABILITY, NOOP, LOGOUT (RFC 3501 §6.1), ID (RFC 2971),
ENABLE (RFC 5161), NAMESPACE (RFC 2342)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..capabilities import ENABLEABLE
from ..context import State
from ..grammar.cmd_any import Capability, Enable, Id, Logout, Namespace, Noop
from ..grammar.responses import (
    CapabilityData,
    EnabledData,
    IdData,
    NamespaceData,
    NamespaceDesc,
    UntaggedStatus,
)
from ..namespaces import OTHER_USERS, SHARED
from .registry import command
from .states import ANY, AUTHENTICATED

if TYPE_CHECKING:
    from ..context import CommandContext

#: What ID tells clients about us (RFC 2971 §3.3 field names).
SERVER_ID = (("name", "duck"), ("vendor", "duck"), ("support-url", None))


@command(Capability, ANY)
async def capability(s: CommandContext, cmd: Capability) -> None:
    """``* CAPABILITY ...`` for the current state."""
    await s.send(CapabilityData(s.capabilities()))


@command(Noop, ANY, poll=True)
async def noop(s: CommandContext, cmd: Noop) -> None:
    """Nothing; the session sends pending updates (RFC 3501 §6.1.2)."""


@command(Logout, ANY, updates=False)
async def logout(s: CommandContext, cmd: Logout) -> None:
    """``* BYE`` then the tagged OK, then close (RFC 3501 §6.1.3)."""
    await s.send(UntaggedStatus("BYE", None, "logging out"))
    s.unselect()
    s.state = State.LOGOUT


@command(Id, ANY)
async def id_(s: CommandContext, cmd: Id) -> None:
    """RFC 2971: say who we are; what the client says is only logged."""
    await s.send(IdData(tuple((k, v) for k, v in SERVER_ID if v is not None)))


_ENABLEABLE_BY_UPPER = {n.upper(): n for n in ENABLEABLE}


@command(Enable, frozenset({State.AUTHENTICATED}))
async def enable(s: CommandContext, cmd: Enable) -> None:
    """RFC 5161 §3.1: turn on what we support (unknown names are ignored), only
    before a mailbox is selected."""
    newly = []
    for given in cmd.capabilities:
        # The grammar upper-cases capability names; the reply spells them as
        # CAPABILITY does (RFC 5161 §3.2 compares them case-insensitively).
        name = _ENABLEABLE_BY_UPPER.get(given, given)
        if name in ENABLEABLE and name not in s.enabled:
            s.enabled.add(name)
            newly.append(name)
            if name in ("UTF8=ACCEPT", "IMAP4rev2"):
                # RFC 9051 §5.1: IMAP4rev2 mailbox names are UTF-8, and its quoted
                # strings may carry UTF-8 (as after ENABLE UTF8=ACCEPT, RFC 6855).
                s.reader.utf8_enabled = True
            if name == "QRESYNC":
                s.enabled.add("CONDSTORE")  # RFC 7162 §3.2.3: QRESYNC implies CONDSTORE
    await s.send(EnabledData(tuple(newly)))


@command(Namespace, AUTHENTICATED)
async def namespace(s: CommandContext, cmd: Namespace) -> None:
    """RFC 2342: the personal namespace, "Other Users/" (other users' mailboxes
    shared with this one) and "Shared/" (mailboxes of no single user); "/" in all."""
    await s.send(NamespaceData((NamespaceDesc("", "/"),),
                               (NamespaceDesc(OTHER_USERS + "/", "/"),),
                               (NamespaceDesc(SHARED + "/", "/"),)))
