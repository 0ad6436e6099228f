"""Endpoint declarations: one table that both Starlette and the OpenAPI document read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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


def routes(endpoints: list[Endpoint]) -> list[Route]:
    """Starlette routes for endpoints (several methods on one path share a Route)."""
    by_path: dict[str, dict[str, Handler]] = {}
    for ep in endpoints:
        by_path.setdefault(ep.path, {})[ep.method] = ep.handler
    out = []
    for path, handlers in by_path.items():

        async def dispatch(request: Request, handlers: dict[str, Handler] = handlers) -> Response:
            return await handlers[request.method](request)

        out.append(Route(path, dispatch, methods=list(handlers)))
    return out
