"""Endpoint declarations: one table that Starlette, the OpenAPI document and the
access check read.

Who may call an endpoint is part of its declaration (``access``): "admin" (the
admin token, or a loopback client when none is configured), "user" (also a
user's own token, for paths whose ``{user}`` is that user) or "open" (anyone,
e.g. ``POST /authenticate``). The check runs before the handler, from the path
alone, so a refused request never reaches the store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import principal_of
from .bodies import ApiError

Handler = Callable[[Request], Awaitable[Response]]


@attrs.frozen
class Endpoint:
    """One operation: method, path, handler and the models that describe it."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    #: JSON request body model.
    body: type | None = None
    #: Query-parameter model.
    query: type | None = None
    #: 200 response model (JSON), unless ``produces`` says otherwise.
    response: type | None = None
    #: Error statuses this operation can answer besides 400/401/403/503.
    errors: tuple[int, ...] = (404,)
    #: Media type of the 200 response body.
    produces: str = "application/json"
    #: Media type of a raw (non-JSON) request body.
    raw_body: str | None = None
    #: ``{user}`` may be a user name or an address as well as an id.
    any_user: bool = False
    #: Who may call it: "admin", "user" (their own ``{user}`` paths) or "open".
    access: str = "admin"


def authorize(endpoint: Endpoint, request: Request) -> None:
    """Refuse (403) a request its principal may not make; a user's token reaches
    only paths whose ``{user}`` is that user. Says nothing of whether the other
    user or resource exists."""
    if endpoint.access == "open":
        return
    principal = principal_of(request.scope)
    if principal.admin:
        return
    if endpoint.access != "user" or request.path_params.get("user") != principal.user_id:
        raise ApiError(403, "Forbidden", "this token does not reach this resource")


def routes(endpoints: list[Endpoint]) -> list[Route]:
    """Starlette routes for endpoints (several methods on one path share a Route)."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for ep in endpoints:
        by_path.setdefault(ep.path, {})[ep.method] = ep
    out = []
    for path, handlers in by_path.items():

        async def dispatch(request: Request,
                           handlers: dict[str, Endpoint] = handlers) -> Response:
            endpoint = handlers[request.method]
            authorize(endpoint, request)
            return await endpoint.handler(request)

        out.append(Route(path, dispatch, methods=list(handlers)))
    return out
