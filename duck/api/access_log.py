"""One log line per API request (method, path, status, duration), as a pure ASGI
middleware: streaming responses (SSE) pass through, and are logged when they end."""

from __future__ import annotations

import time
from typing import Any

from .. import observe


class AccessLog:
    """Reports each HTTP request to the server's observer once it is answered."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            observe.current().api_request(scope["method"], scope["path"], status,
                                          time.perf_counter() - started)
