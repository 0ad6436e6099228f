"""Webhook registration routes: ``/webhooks`` (per user, or for every user)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..store import Hook
from .bodies import ApiError, ok, path_id, read_model, read_query
from .common import store_errors, store_of
from .convert import iso
from .models import NewWebhook, Success, WebhookInfo, WebhookList, WebhookQuery
from .routing import Endpoint


def _info(hook: Hook, *, secret: bool = False) -> WebhookInfo:
    return WebhookInfo(
        id=hook.id, url=hook.url, events=list(hook.events), user=hook.user_id,
        created=iso(hook.created) or "", secret=hook.secret if secret else None,
    )


def _user_id(value: str | None, field: str) -> str | None:
    if value is not None and (len(value) != 24 or any(c not in "0123456789abcdef"
                                                      for c in value)):
        raise ApiError(400, "InvalidRequest", f"invalid field {field}: not a 24-hex id")
    return value


async def create_webhook(request: Request) -> Response:
    """Register a hook; the answer holds its signing secret (shown only here)."""
    body = await read_model(request, NewWebhook)
    user_id = _user_id(body.user, "user")
    with store_errors("user"):
        hook = await store_of(request).webhooks.create(
            body.url, list(body.events), user_id=user_id, secret=body.secret
        )
    return ok(_info(hook, secret=True))


async def list_webhooks(request: Request) -> Response:
    """Registered hooks (``?user=`` for one user's own)."""
    params = read_query(request, WebhookQuery)
    user_id = _user_id(params.user, "user")
    hooks = await store_of(request).webhooks.list_hooks(user_id)
    return ok(WebhookList([_info(h) for h in hooks]))


async def get_webhook(request: Request) -> Response:
    """One hook."""
    hook_id = path_id(request, "hook")
    with store_errors("webhook"):
        hook = await store_of(request).webhooks.get(hook_id)
    return ok(_info(hook))


async def delete_webhook(request: Request) -> Response:
    """Unregister a hook (its pending deliveries are dropped)."""
    hook_id = path_id(request, "hook")
    with store_errors("webhook"):
        await store_of(request).webhooks.delete(hook_id)
    return ok(Success())


endpoints = [
    Endpoint("GET", "/webhooks", list_webhooks, "List webhooks", "webhooks",
             query=WebhookQuery, response=WebhookList, errors=()),
    Endpoint("POST", "/webhooks", create_webhook, "Register a webhook", "webhooks",
             body=NewWebhook, response=WebhookInfo),
    Endpoint("GET", "/webhooks/{hook}", get_webhook, "Get a webhook", "webhooks",
             response=WebhookInfo),
    Endpoint("DELETE", "/webhooks/{hook}", delete_webhook, "Delete a webhook", "webhooks",
             response=Success),
]
