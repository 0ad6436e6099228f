"""Mailbox routes: list with counters, create, get, rename, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..store import Mailbox
from .bodies import ok, path_id, read_model
from .common import mailbox_of, store_errors, store_of
from .models import MailboxInfo, MailboxList, NewMailbox, RenameMailbox, Success
from .routing import Endpoint


async def _subscribed(request: Request, m: Mailbox) -> bool:
    return m.path in await store_of(request).mailboxes.subscriptions(m.user_id)


def mailbox_info(m: Mailbox, subscribed: bool) -> MailboxInfo:
    """A mailbox as JSON (``subscribed``: its name is in the user's subscriptions)."""
    return MailboxInfo(
        id=m.id, path=m.path, special_use=m.special_use, subscribed=subscribed,
        uid_validity=m.uid_validity, uid_next=m.uid_next, highest_modseq=m.highest_modseq,
        messages=m.message_count, unseen=m.unseen_count, size=m.size,
    )


async def list_mailboxes(request: Request) -> Response:
    """Every mailbox of the user, by path, with counters (one query)."""
    user_id = path_id(request, "user")
    store = store_of(request)
    with store_errors("user"):
        await store.users.get(user_id)
        boxes = await store.mailboxes.list(user_id)
        subscribed = set(await store.mailboxes.subscriptions(user_id))
    return ok(MailboxList([mailbox_info(m, m.path in subscribed) for m in boxes]))


async def create_mailbox(request: Request) -> Response:
    """Create a mailbox (and missing parents)."""
    user_id = path_id(request, "user")
    body = await read_model(request, NewMailbox)
    store = store_of(request)
    with store_errors("user"):
        await store.users.get(user_id)
        mailbox = await store.mailboxes.create(user_id, body.path, body.special_use)
    return ok(mailbox_info(mailbox, await _subscribed(request, mailbox)))


async def get_mailbox(request: Request) -> Response:
    """One mailbox with counters."""
    mailbox = await mailbox_of(request)
    return ok(mailbox_info(mailbox, await _subscribed(request, mailbox)))


async def rename_mailbox(request: Request) -> Response:
    """Rename a mailbox (its inferiors move with it)."""
    mailbox = await mailbox_of(request)
    body = await read_model(request, RenameMailbox)
    with store_errors("mailbox"):
        renamed = await store_of(request).mailboxes.rename(
            mailbox.user_id, mailbox.path, body.path
        )
    return ok(mailbox_info(renamed, await _subscribed(request, renamed)))


async def delete_mailbox(request: Request) -> Response:
    """Delete a mailbox and its messages (not INBOX)."""
    mailbox = await mailbox_of(request)
    with store_errors("mailbox"):
        await store_of(request).mailboxes.delete(mailbox.user_id, mailbox.path)
    return ok(Success())


endpoints = [
    Endpoint("GET", "/users/{user}/mailboxes", list_mailboxes, "List mailboxes", "mailboxes",
             response=MailboxList, access="user"),
    Endpoint("POST", "/users/{user}/mailboxes", create_mailbox, "Create a mailbox",
             "mailboxes", body=NewMailbox, response=MailboxInfo, errors=(404, 409), access="user"),
    Endpoint("GET", "/users/{user}/mailboxes/{mailbox}", get_mailbox, "Get a mailbox",
             "mailboxes", response=MailboxInfo, access="user"),
    Endpoint("PUT", "/users/{user}/mailboxes/{mailbox}", rename_mailbox, "Rename a mailbox",
             "mailboxes", body=RenameMailbox, response=MailboxInfo, errors=(404, 409),
             access="user"),
    Endpoint("DELETE", "/users/{user}/mailboxes/{mailbox}", delete_mailbox,
             "Delete a mailbox", "mailboxes", response=Success, access="user"),
]
