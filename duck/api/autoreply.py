"""A user's autoreply and forwarding as plain JSON resources (as WildDuck has them):
``/users/{user}/autoreply`` and ``/users/{user}/forwarding``. duck turns them into
Sieve rules of its own, run before the user's script (docs/sieve.md)."""

from __future__ import annotations

import datetime as dt

import attrs
from starlette.requests import Request
from starlette.responses import Response

from ..store import Autoreply, Forwarding, MailRules
from .bodies import ApiError, ok, read_model
from .common import store_errors, store_of, user_of
from .convert import iso
from .routing import Endpoint


@attrs.frozen
class AutoreplyBody:
    """An out-of-office reply: plain ``text`` (and optional ``html``), an optional
    ``subject`` ("Auto: " and the original's by default), on while ``enabled`` and
    between ``start`` and ``end`` (ISO 8601) when given. One reply per sender a day."""

    text: str
    enabled: bool = True
    subject: str | None = None
    html: str | None = None
    start: str | None = None
    end: str | None = None


@attrs.frozen
class AutoreplyInfo:
    """The autoreply (null fields when none is set)."""

    enabled: bool
    text: str | None
    subject: str | None
    html: str | None
    start: str | None
    end: str | None
    success: bool = True


@attrs.frozen
class ForwardingBody:
    """Forward every message to ``targets`` (1 to 10 addresses); ``keep`` keeps a
    copy in the mailbox too."""

    targets: list[str]
    keep: bool = True


@attrs.frozen
class ForwardingInfo:
    """The forwarding targets (empty when none)."""

    targets: list[str]
    keep: bool
    success: bool = True


def _when(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ApiError(400, "InvalidInput", f"invalid field {name}: not ISO 8601") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _autoreply_info(rules: MailRules) -> AutoreplyInfo:
    auto = rules.autoreply
    if auto is None:
        return AutoreplyInfo(False, None, None, None, None, None)
    return AutoreplyInfo(auto.enabled, auto.text, auto.subject, auto.html,
                         iso(auto.start) if auto.start else None,
                         iso(auto.end) if auto.end else None)


def _forwarding_info(rules: MailRules) -> ForwardingInfo:
    fwd = rules.forwarding
    return ForwardingInfo(list(fwd.targets) if fwd else [], fwd.keep if fwd else True)


async def get_autoreply(request: Request) -> Response:
    """The user's autoreply."""
    user_id = await user_of(request)
    with store_errors("user"):
        return ok(_autoreply_info(await store_of(request).sieve.rules(user_id)))


async def put_autoreply(request: Request) -> Response:
    """Set the user's autoreply."""
    user_id = await user_of(request)
    body = await read_model(request, AutoreplyBody)
    value = Autoreply(body.enabled, body.text, body.subject, body.html,
                      _when(body.start, "start"), _when(body.end, "end"))
    with store_errors("user"):
        return ok(_autoreply_info(await store_of(request).sieve.set_autoreply(user_id, value)))


async def delete_autoreply(request: Request) -> Response:
    """Remove the user's autoreply."""
    user_id = await user_of(request)
    with store_errors("user"):
        return ok(_autoreply_info(await store_of(request).sieve.set_autoreply(user_id, None)))


async def get_forwarding(request: Request) -> Response:
    """The user's forwarding."""
    user_id = await user_of(request)
    with store_errors("user"):
        return ok(_forwarding_info(await store_of(request).sieve.rules(user_id)))


async def put_forwarding(request: Request) -> Response:
    """Set the user's forwarding targets."""
    user_id = await user_of(request)
    body = await read_model(request, ForwardingBody)
    value = Forwarding(tuple(body.targets), body.keep)
    with store_errors("user"):
        return ok(_forwarding_info(await store_of(request).sieve.set_forwarding(user_id,
                                                                                value)))


async def delete_forwarding(request: Request) -> Response:
    """Stop forwarding."""
    user_id = await user_of(request)
    with store_errors("user"):
        return ok(_forwarding_info(await store_of(request).sieve.set_forwarding(user_id,
                                                                                None)))


endpoints = [
    Endpoint("GET", "/users/{user}/autoreply", get_autoreply, "Get the autoreply", "sieve",
             response=AutoreplyInfo, access="user"),
    Endpoint("PUT", "/users/{user}/autoreply", put_autoreply, "Set the autoreply", "sieve",
             body=AutoreplyBody, response=AutoreplyInfo, access="user"),
    Endpoint("DELETE", "/users/{user}/autoreply", delete_autoreply, "Remove the autoreply",
             "sieve", response=AutoreplyInfo, access="user"),
    Endpoint("GET", "/users/{user}/forwarding", get_forwarding, "Get the forwarding targets",
             "sieve", response=ForwardingInfo, access="user"),
    Endpoint("PUT", "/users/{user}/forwarding", put_forwarding, "Set the forwarding targets",
             "sieve", body=ForwardingBody, response=ForwardingInfo, access="user"),
    Endpoint("DELETE", "/users/{user}/forwarding", delete_forwarding, "Stop forwarding",
             "sieve", response=ForwardingInfo, access="user"),
]
