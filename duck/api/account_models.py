"""Request and response bodies of the account routes (accounts.py): logins and
tokens, application passwords, two-factor, the auth log. Secrets appear only in
the answer that creates them (``token``, ``password``, ``recovery_codes``)."""

from __future__ import annotations

from typing import Literal

import attrs
from attrs import validators as v

Scope = Literal["imap", "pop3", "managesieve", "smtp", "api"]
_SHORT = v.and_(v.instance_of(str), v.max_len(1024))
_DESCRIPTION = v.and_(v.instance_of(str), v.max_len(256))
#: Longest token lifetime a request may ask for: 365 days.
MAX_TTL = 365 * 24 * 3600


@attrs.frozen
class Login:
    """Body of ``POST /authenticate``: the password (or an application password
    scoped to api), the two-factor code when enabled, the token's lifetime."""

    username: str = attrs.field(validator=_SHORT)
    password: str = attrs.field(validator=_SHORT)
    otp: str | None = attrs.field(default=None, validator=v.optional(v.max_len(64)))
    ttl: int | None = attrs.field(default=None, validator=v.optional(
        v.and_(v.ge(1), v.le(MAX_TTL))))
    description: str = attrs.field(default="", validator=_DESCRIPTION)


@attrs.frozen
class NewToken:
    """Body of ``POST /users/{user}/tokens``."""

    ttl: int | None = attrs.field(default=None, validator=v.optional(
        v.and_(v.ge(1), v.le(MAX_TTL))))
    description: str = attrs.field(default="", validator=_DESCRIPTION)


@attrs.frozen
class TokenInfo:
    """An API token as listed (the token itself only when created)."""

    id: str
    user: str
    description: str
    created: str
    expires: str
    app_password: str | None = None
    token: str | None = None
    success: bool = True


@attrs.frozen
class TokenList:
    """A user's live API tokens."""

    results: list[TokenInfo]
    success: bool = True


@attrs.frozen
class NewAppPasswordBody:
    """Body of ``POST /users/{user}/apppasswords``."""

    description: str = attrs.field(validator=_DESCRIPTION)
    scopes: list[Scope] = attrs.field(validator=v.and_(v.min_len(1), v.max_len(5)))


@attrs.frozen
class AppPasswordInfo:
    """An application password as listed (the password only when created)."""

    id: str
    description: str
    scopes: list[str]
    created: str
    last_used: str | None = None
    last_ip: str | None = None
    password: str | None = None
    success: bool = True


@attrs.frozen
class AppPasswordList:
    """A user's application passwords."""

    results: list[AppPasswordInfo]
    success: bool = True


@attrs.frozen
class TotpSetupInfo:
    """A pending TOTP enrolment: the secret (base32) and the otpauth:// URI."""

    secret: str
    uri: str
    success: bool = True


@attrs.frozen
class TotpCode:
    """A code from the authenticator app."""

    code: str = attrs.field(validator=v.max_len(64))


@attrs.frozen
class RecoveryCodes:
    """Single-use recovery codes, shown only here."""

    recovery_codes: list[str]
    success: bool = True


@attrs.frozen
class TwoFactorInfo:
    """Whether two-factor authentication is on."""

    totp: bool
    success: bool = True


@attrs.frozen
class AuthLogEntry:
    """One login attempt."""

    time: str
    username: str
    protocol: str
    mechanism: str
    peer: str
    result: str
    reason: str | None = None
    user: str | None = None
    app_password: str | None = None


@attrs.frozen
class AuthLogList:
    """Login attempts, newest first."""

    results: list[AuthLogEntry]
    success: bool = True


@attrs.frozen
class AuthLogQuery:
    """How many entries (newest first)."""

    limit: int | None = attrs.field(default=None, validator=v.optional(
        v.and_(v.ge(1), v.le(1000))))
