"""API access control (a pure ASGI middleware, so streaming responses pass through).

With an access token configured every request must carry it, as
``Authorization: Bearer <token>`` or ``X-Access-Token: <token>`` (compared in
constant time). Without one, the API answers loopback clients only; ``duck serve``
also refuses to bind the API to a non-loopback address then (config.validate).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _token_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif lowered == b"x-access-token" and value:
            return value.decode("latin-1").strip()
    return None


class AccessControl:
    """Refuses requests without the token (401/403), or from afar without a token."""

    #: Served to anyone who can reach the API (load balancers' health checks).
    OPEN_PATHS = frozenset({"/health"})

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in self.OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if self.token is None:
            client = scope.get("client")
            if not is_loopback(client[0] if client else None):
                await _deny(send, 403, "Forbidden", "the API serves loopback clients only")
                return
        else:
            given = _token_of(scope.get("headers", []))
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                await _deny(send, 401, "Unauthorized", "a valid access token is required")
                return
        await self.app(scope, receive, send)


async def _deny(send: Any, status: int, code: str, error: str) -> None:
    body = json.dumps({"success": False, "error": error, "code": code}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="duck"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
