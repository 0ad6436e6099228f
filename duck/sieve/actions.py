"""The result of running a script: what to do with the message."""

from __future__ import annotations

import attrs

from .errors import SieveError


@attrs.frozen
class Keep:
    """Store in INBOX (explicit or implicit keep) with these flags."""

    flags: tuple[str, ...] = ()
    implicit: bool = False


@attrs.frozen
class FileInto:
    """Store in ``mailbox`` (created first when ``create``, RFC 5490)."""

    mailbox: str
    flags: tuple[str, ...] = ()
    create: bool = False


@attrs.frozen
class Redirect:
    """Send the message on to ``address`` unchanged."""

    address: str


@attrs.frozen
class Reject:
    """Refuse the message with ``reason``; ``extended`` for ereject (RFC 5429)."""

    reason: str
    extended: bool = False


@attrs.frozen
class Discard:
    """Drop the message silently (kept in the list so a result can be explained)."""


@attrs.frozen
class Vacation:
    """Answer the sender (RFC 5230); whether to reply is decided when it is sent."""

    reason: str
    #: Period of the once-per-sender memory, in seconds (:days * 86400 or :seconds).
    period: int
    subject: str | None = None
    from_address: str | None = None
    addresses: tuple[str, ...] = ()
    mime: bool = False
    #: Distinguishes vacation actions for the once-per-period memory (section 4.2).
    handle: str = ""


Action = Keep | FileInto | Redirect | Reject | Discard | Vacation


@attrs.frozen
class Outcome:
    """The actions to carry out, in order; ``error`` set when the script failed (the
    actions are then a plain keep, RFC 5228 section 2.10.6)."""

    actions: tuple[Action, ...]
    error: SieveError | None = None

    @property
    def stores(self) -> tuple[Keep | FileInto, ...]:
        """The copies to store."""
        return tuple(a for a in self.actions if isinstance(a, Keep | FileInto))

    @property
    def rejection(self) -> Reject | None:
        """The reject action, if any."""
        for action in self.actions:
            if isinstance(action, Reject):
                return action
        return None
