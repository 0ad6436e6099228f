"""The HTTP API application (Starlette, served by Hypercorn's trio worker)."""

from __future__ import annotations

import logging
from typing import Any

import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import observe
from ..store import Notifier, Store, StoreUnavailable
from . import (
    accounts,
    archive,
    autoreply,
    delivery,
    mailboxes,
    messages,
    outbound,
    sharing,
    sieve,
    sse,
    users,
    webhooks,
)
from .access_log import AccessLog
from .auth import AccessControl
from .bodies import ApiError, error_response
from .models import Health
from .openapi import document
from .routing import Endpoint, routes

log = logging.getLogger(__name__)


@attrs.define
class ApiState:
    """What the routes need from the running server."""

    store: Store | None = None
    #: component name -> up; /health is 200 only when all are up.
    components: dict[str, bool] = attrs.Factory(dict)
    notifier: Notifier | None = None
    sse: sse.SseHub = attrs.Factory(sse.SseHub)
    #: Access token; None serves loopback clients only (auth.py).
    api_token: str | None = None
    #: Lifetime of a user's API token when the request names none, seconds.
    api_token_ttl: int = 24 * 3600

    def ready(self) -> bool:
        """True when every registered component is up."""
        return bool(self.components) and all(self.components.values())


async def health(request: Request) -> JSONResponse:
    """200 with component states once everything is up, 503 before."""
    state: ApiState = request.app.state.duck
    status = 200 if state.ready() else 503
    return JSONResponse(
        {"success": status == 200, "status": "ok" if status == 200 else "starting",
         "components": state.components},
        status_code=status,
    )


async def metrics(request: Request) -> Response:
    """The server's metrics in the Prometheus text format."""
    body = await observe.current().scrape()
    return Response(body, media_type=observe.CONTENT_TYPE)


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/health", health, "Health of the server's components", "server",
             response=Health, errors=(), access="open"),
    Endpoint("GET", "/metrics", metrics, "Metrics (Prometheus text format)", "server",
             errors=(), produces="text/plain"),
    *users.endpoints, *mailboxes.endpoints, *messages.endpoints, *sse.endpoints,
    *webhooks.endpoints, *outbound.endpoints, *archive.endpoints, *sieve.endpoints,
    *sharing.endpoints, *accounts.endpoints,
    *delivery.endpoints, *autoreply.endpoints,
]
OPENAPI = document(ENDPOINTS)


async def openapi(request: Request) -> JSONResponse:
    """The OpenAPI 3.1 document of this API."""
    return JSONResponse(OPENAPI)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _unavailable(request: Request, exc: Exception) -> Response:
    return error_response(503, "Unavailable", "the database is unavailable")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HttpError")
    return error_response(exc.status_code, code, str(exc.detail))


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("API request crashed: %s %s", request.method, request.url.path)
    return error_response(500, "InternalError", "internal error")


def create_app(state: ApiState) -> Any:
    """Build the application around a shared state object (behind access control)."""
    handlers: dict[Any, Any] = {
        ApiError: _api_error,
        StoreUnavailable: _unavailable,
        HTTPException: _http_error,
        Exception: _crash,
    }
    app = Starlette(
        routes=[*routes(ENDPOINTS), Route("/openapi.json", openapi, methods=["GET"])],
        exception_handlers=handlers,
    )
    app.state.duck = state
    return AccessLog(AccessControl(app, state.api_token))
