"""User routes: create (WildDuck's ``POST /user/create`` and ``POST /users``), list,
get (by id, user name or address), password, quota, delete; and the user's
addresses."""

from __future__ import annotations

from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..store import AlreadyExists, InvalidInput, NotFound, User
from .bodies import ApiError, ok, path_id, read_model, read_query
from .common import store_errors, store_of, user_of
from .convert import iso
from .models import (
    AddressInfo,
    AddressList,
    ChangePassword,
    Created,
    CreateUser,
    NewAddress,
    Pop3Settings,
    Quota,
    Recipient,
    SetQuota,
    Success,
    UserInfo,
    UserList,
    UserQuery,
)
from .routing import Endpoint

__all__ = ["CreateUser", "endpoints"]


async def create_user(request: Request) -> JSONResponse:
    """Create a user; answers ``{"success": true, "id", "username"}``."""
    body = await read_model(request, CreateUser)
    store = store_of(request)
    try:
        user = await store.users.create(body.username, body.password, quota=body.quota)
    except InvalidInput as exc:
        raise ApiError(400, "InputValidationError", str(exc)) from exc
    except AlreadyExists as exc:
        raise ApiError(409, "UserExistsError", "this username already exists") from exc
    return ok(Created(id=user.id, username=user.username))


def user_info(user: User) -> UserInfo:
    """A user's public record."""
    return UserInfo(
        id=user.id, username=user.username, quota=Quota(user.quota, user.storage_used),
        created=iso(user.created) or "", disabled=user.disabled,
        pop3_folder=user.pop3_folder,
    )


async def get_user(request: Request) -> JSONResponse:
    """A user's public record, by id, user name or any of its addresses."""
    key = unquote(request.path_params["user"])
    try:
        user = await store_of(request).users.lookup(key)
    except NotFound as exc:
        raise ApiError(404, "UserNotFound", "no such user") from exc
    return ok(user_info(user))


async def list_users(request: Request) -> JSONResponse:
    """A page of users sorted by user name, optionally filtered."""
    query = read_query(request, UserQuery)
    with store_errors("user"):
        users, after = await store_of(request).users.list(
            query.query, limit=query.limit, after=query.after)
    return ok(UserList([user_info(u) for u in users], after))


async def delete_user(request: Request) -> Response:
    """Delete a user with everything it has."""
    user_id = path_id(request, "user")
    with store_errors("user"):
        await store_of(request).admin.delete_user(user_id)
    return ok(Success())


async def change_password(request: Request) -> Response:
    """Set a new password."""
    user_id = path_id(request, "user")
    body = await read_model(request, ChangePassword)
    with store_errors("user"):
        await store_of(request).admin.set_password(user_id, body.password)
    return ok(Success())


async def get_quota(request: Request) -> Response:
    """Quota and usage."""
    user_id = path_id(request, "user")
    with store_errors("user"):
        used, allowed = await store_of(request).quota(user_id)
    return ok(Quota(allowed=allowed, used=used))


async def set_quota(request: Request) -> Response:
    """Change the quota."""
    user_id = path_id(request, "user")
    body = await read_model(request, SetQuota)
    store = store_of(request)
    with store_errors("user"):
        await store.admin.set_quota(user_id, body.quota)
        used, allowed = await store.quota(user_id)
    return ok(Quota(allowed=allowed, used=used))


async def set_pop3(request: Request) -> Response:
    """Choose the folder POP3 serves (an existing mailbox of the user)."""
    user_id = path_id(request, "user")
    body = await read_model(request, Pop3Settings)
    with store_errors("user"):
        folder = await store_of(request).admin.set_pop3_folder(user_id, body.folder)
    return ok(Pop3Settings(folder=folder))


async def list_addresses(request: Request) -> Response:
    """The addresses routed to the user."""
    user_id = path_id(request, "user")
    with store_errors("user"):
        items = await store_of(request).admin.addresses(user_id)
    return ok(AddressList([AddressInfo(a, main) for a, main in items]))


async def recipient(request: Request) -> Response:
    """Whether LMTP would accept mail for an address (the MTA's recipient check)."""
    address = unquote(request.path_params["address"])
    found = await store_of(request).users.resolve_address(address)
    if found is None:
        raise ApiError(404, "NotFound", "no such recipient")
    return ok(Recipient(found.address, found.user_id))


async def add_address(request: Request) -> Response:
    """Route one more address to the user."""
    user_id = path_id(request, "user")
    body = await read_model(request, NewAddress)
    with store_errors("user"):
        address = await store_of(request).admin.add_address(user_id, body.address)
    return ok(AddressInfo(address, False))


async def remove_address(request: Request) -> Response:
    """Stop routing an address (not the main one) to the user."""
    await user_of(request)
    address = unquote(request.path_params["address"])
    with store_errors("address"):
        await store_of(request).admin.remove_address(request.path_params["user"], address)
    return ok(Success())


endpoints = [
    Endpoint("POST", "/user/create", create_user, "Create a user (WildDuck path)", "users",
             body=CreateUser, response=Created, errors=(409,)),
    Endpoint("POST", "/users", create_user, "Create a user", "users",
             body=CreateUser, response=Created, errors=(409,)),
    Endpoint("GET", "/users", list_users, "List users (paged, filtered by name)", "users",
             query=UserQuery, response=UserList, errors=()),
    Endpoint("GET", "/users/{user}", get_user, "Get a user by id, user name or address",
             "users", response=UserInfo, any_user=True, access="user"),
    Endpoint("DELETE", "/users/{user}", delete_user, "Delete a user and all its mail",
             "users", response=Success),
    Endpoint("PUT", "/users/{user}/password", change_password, "Change the password",
             "users", body=ChangePassword, response=Success),
    Endpoint("GET", "/users/{user}/quota", get_quota, "Get quota and usage", "users",
             response=Quota, access="user"),
    Endpoint("PUT", "/users/{user}/quota", set_quota, "Set the quota", "users",
             body=SetQuota, response=Quota),
    Endpoint("PUT", "/users/{user}/pop3", set_pop3, "Set the POP3 folder", "users",
             body=Pop3Settings, response=Pop3Settings, access="user"),
    Endpoint("GET", "/users/{user}/addresses", list_addresses, "List addresses",
             "addresses", response=AddressList, access="user"),
    Endpoint("POST", "/users/{user}/addresses", add_address, "Add an address",
             "addresses", body=NewAddress, response=AddressInfo, errors=(404, 409)),
    Endpoint("DELETE", "/users/{user}/addresses/{address}", remove_address,
             "Remove an address", "addresses", response=Success),
    Endpoint("GET", "/recipients/{address}", recipient,
             "Is this a deliverable recipient? (the MTA's check before accepting mail)",
             "addresses", response=Recipient),
]
