"""User routes: create (WildDuck's ``POST /user/create`` and ``POST /users``), get."""

from __future__ import annotations

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..store import AlreadyExists, InvalidInput, NotFound, Store
from .bodies import ApiError, read_model


@attrs.frozen
class CreateUser:
    """Body of a user-creation request."""

    username: str
    password: str
    quota: int | None = None


def _store(request: Request) -> Store:
    store: Store | None = request.app.state.duck.store
    if store is None:
        raise ApiError(503, "Unavailable", "the store is not ready")
    return store


async def create_user(request: Request) -> JSONResponse:
    """Create a user; answers ``{"success": true, "id", "username"}``."""
    body = await read_model(request, CreateUser)
    store = _store(request)
    try:
        user = await store.users.create(body.username, body.password, quota=body.quota)
    except InvalidInput as exc:
        raise ApiError(400, "InputValidationError", str(exc)) from exc
    except AlreadyExists as exc:
        raise ApiError(409, "UserExistsError", "this username already exists") from exc
    return JSONResponse({"success": True, "id": user.id, "username": user.username})


async def get_user(request: Request) -> JSONResponse:
    """A user's public record."""
    store = _store(request)
    try:
        user = await store.users.get(request.path_params["user"])
    except NotFound as exc:
        raise ApiError(404, "UserNotFound", "no such user") from exc
    return JSONResponse(
        {
            "success": True,
            "id": user.id,
            "username": user.username,
            "quota": {"allowed": user.quota, "used": user.storage_used},
            "created": user.created.isoformat(),
            "disabled": user.disabled,
        }
    )


routes = [
    Route("/user/create", create_user, methods=["POST"]),
    Route("/users", create_user, methods=["POST"]),
    Route("/users/{user}", get_user, methods=["GET"]),
]
