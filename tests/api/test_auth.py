"""API access control: token when configured, loopback only otherwise."""

from __future__ import annotations

import httpx
import pytest
import trio

from duck.api.app import ApiState, create_app
from duck.config import Config, ConfigError, load_config

TOKEN = "t0ken-of-at-least-16"


async def _get(app: object, client: tuple[str, int], **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=client)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://duck") as c:
        with trio.fail_after(10):
            return await c.get("/users/0123456789abcdef01234567", headers=headers)


async def test_without_token_only_loopback() -> None:
    app = create_app(ApiState())
    # Reaches the route (503: no store in this bare state), i.e. was let through.
    assert (await _get(app, ("127.0.0.1", 5000))).status_code == 503
    assert (await _get(app, ("::1", 5000))).status_code == 503
    far = await _get(app, ("192.0.2.7", 5000))
    assert far.status_code == 403 and far.json()["code"] == "Forbidden"


async def test_with_token_every_request_needs_it() -> None:
    app = create_app(ApiState(api_token=TOKEN))
    for client in (("127.0.0.1", 1), ("192.0.2.7", 1)):
        assert (await _get(app, client)).status_code == 401
        assert (await _get(app, client, authorization="Bearer wrong-token")).status_code == 401
        assert (await _get(app, client, authorization=f"Bearer {TOKEN}")).status_code == 503
        assert (await _get(app, client, **{"x-access-token": TOKEN})).status_code == 503


def test_serve_refuses_public_api_without_token() -> None:
    with pytest.raises(ConfigError, match="api_host"):
        load_config(overrides={"api_host": "0.0.0.0"}, environ={})
    assert load_config(overrides={"api_host": "0.0.0.0", "api_token": TOKEN},
                       environ={}).api_host == "0.0.0.0"
    with pytest.raises(ConfigError, match="api_token"):
        Config(api_token="short").validate()
