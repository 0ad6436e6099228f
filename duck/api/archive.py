"""The archive of deleted messages (issue 18): list a user's, restore one or all."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..store import ArchivedMessage, Restored
from .bodies import ApiError, ok, path_id, read_model, read_query
from .common import store_errors, store_of, user_of
from .convert import iso
from .models import (
    ArchivedItem,
    ArchiveList,
    ArchiveQuery,
    RestoredItem,
    RestoreRequest,
    RestoreResult,
)
from .routing import Endpoint


def _item(m: ArchivedMessage) -> ArchivedItem:
    return ArchivedItem(
        id=m.id, mailbox=m.mailbox_id, path=m.path, uid=m.uid, flags=list(m.flags),
        size=m.size, internal_date=iso(m.internal_date), archived=iso(m.archived),
        subject=m.subject, from_=m.sender, emailid=m.emailid,
    )


def _restored(done: list[Restored]) -> RestoreResult:
    return RestoreResult([RestoredItem(id=r.archive_id, mailbox=r.mailbox_id, path=r.path,
                                       uid_validity=r.uid_validity, uid=r.uid) for r in done])


async def list_archive(request: Request) -> Response:
    """A page of the user's archived messages, newest first."""
    user_id = await user_of(request)
    params = read_query(request, ArchiveQuery)
    archive = store_of(request).archive
    with store_errors("user"):
        page, after = await archive.page(user_id, params.limit, params.after)
        total = await archive.count(user_id)
    return ok(ArchiveList([_item(m) for m in page], total=total, next=after))


async def _target(request: Request, user_id: str) -> str | None:
    """The path of the restore's chosen mailbox (None: where each came from)."""
    if request.headers.get("content-length") == "0":
        return None  # no body: the same as {}
    body = await read_model(request, RestoreRequest)
    if body.mailbox is None:
        return None
    with store_errors("mailbox"):
        mailbox = await store_of(request).mailboxes.get_by_id(body.mailbox)
    if mailbox.user_id != user_id:
        raise ApiError(404, "NotFound", "no such mailbox")
    return mailbox.path


async def restore_one(request: Request) -> Response:
    """Restore one archived message (new UID; its flags and INTERNALDATE)."""
    user_id = await user_of(request)
    archived = path_id(request, "archived")
    path = await _target(request, user_id)
    with store_errors("archived message"):
        done = await store_of(request).archive.restore(user_id, [archived], path)
    return ok(_restored(done))


async def restore_all(request: Request) -> Response:
    """Restore every archived message of the user."""
    user_id = await user_of(request)
    path = await _target(request, user_id)
    with store_errors("archived message"):
        done = await store_of(request).archive.restore(user_id, None, path)
    return ok(_restored(done))


_BASE = "/users/{user}/archive"
endpoints = [
    Endpoint("GET", _BASE, list_archive, "List archived (deleted) messages, newest first",
             "archive", query=ArchiveQuery, response=ArchiveList, access="user"),
    Endpoint("POST", _BASE + "/restore", restore_all, "Restore every archived message",
             "archive", body=RestoreRequest, response=RestoreResult, errors=(404, 413),
             access="user"),
    Endpoint("POST", _BASE + "/{archived}/restore", restore_one,
             "Restore one archived message", "archive", body=RestoreRequest,
             response=RestoreResult, errors=(404, 413), access="user"),
]
