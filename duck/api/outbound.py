"""The outbound queue as operators see it: ``/outbound`` (its depth) and
``/outbound/{message}`` (one message's state). Read-only: messages are queued by
Sieve actions, not through the API."""

from __future__ import annotations

import attrs
from starlette.requests import Request
from starlette.responses import Response

from .bodies import ok, path_id
from .common import store_errors, store_of
from .convert import iso
from .routing import Endpoint


@attrs.frozen
class OutboundCounts:
    """Messages in the outbound queue by status: ``queued`` is its depth (across
    every duck process); sent and failed ones are kept seven days."""

    queued: int
    sent: int
    failed: int
    success: bool = True


@attrs.frozen
class RefusedRecipient:
    """A recipient given up on, with the relay's reply (or why duck gave up)."""

    recipient: str
    reply: str


@attrs.frozen
class OutboundInfo:
    """One outbound message (without its content)."""

    id: str
    kind: str
    user: str | None
    #: The reverse-path; "" is the null sender.
    sender: str
    #: queued, sent or failed.
    status: str
    #: Recipients still to send to.
    pending: list[str]
    sent: list[str]
    refused: list[RefusedRecipient]
    attempts: int
    created: str
    #: When it is next tried (queued), or when it was claimed last.
    next_at: str
    error: str | None
    success: bool = True


async def outbound_counts(request: Request) -> Response:
    """The queue's depth, and the messages kept after sending or failing."""
    counts = await store_of(request).outbound.statistics()
    return ok(OutboundCounts(queued=counts["queued"], sent=counts["sent"],
                             failed=counts["failed"]))


async def get_outbound(request: Request) -> Response:
    """One outbound message's state."""
    message_id = path_id(request, "message")
    with store_errors("outbound message"):
        got = await store_of(request).outbound.get(message_id)
    return ok(OutboundInfo(
        id=got.id, kind=got.kind, user=got.user_id, sender=got.sender, status=got.status,
        pending=list(got.pending), sent=list(got.sent),
        refused=[RefusedRecipient(r, reply) for r, reply in got.refused],
        attempts=got.attempts, created=iso(got.created) or "",
        next_at=iso(got.next_at) or "", error=got.error,
    ))


endpoints = [
    Endpoint("GET", "/outbound", outbound_counts, "Outbound queue depth", "outbound",
             response=OutboundCounts, errors=()),
    Endpoint("GET", "/outbound/{message}", get_outbound, "Get an outbound message",
             "outbound", response=OutboundInfo),
]
