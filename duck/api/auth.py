"""API access control (a pure ASGI middleware, so streaming responses pass through).

A request carries a token as ``Authorization: Bearer <token>`` or
``X-Access-Token: <token>``. The admin token (``api_token``, compared in constant
time) reaches everything. Any other token is looked up as a user's API token
(store: kept hashed, with an expiry; a revoked one fails at once) and makes the
request that user's: the route table (routing.authorize) then lets it reach only
that user's paths. Without a token: with an admin token configured, 401; without
one, the API answers loopback clients only (as the admin), and ``duck serve``
refuses to bind the API to a non-loopback address then (config.validate).
The principal is put in the ASGI scope under ``duck.principal``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any

import attrs

from ..store import StoreUnavailable

#: The ASGI scope key of the request's principal.
PRINCIPAL = "duck.principal"


@attrs.frozen
class Principal:
    """Who is asking: the admin, or one user (through their token)."""

    admin: bool
    user_id: str | None = None
    #: The user's token id (None for the admin).
    token_id: str | None = None


ADMIN = Principal(admin=True)


def principal_of(scope: Any) -> Principal:
    """The principal AccessControl found for this request (none: no access)."""
    found = scope.get(PRINCIPAL)
    return found if isinstance(found, Principal) else Principal(admin=False)


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

    #: Served to anyone who can reach the API (load balancers' health checks; the
    #: user login that hands out user tokens).
    OPEN_PATHS = frozenset({"/health", "/authenticate"})

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in self.OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = _token_of(scope.get("headers", []))
        if given is not None and self.token is not None and hmac.compare_digest(
                given.encode(), self.token.encode()):
            scope[PRINCIPAL] = ADMIN
        elif given is not None:
            principal = await self._user_principal(given)
            if principal is None:
                await _deny(send, 401, "Unauthorized", "a valid access token is required")
                return
            scope[PRINCIPAL] = principal
        elif self.token is None:
            client = scope.get("client")
            if not is_loopback(client[0] if client else None):
                await _deny(send, 403, "Forbidden", "the API serves loopback clients only")
                return
            scope[PRINCIPAL] = ADMIN
        else:
            await _deny(send, 401, "Unauthorized", "a valid access token is required")
            return
        await self.app(scope, receive, send)

    async def _user_principal(self, token: str) -> Principal | None:
        """The user whose live API token this is (a database read per request, so a
        revoked token fails at once everywhere), or None."""
        store = self.app.state.duck.store
        if store is None:
            return None
        try:
            found = await store.api_tokens.resolve(token)
        except StoreUnavailable:
            return None
        if found is None:
            return None
        return Principal(admin=False, user_id=found.user_id, token_id=found.id)


async def _deny(send: Any, status: int, code: str, error: str) -> None:
    body = json.dumps({"success": False, "error": error, "code": code}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="duck"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
