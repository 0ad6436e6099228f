"""``POST /users/{user}/deliver``: a raw message delivered to a user as LMTP would
deliver it: the user's active Sieve script runs first (fileinto, flags, discard,
reject, redirect, vacation), then the copies are stored."""

from __future__ import annotations

import attrs
from starlette.requests import Request
from starlette.responses import Response

from ..rules.delivery import MAX_MESSAGE_BUFFER, Recipient, Rules
from ..store import Delivered, StoreError
from .bodies import ApiError, ok, read_query
from .common import store_errors, store_of, user_of
from .routing import Endpoint


@attrs.frozen
class DeliverQuery:
    """The envelope sender (the reverse-path; empty for the null sender), which
    Sieve's ``envelope "from"``, redirects and vacation replies use."""

    sender: str = ""


@attrs.frozen
class StoredCopy:
    """One stored copy: the mailbox it went to and its UID there."""

    mailbox: str
    path: str
    uid: int


@attrs.frozen
class DeliveryResult:
    """What the delivery did: the copies stored (none when the script discarded,
    redirected or rejected the message) and the script's rejection, if any."""

    stored: list[StoredCopy]
    rejected: str | None = None
    success: bool = True


async def deliver_message(request: Request) -> Response:
    """Deliver the request body (a raw RFC 5322 message) to the user."""
    user_id = await user_of(request)
    params = read_query(request, DeliverQuery)
    if len(params.sender) > 320 or any(c in params.sender for c in "\r\n\0<> "):
        raise ApiError(400, "InvalidInput", "invalid field sender")
    store = store_of(request)
    rules = Rules(store)
    with store_errors("user"):
        user = await store.users.get(user_id)
        loaded = (await rules.load([user_id])).get(user_id)
    ingest = store.messages.ingest()
    kept = bytearray()
    try:
        with store_errors("message"):
            async for chunk in request.stream():
                if len(kept) < MAX_MESSAGE_BUFFER:
                    kept += chunk[: MAX_MESSAGE_BUFFER - len(kept)]
                await ingest.write(chunk)
            if ingest.size == 0:
                raise ApiError(400, "InvalidRequest", "empty message")
            ingested = await ingest.finish()
    except BaseException:
        await ingest.abort()
        raise
    size = ingest.size
    try:
        plan = await rules.plan(
            Recipient(user_id, user.username, user.username), loaded, bytes(kept),
            complete=size <= len(kept), reverse_path=params.sender, size=size)
    except BaseException:
        await store.messages.discard(ingested)
        raise
    with store_errors("mailbox"):
        results = await store.messages.deliver(ingested, list(plan.targets))
    stored: list[StoredCopy] = []
    for target, result in zip(plan.targets, results, strict=True):
        if isinstance(result, StoreError):
            with store_errors("mailbox"):
                raise result
        assert isinstance(result, Delivered)
        stored.append(StoredCopy(result.mailbox_id, target.mailbox_path, result.uid))
    return ok(DeliveryResult(stored, plan.refusal))


endpoints = [
    Endpoint("POST", "/users/{user}/deliver", deliver_message,
             "Deliver a raw message as LMTP would (the user's Sieve script runs)",
             "messages", query=DeliverQuery, response=DeliveryResult,
             raw_body="message/rfc822", errors=(404, 413)),
]
