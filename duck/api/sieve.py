"""A user's Sieve scripts: ``/users/{user}/sieve`` (list; choose the active one),
``/users/{user}/sieve/{name}`` (get, upload, delete) and ``/sieve/validate``.

Scripts are checked with duck's own interpreter before they are stored; a
refusal names the line. A script that failed at delivery shows its error here
(``error``) until it is replaced.
"""

from __future__ import annotations

from urllib.parse import unquote

import attrs
from starlette.requests import Request
from starlette.responses import Response

from .. import sieve
from ..store import ScriptQuotaExceeded, SieveScript
from .bodies import ApiError, ok, read_model
from .common import store_errors, store_of, user_of
from .convert import iso
from .models import Success
from .routing import Endpoint


@attrs.frozen
class ScriptErrorInfo:
    """Why the script failed at a delivery (the message was kept in INBOX)."""

    message: str
    line: int
    at: str


@attrs.frozen
class ScriptInfo:
    """A stored script; ``source`` only when one script is asked for."""

    name: str
    size: int
    active: bool
    updated: str
    error: ScriptErrorInfo | None = None
    source: str | None = None
    success: bool = True


@attrs.frozen
class ScriptList:
    """Every script of a user by name, and the active one's name."""

    scripts: list[ScriptInfo]
    active: str | None
    success: bool = True


@attrs.frozen
class ScriptUpload:
    """A script's source; ``active`` makes it the active script once stored."""

    source: str
    active: bool = False


@attrs.frozen
class ActiveChoice:
    """The script to make active; null deactivates every script."""

    name: str | None


@attrs.frozen
class ScriptSource:
    """A script to check without storing it."""

    source: str


@attrs.frozen
class Validation:
    """The interpreter's verdict: valid, or the error and its line."""

    valid: bool
    error: str | None = None
    line: int | None = None
    success: bool = True


def _info(script: SieveScript, with_source: bool = False) -> ScriptInfo:
    error = None
    if script.error is not None:
        error = ScriptErrorInfo(script.error.message, script.error.line,
                                iso(script.error.at) or "")
    return ScriptInfo(script.name, script.size, script.active, iso(script.updated) or "",
                      error, script.source if with_source else None)


def _name(request: Request) -> str:
    return unquote(request.path_params["name"])


def _check(source: str) -> None:
    if len(source.encode("utf-8", "surrogatepass")) > sieve.MAX_SCRIPT_SIZE:
        raise ApiError(413, "TooBig", f"a script is at most {sieve.MAX_SCRIPT_SIZE} octets")
    try:
        sieve.compile_script(source)
    except sieve.SieveError as exc:
        raise ApiError(400, "InvalidScript", str(exc)) from exc


async def list_scripts(request: Request) -> Response:
    """The user's scripts (without sources) and which one is active."""
    user_id = await user_of(request)
    with store_errors("user"):
        scripts = await store_of(request).sieve.scripts(user_id)
    active = next((s.name for s in scripts if s.active), None)
    return ok(ScriptList([_info(s) for s in scripts], active))


async def get_script(request: Request) -> Response:
    """One script with its source and any error it met at delivery."""
    user_id = await user_of(request)
    with store_errors("script"):
        script = await store_of(request).sieve.get(user_id, _name(request))
    return ok(_info(script, with_source=True))


async def put_script(request: Request) -> Response:
    """Upload (or replace) a script: checked first (400 names the line), then stored
    within the caps (413)."""
    user_id = await user_of(request)
    body = await read_model(request, ScriptUpload)
    _check(body.source)
    store = store_of(request)
    name = _name(request)
    try:
        with store_errors("script"):
            script = await store.sieve.put(user_id, name, body.source)
            if body.active:
                await store.sieve.activate(user_id, name)
                script = await store.sieve.get(user_id, name)
    except ScriptQuotaExceeded as exc:
        raise ApiError(413, "OverQuota", str(exc)) from exc
    return ok(_info(script, with_source=True))


async def delete_script(request: Request) -> Response:
    """Delete a script; the active one cannot be (400: deactivate it first)."""
    user_id = await user_of(request)
    with store_errors("script"):
        await store_of(request).sieve.delete(user_id, _name(request))
    return ok(Success())


async def set_active(request: Request) -> Response:
    """Make a script the active one, or none (``{"name": null}``)."""
    user_id = await user_of(request)
    body = await read_model(request, ActiveChoice)
    with store_errors("script"):
        await store_of(request).sieve.activate(user_id, body.name)
    return ok(Success())


async def validate(request: Request) -> Response:
    """Check a script with duck's interpreter without storing it."""
    body = await read_model(request, ScriptSource)
    try:
        _check(body.source)
    except ApiError as exc:
        if exc.status != 400:
            raise
        cause = exc.__cause__
        line = cause.line if isinstance(cause, sieve.SieveError) and cause.line else None
        return ok(Validation(False, str(exc), line))
    return ok(Validation(True))


endpoints = [
    Endpoint("GET", "/users/{user}/sieve", list_scripts, "List a user's Sieve scripts",
             "sieve", response=ScriptList, access="user"),
    Endpoint("PUT", "/users/{user}/sieve", set_active,
             "Choose the active Sieve script (null: none)", "sieve", body=ActiveChoice,
             response=Success, access="user"),
    Endpoint("GET", "/users/{user}/sieve/{name}", get_script,
             "Get a Sieve script with its source and last delivery error", "sieve",
             response=ScriptInfo, access="user"),
    Endpoint("PUT", "/users/{user}/sieve/{name}", put_script,
             "Upload a Sieve script (checked first; optionally made active)", "sieve",
             body=ScriptUpload, response=ScriptInfo, errors=(404, 413), access="user"),
    Endpoint("DELETE", "/users/{user}/sieve/{name}", delete_script,
             "Delete a Sieve script (not the active one)", "sieve", response=Success,
             access="user"),
    Endpoint("POST", "/sieve/validate", validate, "Check a Sieve script without storing it",
             "sieve", body=ScriptSource, response=Validation, errors=()),
]
