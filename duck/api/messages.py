"""Message routes: list with paging, metadata, raw ``.eml`` streamed, flags, move,
delete, search (IMAP SEARCH semantics), upload of a raw message."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..store import DeliveryTarget, Mailbox, MessageRecord, StoreError
from .bodies import ApiError, ok, path_id, path_uid, read_model, read_query
from .common import mailbox_of, store_errors, store_of
from .convert import envelope, iso
from .models import (
    FlagsResult,
    FlagUpdate,
    ListQuery,
    MessageInfo,
    MessageItem,
    MessageList,
    Moved,
    MoveRequest,
    SearchRequest,
    Success,
    Uploaded,
    UploadQuery,
)
from .routing import Endpoint
from .search import compile_search

_LIST_FIELDS = ("flags", "size", "internal_date", "envelope", "emailid", "threadid")


def _item(r: MessageRecord) -> MessageItem:
    env = envelope(r.envelope)
    return MessageItem(
        uid=r.uid, flags=list(r.flags or ()), size=r.size or 0,
        internal_date=iso(r.internal_date), subject=env.subject, from_=env.from_,
        emailid=r.emailid, threadid=r.threadid,
    )


async def _page(request: Request, mailbox: Mailbox, uids: list[int], limit: int,
                after: int | None, descending: bool) -> MessageList:
    """One page of ``uids`` (sorted ascending) with metadata (one fetch query)."""
    if descending:
        chosen = [u for u in reversed(uids) if after is None or u < after]
    else:
        chosen = [u for u in uids if after is None or u > after]
    page = chosen[:limit]
    records = await store_of(request).messages.fetch(mailbox.id, page, _LIST_FIELDS)
    by_uid = {r.uid: r for r in records}
    items = [_item(by_uid[u]) for u in page if u in by_uid]
    more = len(chosen) > limit
    return MessageList(items, total=len(uids), next=page[-1] if more and page else None)


async def list_messages(request: Request) -> Response:
    """A page of the mailbox's messages by UID."""
    mailbox = await mailbox_of(request)
    params = read_query(request, ListQuery)
    uids = [m.uid for m in await store_of(request).messages.view(mailbox.id)]
    return ok(await _page(request, mailbox, uids, params.limit, params.after,
                          params.order == "desc"))


async def search_messages(request: Request) -> Response:
    """Messages matching JSON criteria with IMAP SEARCH semantics, paged."""
    mailbox = await mailbox_of(request)
    body = await read_model(request, SearchRequest)
    with store_errors("mailbox"):
        query = compile_search(body.query, mailbox.uid_next - 1)
        uids = await store_of(request).messages.search(mailbox.id, query)
    return ok(await _page(request, mailbox, uids, body.limit, body.after, False))


async def _record(request: Request, mailbox: Mailbox, fields: tuple[str, ...]
                  ) -> MessageRecord:
    uid = path_uid(request)
    records = await store_of(request).messages.fetch(mailbox.id, [uid], fields)
    if not records:
        raise ApiError(404, "NotFound", "no such message")
    return records[0]


async def get_message(request: Request) -> Response:
    """A message's metadata with its envelope."""
    mailbox = await mailbox_of(request)
    r = await _record(request, mailbox, (*_LIST_FIELDS, "modseq"))
    return ok(MessageInfo(
        id=r.id, mailbox=mailbox.id, uid=r.uid, modseq=r.modseq or 0,
        flags=list(r.flags or ()), size=r.size or 0, internal_date=iso(r.internal_date),
        envelope=envelope(r.envelope), emailid=r.emailid, threadid=r.threadid,
    ))


async def get_raw(request: Request) -> Response:
    """The message bytes, exactly as delivered, streamed in bounded chunks."""
    mailbox = await mailbox_of(request)
    record = await _record(request, mailbox, ("content", "size"))
    store = store_of(request)
    return StreamingResponse(
        store.messages.stream(record), media_type="message/rfc822",
        headers={"content-length": str(record.size or 0)},
    )


async def update_flags(request: Request) -> Response:
    """Add and remove flags, or replace them all (``set``)."""
    mailbox = await mailbox_of(request)
    uid = path_uid(request)
    body = await read_model(request, FlagUpdate)
    messages = store_of(request).messages
    with store_errors("message"):
        if not await messages.fetch(mailbox.id, [uid], ()):
            raise ApiError(404, "NotFound", "no such message")
        if body.set is not None:
            await messages.store_flags(mailbox.id, [uid], "replace", body.set)
        if body.add:
            await messages.store_flags(mailbox.id, [uid], "add", body.add)
        if body.remove:
            await messages.store_flags(mailbox.id, [uid], "remove", body.remove)
        records = await messages.fetch(mailbox.id, [uid], ("flags", "modseq"))
    if not records:
        raise ApiError(404, "NotFound", "no such message")
    r = records[0]
    return ok(FlagsResult(uid=uid, flags=list(r.flags or ()), modseq=r.modseq or 0))


async def move_message(request: Request) -> Response:
    """Move the message to another mailbox of the same user."""
    mailbox = await mailbox_of(request)
    uid = path_uid(request)
    body = await read_model(request, MoveRequest)
    store = store_of(request)
    if not isinstance(body.mailbox, str) or len(body.mailbox) != 24:
        raise ApiError(400, "InvalidRequest", "invalid field mailbox: not a 24-hex id")
    with store_errors("mailbox"):
        target = await store.mailboxes.get_by_id(body.mailbox)
        if target.user_id != mailbox.user_id:
            raise ApiError(404, "NotFound", "no such mailbox")
        result = await store.messages.move(mailbox.id, [uid], target.user_id, target.path)
    if not result.uids:
        raise ApiError(404, "NotFound", "no such message")
    return ok(Moved(mailbox=target.id, uid=result.uids[0][1]))


async def delete_message(request: Request) -> Response:
    """Delete (expunge) the message."""
    mailbox = await mailbox_of(request)
    uid = path_uid(request)
    messages = store_of(request).messages
    with store_errors("message"):
        result = await messages.store_flags(mailbox.id, [uid], "add", ["\\Deleted"])
        expunged = await messages.expunge(mailbox.id, [uid])
    if not expunged and not result.changed:
        # Nothing was there (an already-\Deleted message is expunged above).
        raise ApiError(404, "NotFound", "no such message")
    return ok(Success())


async def upload_message(request: Request) -> Response:
    """Store a raw RFC 5322 message (the request body) in the mailbox."""
    mailbox = await mailbox_of(request)
    params = read_query(request, UploadQuery)
    flags = tuple(f for f in params.flags.split(",") if f)
    store = store_of(request)
    ingest = store.messages.ingest()
    try:
        with store_errors("message"):
            async for chunk in request.stream():
                await ingest.write(chunk)
            if ingest.size == 0:
                raise ApiError(400, "InvalidRequest", "empty message")
            ingested = await ingest.finish()
    except BaseException:
        await ingest.abort()
        raise
    target = DeliveryTarget(mailbox.user_id, mailbox.path, flags)
    with store_errors("mailbox"):
        (result,) = await store.messages.deliver(ingested, [target])
        if isinstance(result, StoreError):
            raise result
    return ok(Uploaded(mailbox=result.mailbox_id, uid=result.uid,
                       uid_validity=result.uid_validity))


_BASE = "/users/{user}/mailboxes/{mailbox}/messages"
endpoints = [
    Endpoint("GET", _BASE, list_messages, "List messages (paged by UID)", "messages",
             query=ListQuery, response=MessageList, access="user"),
    Endpoint("POST", _BASE, upload_message, "Upload a raw message", "messages",
             query=UploadQuery, response=Uploaded, raw_body="message/rfc822",
             errors=(404, 413), access="user"),
    Endpoint("POST", "/users/{user}/mailboxes/{mailbox}/search", search_messages,
             "Search messages (IMAP SEARCH semantics)", "messages", body=SearchRequest,
             response=MessageList, access="user"),
    Endpoint("GET", _BASE + "/{uid}", get_message, "Get message metadata", "messages",
             response=MessageInfo, access="user"),
    Endpoint("DELETE", _BASE + "/{uid}", delete_message, "Delete a message", "messages",
             response=Success, access="user"),
    Endpoint("GET", _BASE + "/{uid}/message.eml", get_raw, "Get the raw message",
             "messages", produces="message/rfc822", access="user"),
    Endpoint("PUT", _BASE + "/{uid}/flags", update_flags, "Set or unset flags", "messages",
             body=FlagUpdate, response=FlagsResult, access="user"),
    Endpoint("POST", _BASE + "/{uid}/move", move_message, "Move to another mailbox",
             "messages", body=MoveRequest, response=Moved, access="user"),
]

__all__ = ["endpoints", "path_id"]
