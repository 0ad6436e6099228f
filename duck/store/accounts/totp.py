"""Two-factor authentication with TOTP (RFC 6238): enrolment, verification,
recovery codes, disable.

Kept in the user's document under ``totp``: the shared secret (it must be read
back to compute codes, so it cannot be hashed), whether it is enabled, the last
time step accepted and the digests of the unused recovery codes.

- Enrolment is two steps: ``setup`` draws a secret and stores it as pending (the
  provisioning URI goes to the authenticator app); ``enable`` turns it on only
  once a code computed from it is shown, so a user never locks themself out with
  a secret their app did not take.
- Verification accepts the current step and one either side (RFC 6238 §5.2:
  clock drift and transmission delay) and refuses a step at or before the last
  accepted one: a code seen once (shoulder, phishing proxy) cannot be replayed.
  The check-and-set of ``last_step`` is one conditional update, exact across
  processes.
- Recovery codes are single-use: each is removed with ``$pull`` as it is used.
- Failed codes count on the ``otp:<user id>`` throttle key (loginthrottle.py);
  at its limit codes are refused unchecked until the window ends (6 digits
  would otherwise fall to a patient guesser with the password).

The HMAC work is ``cryptography``'s TOTP, whose ``verify`` compares in constant time.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

import attrs
from bson import ObjectId
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from ..engine import schema
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import InvalidInput, NotFound
from .tokens import digest, new_recovery_code, recovery_form

#: RFC 6238 defaults every authenticator app understands: SHA-1, 6 digits, 30 s.
DIGITS = 6
STEP = 30
#: RFC 4226 §4 R6: at least 128 bits of secret; 160 recommended.
SECRET_BYTES = 20
#: Steps either side of now that are accepted.
WINDOW = 1
RECOVERY_CODES = 10
ISSUER = "duck"


@attrs.frozen
class TotpSetup:
    """A pending enrolment: the secret (base32, for typing) and the otpauth:// URI."""

    secret: str
    uri: str


def _totp(key: bytes) -> TOTP:
    return TOTP(key, DIGITS, SHA1(), STEP)


def _b32(key: bytes) -> str:
    return base64.b32encode(key).decode("ascii").rstrip("=")


def matching_step(key: bytes, code: str, now: float) -> int | None:
    """The time step within the window whose code is ``code``, or None."""
    text = code.strip().replace(" ", "")
    if len(text) != DIGITS or not text.isdigit():
        return None
    current = int(now) // STEP
    found = None
    totp = _totp(key)
    # Every step is checked (no early exit), so timing does not say which matched.
    for step in range(current - WINDOW, current + WINDOW + 1):
        try:
            totp.verify(text.encode("ascii"), step * STEP)
        except InvalidToken:
            continue
        found = step if found is None else found
    return found


class TwoFactor:
    """TOTP state in the ``users`` collection. Blocking ``*_sync`` helpers run in a
    worker thread; the async methods are the public API."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.clock = time.time

    @property
    def _users(self) -> Any:
        return self._database.collection(schema.USERS)

    async def setup(self, user_id: str, *, issuer: str = ISSUER) -> TotpSetup:
        """Draw a secret and keep it pending until ``enable`` (NotFound,
        InvalidInput when two-factor is already on)."""
        user = parse_id(user_id)
        key = secrets.token_bytes(SECRET_BYTES)

        def run() -> str:
            doc = self._users.find_one({"_id": user}, {"username": 1, "totp.enabled": 1})
            if doc is None:
                raise NotFound("no such user")
            if (doc.get("totp") or {}).get("enabled"):
                raise InvalidInput("two-factor authentication is already enabled")
            self._users.update_one({"_id": user}, {"$set": {"totp.pending": key}})
            return str(doc["username"])

        username = await self._database.run(run)
        return TotpSetup(_b32(key), _totp(key).get_provisioning_uri(username, issuer))

    async def enable(self, user_id: str, code: str) -> list[str] | None:
        """Turn on the pending secret if ``code`` matches it; the recovery codes
        (shown once), or None for a wrong code (NotFound, InvalidInput)."""
        user = parse_id(user_id)
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]

        def run() -> bool:
            doc = self._users.find_one({"_id": user}, {"totp": 1})
            if doc is None:
                raise NotFound("no such user")
            state = doc.get("totp") or {}
            if state.get("enabled"):
                raise InvalidInput("two-factor authentication is already enabled")
            if not state.get("pending"):
                raise InvalidInput("no two-factor enrolment in progress: set up first")
            key = bytes(state["pending"])
            step = matching_step(key, code, self.clock())
            if step is None:
                return False
            self._users.update_one({"_id": user}, {"$set": {"totp": {
                "enabled": True, "secret": key, "last_step": step,
                "recovery": [digest(recovery_form(c)) for c in codes]}}})
            return True

        return codes if await self._database.run(run) else None

    async def disable(self, user_id: str) -> None:
        """Turn two-factor authentication off (NotFound)."""
        user = parse_id(user_id)
        result = await self._database.run(
            self._users.update_one, {"_id": user}, {"$unset": {"totp": ""}})
        if result.matched_count == 0:
            raise NotFound("no such user")

    async def enabled(self, user_id: str) -> bool:
        """Whether the user has two-factor authentication on (NotFound)."""
        doc = await self._database.run(
            self._users.find_one, {"_id": parse_id(user_id)}, {"totp.enabled": 1})
        if doc is None:
            raise NotFound("no such user")
        return bool((doc.get("totp") or {}).get("enabled"))

    async def recovery_codes(self, user_id: str) -> list[str]:
        """Replace the recovery codes with fresh ones (shown once; InvalidInput
        when two-factor is off)."""
        user = parse_id(user_id)
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        result = await self._database.run(
            self._users.update_one, {"_id": user, "totp.enabled": True},
            {"$set": {"totp.recovery": [digest(recovery_form(c)) for c in codes]}})
        if result.matched_count == 0:
            raise InvalidInput("two-factor authentication is not enabled")
        return codes

    def verify_sync(self, user: ObjectId, state: dict[str, Any], code: str) -> str | None:
        """Check a code for an enabled user: "totp" or "recovery" when it is
        accepted (and consumed), None when not. Blocking."""
        step = matching_step(bytes(state["secret"]), code, self.clock())
        if step is not None:
            # Replay refusal: only a step after the last accepted one, set atomically.
            result = self._users.update_one(
                {"_id": user, "totp.enabled": True, "totp.last_step": {"$lt": step}},
                {"$set": {"totp.last_step": step}})
            return "totp" if result.modified_count else None
        form = recovery_form(code)
        if len(form) != 12:
            return None
        result = self._users.update_one(
            {"_id": user, "totp.enabled": True, "totp.recovery": digest(form)},
            {"$pull": {"totp.recovery": digest(form)}})
        return "recovery" if result.modified_count else None
