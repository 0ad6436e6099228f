"""The interface the LMTP server delivers through; the store provides an adapter for it.

The LMTP layer knows nothing of users, mailboxes or MongoDB: it asks the backend
whether a recipient exists, then streams one message for all accepted recipients
of a transaction and asks for one outcome per recipient.

Division of work:

* The LMTP layer parses and normalises addresses (``duck.lmtp.address``), checks
  sizes and protocol order, undoes dot-stuffing, and builds each recipient's
  trace header block (``AcceptedRecipient.header_prefix``: ``Return-Path`` and
  ``Delivered-To``).
* The backend stores, for each recipient, ``header_prefix`` followed by the
  message bytes passed to ``Delivery.write`` (exactly the client's bytes after
  unstuffing, the same for every recipient: one indexer pass, large bodies
  stored once). It reports the outcome per recipient only after the copy is
  durable, since the 250 reply is sent on the strength of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from duck.lmtp.address import NormalizedAddress
from duck.lmtp.events import BodyType
from duck.lmtp.replies import Failure


class BackendUnavailable(Exception):
    """Raised by a backend that cannot answer now (database down, timeout).

    The LMTP server answers 451 4.3.0 to the command (or to every recipient of
    the message) so the MTA retries later.
    """


@attrs.frozen
class Accepted:
    """RCPT check result: the address belongs to ``user`` (the store's key for the user)."""

    user: str


@attrs.frozen
class Refused:
    """RCPT check or delivery result: not delivered, for ``failure``.

    ``text`` optionally replaces the default reply text (a single line).
    """

    failure: Failure
    text: str | None = None


@attrs.frozen
class Stored:
    """Delivery result: the recipient's copy is durably stored.

    ``text`` is optional detail for the 250 reply (e.g. the new message's id).
    """

    text: str | None = None


RecipientCheck = Accepted | Refused
RecipientOutcome = Stored | Refused


@attrs.frozen
class AcceptedRecipient:
    """A recipient accepted at RCPT time, in RCPT order."""

    #: The forward-path as the client wrote it, without angle brackets.
    address: str
    #: The normalised address the lookup used (``user@domain``, lower case, no tag).
    lookup: str
    #: The sub-address tag (``tag`` of ``user+tag@domain``), kept for later rules.
    detail: str | None
    #: The store's key for the user, from ``Accepted.user``.
    user: str
    #: Octets to store in front of the message for this recipient.
    header_prefix: bytes


@attrs.frozen
class Envelope:
    """Everything known about a message when its content starts."""

    #: The reverse-path without angle brackets; "" for the null sender ``<>``.
    reverse_path: str
    recipients: tuple[AcceptedRecipient, ...]
    #: The MAIL SIZE parameter, if given (RFC 1870): a hint, not a promise.
    declared_size: int | None
    body: BodyType | None
    smtputf8: bool


class Delivery(Protocol):
    """One message on its way into the store, for all recipients of the transaction."""

    async def write(self, chunk: bytes) -> None:
        """Append message bytes (any chunking; never empty). May raise BackendUnavailable."""
        ...

    async def finish(self) -> Sequence[RecipientOutcome]:
        """Complete the message; return one outcome per recipient, in ``Envelope`` order.

        Returns only when every ``Stored`` copy is durable. May raise
        BackendUnavailable, which fails every recipient with 451 4.3.0.
        """
        ...

    async def abort(self) -> None:
        """Drop the message: nothing of it stays stored, nothing leaks (GridFS files).

        Called when the client goes away, the message is refused (too big), or
        the transaction is reset. Must be safe to call after a failed write.
        """
        ...


class LmtpBackend(Protocol):
    """What the LMTP server needs from the store."""

    async def check_recipient(self, address: NormalizedAddress) -> RecipientCheck:
        """Is ``address`` (already normalised) deliverable? Refused(UNKNOWN_USER) if not.

        May refuse with OVER_QUOTA / OVER_QUOTA_TEMPORARY early; may raise
        BackendUnavailable.
        """
        ...

    async def open_delivery(self, envelope: Envelope) -> Delivery:
        """Start storing one message for ``envelope.recipients``. May raise BackendUnavailable."""
        ...


def trace_headers(reverse_path: str, recipient: str) -> bytes:
    """The header block prepended to a recipient's copy.

    ``Return-Path`` records the reverse-path at final delivery (RFC 5321 section
    4.4); ``Delivered-To`` names the recipient address it was delivered for
    (RFC 9228), with its ``+tag``. Both are UTF-8 when the addresses are
    (RFC 6532 allows that in a message received with SMTPUTF8).
    """
    return (
        f"Return-Path: <{reverse_path}>\r\nDelivered-To: {recipient}\r\n".encode()
    )
