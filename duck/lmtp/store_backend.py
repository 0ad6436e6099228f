"""The store behind LMTP: recipient lookup and streamed, per-recipient delivery.

This is the translation layer of docs/architecture.md: LMTP's backend interface on one side,
the store's public API on the other. The message streams through the store's
ingest (MIME indexer, large bodies to GridFS once) as it arrives; then one copy
per recipient goes to that user's INBOX with the recipient's trace headers in
front, each acknowledged only once durable.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..store import (
    Delivered,
    DeliveryTarget,
    NotFound,
    OverQuota,
    Store,
    StoreError,
    StoreUnavailable,
    TooBig,
)
from .address import NormalizedAddress
from .backend import (
    Accepted,
    BackendUnavailable,
    Envelope,
    RecipientCheck,
    RecipientOutcome,
    Refused,
    Stored,
)
from .replies import Failure

log = logging.getLogger(__name__)


class StoreDelivery:
    """One message on its way into the store for every accepted recipient."""

    def __init__(self, store: Store, envelope: Envelope, max_size: int | None) -> None:
        self._store = store
        self._envelope = envelope
        self._ingest = store.messages.ingest(max_size=max_size)

    async def write(self, chunk: bytes) -> None:
        """Stream message bytes into the store's ingest."""
        try:
            await self._ingest.write(chunk)
        except StoreUnavailable as exc:
            raise BackendUnavailable(str(exc)) from exc

    async def finish(self) -> Sequence[RecipientOutcome]:
        """Index the end, store every recipient's copy; one outcome each, in order."""
        try:
            ingested = await self._ingest.finish()
        except StoreUnavailable as exc:
            raise BackendUnavailable(str(exc)) from exc
        except TooBig:
            return [Refused(Failure.MESSAGE_TOO_BIG) for _ in self._envelope.recipients]
        targets = [
            DeliveryTarget(user_id=r.user, mailbox_path="INBOX", prepend=r.header_prefix)
            for r in self._envelope.recipients
        ]
        try:
            results = await self._store.messages.deliver(ingested, targets)
        except StoreUnavailable as exc:
            raise BackendUnavailable(str(exc)) from exc
        return [_outcome(result) for result in results]

    async def abort(self) -> None:
        """Drop everything of this message (GridFS uploads included)."""
        try:
            await self._ingest.abort()
        except StoreError:
            # The sweep collects what an abort during an outage could not remove.
            log.warning("LMTP: abort of a delivery failed; the body sweep will collect it")


def _outcome(result: Delivered | StoreError) -> RecipientOutcome:
    if isinstance(result, Delivered):
        return Stored(text=f"Saved as UID {result.uid}")
    if isinstance(result, OverQuota):
        return Refused(Failure.OVER_QUOTA)
    if isinstance(result, NotFound):
        return Refused(Failure.UNKNOWN_USER)
    if isinstance(result, TooBig):
        return Refused(Failure.MESSAGE_TOO_BIG)
    if isinstance(result, StoreUnavailable):
        return Refused(Failure.UNAVAILABLE)
    log.error("LMTP: delivery failed: %r", result)
    return Refused(Failure.UNAVAILABLE)


class StoreBackend:
    """``LmtpBackend`` over duck's store."""

    def __init__(self, store: Store, *, max_message_size: int | None = None) -> None:
        self._store = store
        self._max_size = max_message_size

    async def check_recipient(self, address: NormalizedAddress) -> RecipientCheck:
        """Known address (or its ``+tag`` base)? Over quota already? (RCPT time)."""
        local, _, domain = address.lookup.rpartition("@")
        full = f"{local}+{address.detail}@{domain}" if address.detail else address.lookup
        try:
            # An address that itself contains the separator wins over sub-addressing.
            # The address and its user in one query.
            found = await self._store.users.recipient(full)
        except StoreUnavailable as exc:
            raise BackendUnavailable(str(exc)) from exc
        if found is None or found[1] is None:
            return Refused(Failure.UNKNOWN_USER)
        user = found[1]
        if user.disabled:
            return Refused(Failure.MAILBOX_DISABLED)
        if user.quota and user.storage_used >= user.quota:
            return Refused(Failure.OVER_QUOTA)
        return Accepted(user=user.id)

    async def open_delivery(self, envelope: Envelope) -> StoreDelivery:
        """Start storing one message for ``envelope.recipients``."""
        return StoreDelivery(self._store, envelope, self._max_size)
