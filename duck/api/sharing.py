"""Sharing routes (RFC 4314 ACLs through the API): share a mailbox with a user (or
``anyone``/``authenticated``) with given rights, unshare, list a mailbox's entries,
list what is shared with a user; and the mailboxes of the "Shared" namespace, which
no user owns (IMAP ``Shared/<path>``).

The API is the administrator's: a user's routes reach that user's own mailboxes
only (``common.mailbox_of``), so a shared mailbox is administered through its
owner's routes or, in the Shared namespace, through ``/shared-mailboxes``. Sessions
holding such a mailbox learn of every change at once: the store journals it and
every process's notifier wakes them.
"""

from __future__ import annotations

import attrs
from attrs import validators as v
from starlette.requests import Request
from starlette.responses import Response

from ..store import SHARED_OWNER, Mailbox, rights
from .bodies import ApiError, ok, path_id, read_model
from .common import mailbox_of, store_errors, store_of, user_of
from .mailboxes import mailbox_info
from .models import MailboxInfo, MailboxList, NewMailbox, Success
from .routing import Endpoint


@attrs.frozen
class AclEntry:
    """One entry of a mailbox's access control list; an identifier starting with
    ``-`` takes rights away (RFC 4314 §2)."""

    identifier: str
    rights: str


@attrs.frozen
class AclList:
    """A mailbox's access control list (the owner's implicit rights not included)."""

    results: list[AclEntry]
    success: bool = True


@attrs.frozen
class SetRights:
    """Rights to give (``lrswipkxtea``; ``c`` and ``d`` as RFC 4314 §2.1.1 says)."""

    rights: str = attrs.field(validator=v.and_(v.min_len(1), v.max_len(32)))


@attrs.frozen
class SharedMailboxInfo:
    """A mailbox another owner shares with the user, and the user's rights on it."""

    id: str
    #: Its name in the user's IMAP namespaces (``Other Users/...`` or ``Shared/...``).
    name: str
    #: The owner's user name; null for the Shared namespace.
    owner: str | None
    path: str
    rights: str


@attrs.frozen
class SharedList:
    """What is shared with a user."""

    results: list[SharedMailboxInfo]
    success: bool = True


def _acl(mailbox: Mailbox) -> AclList:
    return AclList([AclEntry(i, rights.render(r)) for i, r in mailbox.acl])


async def _identifier(request: Request) -> str:
    """The ``{identifier}`` path parameter: anyone, authenticated or an existing
    user's name, optionally ``-``-prefixed (404 for an unknown user)."""
    identifier = request.path_params["identifier"]
    with store_errors("identifier"):
        rights.check_identifier(identifier)
        name = identifier.lstrip("-")
        if name not in (rights.ANYONE, rights.AUTHENTICATED):
            await store_of(request).users.by_username(name)
    return str(identifier)


async def _shared_mailbox(request: Request) -> Mailbox:
    """The ``{mailbox}`` of the Shared namespace (404 for any other)."""
    mailbox_id = path_id(request, "mailbox")
    with store_errors("mailbox"):
        mailbox = await store_of(request).mailboxes.get_by_id(mailbox_id)
    if mailbox.user_id != SHARED_OWNER:
        raise ApiError(404, "NotFound", "no such mailbox")
    return mailbox


async def _get_acl(mailbox: Mailbox) -> Response:
    return ok(_acl(mailbox))


async def _put(request: Request, mailbox: Mailbox) -> Response:
    identifier = await _identifier(request)
    body = await read_model(request, SetRights)
    store = store_of(request)
    with store_errors("mailbox"):
        if mailbox.user_id != SHARED_OWNER:
            owner = await store.users.get(mailbox.user_id)
            if identifier.lstrip("-") == owner.username:
                raise ApiError(400, "InvalidInput", "the owner always has every right")
        await store.acl.set_rights(mailbox.id, identifier, body.rights)
        return ok(_acl(await store.mailboxes.get_by_id(mailbox.id)))


async def _delete(request: Request, mailbox: Mailbox) -> Response:
    identifier = request.path_params["identifier"]
    store = store_of(request)
    with store_errors("mailbox"):
        rights.check_identifier(identifier)
        await store.acl.delete(mailbox.id, identifier)
        return ok(_acl(await store.mailboxes.get_by_id(mailbox.id)))


async def get_acl(request: Request) -> Response:
    """A user's mailbox's access control list."""
    return await _get_acl(await mailbox_of(request))


async def put_acl(request: Request) -> Response:
    """Share a user's mailbox: set an identifier's rights (replacing its entry)."""
    return await _put(request, await mailbox_of(request))


async def delete_acl(request: Request) -> Response:
    """Unshare: remove an identifier's entry (none is no error)."""
    return await _delete(request, await mailbox_of(request))


async def shared_with(request: Request) -> Response:
    """The mailboxes of other owners the user may see (l), with the user's rights."""
    user_id = await user_of(request)
    store = store_of(request)
    with store_errors("user"):
        user = await store.users.get(user_id)
        found = await store.acl.shared_with(user.id, user.username)
    out = []
    for s in found:
        name = rights.shared_name(s.owner, s.mailbox.path)
        out.append(SharedMailboxInfo(s.mailbox.id, name, s.owner, s.mailbox.path,
                                     rights.render(s.rights)))
    return ok(SharedList(out))


async def list_shared_mailboxes(request: Request) -> Response:
    """The mailboxes of the Shared namespace."""
    store = store_of(request)
    owner = await store.acl.shared_owner()
    boxes = await store.mailboxes.list(owner)
    return ok(MailboxList([mailbox_info(m, False) for m in boxes]))


async def create_shared_mailbox(request: Request) -> Response:
    """Create a mailbox of the Shared namespace (no one's; IMAP ``Shared/<path>``);
    nobody may use it until its ACL says so."""
    body = await read_model(request, NewMailbox)
    store = store_of(request)
    with store_errors("mailbox"):
        owner = await store.acl.shared_owner()
        mailbox = await store.mailboxes.create(owner, body.path, body.special_use)
    return ok(mailbox_info(mailbox, False))


async def delete_shared_mailbox(request: Request) -> Response:
    """Delete a mailbox of the Shared namespace and its messages."""
    mailbox = await _shared_mailbox(request)
    with store_errors("mailbox"):
        await store_of(request).mailboxes.delete(mailbox.user_id, mailbox.path)
    return ok(Success())


async def get_shared_acl(request: Request) -> Response:
    """A Shared-namespace mailbox's access control list."""
    return await _get_acl(await _shared_mailbox(request))


async def put_shared_acl(request: Request) -> Response:
    """Set an identifier's rights on a Shared-namespace mailbox."""
    return await _put(request, await _shared_mailbox(request))


async def delete_shared_acl(request: Request) -> Response:
    """Remove an identifier's entry from a Shared-namespace mailbox."""
    return await _delete(request, await _shared_mailbox(request))


_ACL = "/users/{user}/mailboxes/{mailbox}/acl"
_SHARED_ACL = "/shared-mailboxes/{mailbox}/acl"

endpoints = [
    Endpoint("GET", _ACL, get_acl, "Get a mailbox's access control list", "sharing",
             response=AclList),
    Endpoint("PUT", _ACL + "/{identifier}", put_acl, "Share a mailbox (set rights)",
             "sharing", body=SetRights, response=AclList),
    Endpoint("DELETE", _ACL + "/{identifier}", delete_acl, "Unshare a mailbox", "sharing",
             response=AclList),
    Endpoint("GET", "/users/{user}/shared", shared_with, "Mailboxes shared with a user",
             "sharing", response=SharedList),
    Endpoint("GET", "/shared-mailboxes", list_shared_mailboxes,
             "List the Shared namespace's mailboxes", "sharing", response=MailboxList,
             errors=()),
    Endpoint("POST", "/shared-mailboxes", create_shared_mailbox,
             "Create a mailbox in the Shared namespace", "sharing", body=NewMailbox,
             response=MailboxInfo, errors=(409,)),
    Endpoint("DELETE", "/shared-mailboxes/{mailbox}", delete_shared_mailbox,
             "Delete a Shared-namespace mailbox", "sharing", response=Success),
    Endpoint("GET", _SHARED_ACL, get_shared_acl,
             "Get a Shared-namespace mailbox's access control list", "sharing",
             response=AclList),
    Endpoint("PUT", _SHARED_ACL + "/{identifier}", put_shared_acl,
             "Set rights on a Shared-namespace mailbox", "sharing", body=SetRights,
             response=AclList),
    Endpoint("DELETE", _SHARED_ACL + "/{identifier}", delete_shared_acl,
             "Remove rights from a Shared-namespace mailbox", "sharing", response=AclList),
]
