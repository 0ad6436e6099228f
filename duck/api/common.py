"""What every resource module needs: the store, typed store errors as HTTP errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.requests import Request

from ..store import (
    AlreadyExists,
    InvalidInput,
    Mailbox,
    NotFound,
    OverQuota,
    Store,
    TooBig,
)
from .bodies import ApiError, path_id


def store_of(request: Request) -> Store:
    """The running store, or 503 while it starts."""
    store: Store | None = request.app.state.duck.store
    if store is None:
        raise ApiError(503, "Unavailable", "the store is not ready")
    return store


@contextmanager
def store_errors(what: str = "resource") -> Iterator[None]:
    """Map the store's typed errors to HTTP statuses (one table for the API)."""
    try:
        yield
    except NotFound as exc:
        raise ApiError(404, "NotFound", str(exc) or f"no such {what}") from exc
    except AlreadyExists as exc:
        raise ApiError(409, "AlreadyExists", str(exc)) from exc
    except OverQuota as exc:
        raise ApiError(413, "OverQuota", str(exc)) from exc
    except TooBig as exc:
        raise ApiError(413, "TooBig", str(exc)) from exc
    except InvalidInput as exc:
        raise ApiError(400, "InvalidInput", str(exc)) from exc


async def user_of(request: Request) -> str:
    """The ``{user}`` path parameter of an existing user (400/404)."""
    user_id = path_id(request, "user")
    with store_errors("user"):
        await store_of(request).users.get(user_id)
    return user_id


async def mailbox_of(request: Request, name: str = "mailbox") -> Mailbox:
    """The ``{user}``'s mailbox ``{mailbox}`` (400 for a bad id, 404 if not theirs)."""
    user_id = path_id(request, "user")
    mailbox_id = path_id(request, name)
    with store_errors("mailbox"):
        mailbox = await store_of(request).mailboxes.get_by_id(mailbox_id)
    if mailbox.user_id != user_id:
        raise ApiError(404, "NotFound", "no such mailbox")
    return mailbox
