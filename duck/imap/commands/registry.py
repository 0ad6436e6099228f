"""The command table: grammar command class -> handler, allowed states, update policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs

from ..grammar.cmd_base import Command

if TYPE_CHECKING:
    from ..context import CommandContext

Handler = Callable[["CommandContext", Any], Awaitable[Any]]


@attrs.frozen
class Entry:
    """How the session runs one command."""

    handler: Handler
    states: frozenset[Any]
    #: Send pending untagged updates before the tagged response (selected state).
    updates: bool = True
    #: Read the journal even without a wake-up (NOOP, CHECK: RFC 3501 §6.1.2, §6.4.1).
    poll: bool = False
    #: RFC 3501 §7.4.1: no EXPUNGE while answering FETCH, STORE or SEARCH; their
    #: UID forms allow it.
    expunge_unless_seq: bool = False
    #: Whether a command that ended in LOGOUT still gets its tagged OK.
    logout_tagged: bool = True
    #: Rights (RFC 4314) the command needs on the selected mailbox when it is
    #: another owner's; checked by the session before the handler runs.
    needs: str = ""

    def allow_expunge(self, cmd: Command) -> bool:
        """Whether EXPUNGE responses may accompany this command's answer."""
        if self.expunge_unless_seq:
            return bool(getattr(cmd, "uid", False))
        return True


REGISTRY: dict[type[Command], Entry] = {}


def command(
    cls: type[Command], states: frozenset[Any], **options: Any
) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine as the handler of ``cls``."""

    def register(handler: Handler) -> Handler:
        REGISTRY[cls] = Entry(handler, states, **options)
        return handler

    return register
