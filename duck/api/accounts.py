"""Account routes: user login to the API (``POST /authenticate``), API tokens,
application passwords, two-factor (TOTP), the auth log.

``POST /authenticate`` is open (a webmail has no token yet): it goes through the
store's one login check (protocol "api": the throttle shared by every process,
the auth log, the two-factor rule) and answers a token that reaches only that
user's paths. Every other route here is a ``/users/{user}/...`` path, callable by
the admin or with that user's own token (routing.authorize).
"""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response

from ..store import (
    ApiToken,
    AppPassword,
    AuthenticationFailed,
    AuthEvent,
    InvalidInput,
    Throttled,
    TwoFactorRequired,
)
from .account_models import (
    AppPasswordInfo,
    AppPasswordList,
    AuthLogEntry,
    AuthLogList,
    AuthLogQuery,
    Login,
    NewAppPasswordBody,
    NewToken,
    RecoveryCodes,
    TokenInfo,
    TokenList,
    TotpCode,
    TotpSetupInfo,
    TwoFactorInfo,
)
from .bodies import ApiError, ok, path_id, read_model, read_query
from .common import store_errors, store_of, user_of
from .convert import iso
from .models import Success
from .routing import Endpoint

#: Token lifetime when the request names none.
DEFAULT_TTL = 24 * 3600


def _token(token: ApiToken, secret: str | None = None) -> TokenInfo:
    return TokenInfo(id=token.id, user=token.user_id, description=token.description,
                     created=iso(token.created) or "", expires=iso(token.expires) or "",
                     app_password=token.app_password, token=secret)


def _app_password(item: AppPassword, secret: str | None = None) -> AppPasswordInfo:
    return AppPasswordInfo(id=item.id, description=item.description, scopes=list(item.scopes),
                           created=iso(item.created) or "", last_used=iso(item.last_used),
                           last_ip=item.last_ip, password=secret)


def _event(event: AuthEvent) -> AuthLogEntry:
    return AuthLogEntry(time=iso(event.time) or "", username=event.username,
                        protocol=event.protocol, mechanism=event.mechanism, peer=event.peer,
                        result=event.result, reason=event.reason, user=event.user_id,
                        app_password=event.app_password)


def _ttl(seconds: int | None, request: Request) -> dt.timedelta:
    default = getattr(request.app.state.duck, "api_token_ttl", DEFAULT_TTL)
    return dt.timedelta(seconds=seconds or default)


async def login(request: Request) -> Response:
    """Log in as a user (password, plus ``otp`` with two-factor on; or an
    application password scoped to api): a token for that user's paths."""
    body = await read_model(request, Login)
    store = store_of(request)
    peer = request.client.host if request.client else ""
    try:
        result = await store.authenticate(body.username, body.password, protocol="api",
                                          mechanism="password", peer=peer, otp=body.otp)
    except Throttled as exc:
        raise ApiError(429, "RateLimited", "too many failed logins, try again later") from exc
    except TwoFactorRequired as exc:
        raise ApiError(401, "TwoFactorRequired", "a valid two-factor code is required") from exc
    except AuthenticationFailed as exc:
        raise ApiError(401, "AuthenticationFailed", "invalid credentials") from exc
    with store_errors("user"):
        made = await store.api_tokens.create(
            result.user.id, ttl=_ttl(body.ttl, request), description=body.description,
            app_password=result.app_password)
    return ok(_token(made.token, made.secret))


async def create_token(request: Request) -> Response:
    """A new token for the user (shown only here)."""
    user_id = path_id(request, "user")
    body = await read_model(request, NewToken)
    with store_errors("user"):
        made = await store_of(request).api_tokens.create(
            user_id, ttl=_ttl(body.ttl, request), description=body.description)
    return ok(_token(made.token, made.secret))


async def list_tokens(request: Request) -> Response:
    """The user's live tokens (never the tokens themselves)."""
    user_id = await user_of(request)
    tokens = await store_of(request).api_tokens.of_user(user_id)
    return ok(TokenList([_token(t) for t in tokens]))


async def revoke_token(request: Request) -> Response:
    """Revoke one of the user's tokens: it stops working at once, everywhere."""
    user_id = path_id(request, "user")
    token_id = path_id(request, "token")
    with store_errors("token"):
        await store_of(request).api_tokens.revoke(user_id, token_id)
    return ok(Success())


async def create_app_password(request: Request) -> Response:
    """A new application password (its secret is shown only here)."""
    user_id = path_id(request, "user")
    body = await read_model(request, NewAppPasswordBody)
    with store_errors("user"):
        made = await store_of(request).app_passwords.create(
            user_id, body.description, list(body.scopes))
    return ok(_app_password(made.app_password, made.secret))


async def list_app_passwords(request: Request) -> Response:
    """The user's application passwords (never their secrets)."""
    user_id = await user_of(request)
    items = await store_of(request).app_passwords.of_user(user_id)
    return ok(AppPasswordList([_app_password(a) for a in items]))


async def revoke_app_password(request: Request) -> Response:
    """Revoke an application password: new logins with it fail at once."""
    user_id = path_id(request, "user")
    item = path_id(request, "apppassword")
    with store_errors("application password"):
        await store_of(request).app_passwords.revoke(user_id, item)
    return ok(Success())


async def two_factor_state(request: Request) -> Response:
    """Whether two-factor authentication is on."""
    user_id = path_id(request, "user")
    with store_errors("user"):
        enabled = await store_of(request).two_factor.enabled(user_id)
    return ok(TwoFactorInfo(totp=enabled))


async def totp_setup(request: Request) -> Response:
    """Start TOTP enrolment: the secret and the otpauth:// URI for the app."""
    user_id = path_id(request, "user")
    with store_errors("user"):
        setup = await store_of(request).two_factor.setup(user_id)
    return ok(TotpSetupInfo(secret=setup.secret, uri=setup.uri))


async def totp_enable(request: Request) -> Response:
    """Turn TOTP on with a code from the app: the recovery codes (shown only here)."""
    user_id = path_id(request, "user")
    body = await read_model(request, TotpCode)
    try:
        with store_errors("user"):
            codes = await store_of(request).auth.enable_totp(user_id, body.code)
    except Throttled as exc:
        raise ApiError(429, "RateLimited", "too many wrong codes, try again later") from exc
    except AuthenticationFailed as exc:
        raise ApiError(400, "InvalidCode", "invalid two-factor code") from exc
    return ok(RecoveryCodes(codes))


async def totp_disable(request: Request) -> Response:
    """Turn two-factor authentication off."""
    user_id = path_id(request, "user")
    with store_errors("user"):
        await store_of(request).two_factor.disable(user_id)
    return ok(Success())


async def new_recovery_codes(request: Request) -> Response:
    """Replace the recovery codes (the old ones stop working)."""
    user_id = path_id(request, "user")
    try:
        with store_errors("user"):
            codes = await store_of(request).two_factor.recovery_codes(user_id)
    except InvalidInput as exc:
        raise ApiError(400, "InvalidInput", str(exc)) from exc
    return ok(RecoveryCodes(codes))


async def user_authlog(request: Request) -> Response:
    """The user's login attempts, newest first."""
    user_id = await user_of(request)
    query = read_query(request, AuthLogQuery)
    events = await store_of(request).authlog.of_user(user_id, limit=query.limit or 100)
    return ok(AuthLogList([_event(e) for e in events]))


async def unknown_authlog(request: Request) -> Response:
    """Login attempts for user names that do not exist (admin only)."""
    query = read_query(request, AuthLogQuery)
    events = await store_of(request).authlog.unknown_users(limit=query.limit or 100)
    return ok(AuthLogList([_event(e) for e in events]))


_USER = "/users/{user}"
endpoints = [
    Endpoint("POST", "/authenticate", login, "Log in as a user: a token for that user",
             "access", body=Login, response=TokenInfo, errors=(401, 429), access="open"),
    Endpoint("GET", _USER + "/tokens", list_tokens, "List the user's API tokens", "access",
             response=TokenList, access="user"),
    Endpoint("POST", _USER + "/tokens", create_token, "Create an API token for the user",
             "access", body=NewToken, response=TokenInfo, access="user"),
    Endpoint("DELETE", _USER + "/tokens/{token}", revoke_token, "Revoke an API token",
             "access", response=Success, access="user"),
    Endpoint("GET", _USER + "/apppasswords", list_app_passwords,
             "List application passwords", "access", response=AppPasswordList, access="user"),
    Endpoint("POST", _USER + "/apppasswords", create_app_password,
             "Create an application password", "access", body=NewAppPasswordBody,
             response=AppPasswordInfo, access="user"),
    Endpoint("DELETE", _USER + "/apppasswords/{apppassword}", revoke_app_password,
             "Revoke an application password", "access", response=Success, access="user"),
    Endpoint("GET", _USER + "/2fa", two_factor_state, "Two-factor state", "access",
             response=TwoFactorInfo, access="user"),
    Endpoint("POST", _USER + "/2fa/totp/setup", totp_setup, "Start TOTP enrolment",
             "access", response=TotpSetupInfo, access="user"),
    Endpoint("POST", _USER + "/2fa/totp/enable", totp_enable, "Enable TOTP with a code",
             "access", body=TotpCode, response=RecoveryCodes, errors=(404, 429),
             access="user"),
    Endpoint("DELETE", _USER + "/2fa/totp", totp_disable, "Disable two-factor", "access",
             response=Success, access="user"),
    Endpoint("POST", _USER + "/2fa/recovery-codes", new_recovery_codes,
             "Replace the recovery codes", "access", response=RecoveryCodes, access="user"),
    Endpoint("GET", _USER + "/authlog", user_authlog, "The user's login attempts",
             "access", query=AuthLogQuery, response=AuthLogList, access="user"),
    Endpoint("GET", "/authlog/unknown", unknown_authlog,
             "Login attempts for unknown user names", "access", query=AuthLogQuery,
             response=AuthLogList, errors=()),
]
