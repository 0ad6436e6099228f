"""The one login check every protocol uses: ``store.authenticate``.

IMAP (LOGIN, AUTHENTICATE), POP3 (USER/PASS, AUTH), ManageSieve and the HTTP API
all call :meth:`Authenticator.authenticate` (or the SCRAM pair), which in one place:

1. refuses unchecked when the user name's or the address's failed-login counter
   is at its limit (loginthrottle.py: shared by every process);
2. accepts an application password whose scopes include the protocol, else the
   main password, with WildDuck's rule: when two-factor authentication is on, the
   main password is refused for every protocol but the API, where it needs a code;
3. on success forgets the user name's failures, upgrades an old password hash,
   adds the SCRAM keys a user made before SCRAM lacks, records the application
   password's use; on failure counts it and holds the answer back;
4. writes the attempt to the auth log and one line to the ``duck.auth`` logger
   (``auth failed: user=... peer=... protocol=... mechanism=...``: the fail2ban
   filter in docs/auth.md reads it).

Nothing here caches a decision: whether a user, an application password or a
second factor is valid is read from the database at every login, so a revocation
takes effect at once in every process. The only cache is of scrypt results per
stored hash (passwords.VerifiedCache), which a password change misses at once.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
import time
from typing import Any

import attrs
import trio
from bson import ObjectId

from ..engine import schema
from ..engine.database import Database
from ..engine.inline import off_loop
from ..errors import AuthenticationFailed, InvalidInput
from .addresses import normalize_address
from .apppasswords import SCOPES, AppPasswords
from .authlog import FAILURE, SUCCESS, THROTTLED, AuthEvent, AuthLog
from .loginthrottle import LoginThrottle, peer_key, user_key
from .passwords import hash_password, needs_rehash, verify_password
from .scram import MECHANISM as SCRAM_MECHANISM
from .scram import ScramError, ScramKeys, ScramServer, derive_keys, fake_keys
from .totp import TwoFactor
from .users import User, Users, user_from_document

auth_log = logging.getLogger("duck.auth")

#: Protocols that take the main password only while two-factor is off.
MAIL_PROTOCOLS = frozenset({"imap", "pop3", "managesieve", "smtp"})


class Throttled(AuthenticationFailed):
    """Too many failed logins for this user name or address: try again later."""


class TwoFactorRequired(AuthenticationFailed):
    """The password is right but a valid two-factor code is needed (API only)."""


@attrs.frozen
class AuthResult:
    """A successful login."""

    user: User
    #: The application password used (its id), or None for the main password.
    app_password: str | None = None


@attrs.frozen
class _Outcome:
    result: str
    reason: str | None = None
    doc: dict[str, Any] | None = None
    app_password: str | None = None
    delay: float = 0.0
    error: type[AuthenticationFailed] = AuthenticationFailed


def _printable(text: str, limit: int = 128) -> str:
    """A user-chosen value made safe for a log line: no spaces, no control
    characters (a newline in a user name must not forge a second line)."""
    return "".join(c if c.isprintable() and not c.isspace() else "?" for c in text[:limit])


@attrs.define
class ScramLogin:
    """A SCRAM-SHA-256 exchange in progress (``Authenticator.scram_begin``)."""

    server: ScramServer
    server_first: bytes
    protocol: str
    peer: str
    doc: dict[str, Any] | None = None
    #: Why the exchange will fail whatever the proof (the client is not told early).
    doomed: str | None = None


class Authenticator:
    """Logins for every protocol (``store.auth``)."""

    def __init__(self, database: Database, users: Users, app_passwords: AppPasswords,
                 two_factor: TwoFactor, log: AuthLog, throttle: LoginThrottle) -> None:
        self._database = database
        self._users = users
        self._app_passwords = app_passwords
        self._two_factor = two_factor
        self._log = log
        self.throttle = throttle
        #: Keys fake SCRAM salts for unknown users (stable within this process).
        self._fake_secret = secrets.token_bytes(32)

    @property
    def _user_docs(self) -> Any:
        return self._database.collection(schema.USERS)

    # -- passwords ---------------------------------------------------------------------

    async def authenticate(self, username: str, secret: str, *, protocol: str,
                           mechanism: str, peer: str, otp: str | None = None) -> AuthResult:
        """Check a user name and a password or application password for ``protocol``
        ("imap", "pop3", "managesieve", "smtp", "api"); ``otp`` is the second factor
        (API only). Raises AuthenticationFailed (Throttled, TwoFactorRequired)."""
        if protocol not in SCOPES:
            raise InvalidInput(f"unknown protocol {protocol!r}")
        username, secret = _well_formed(username), _well_formed(secret)
        outcome = await self._database.run(
            self._check_sync, username, secret, protocol, mechanism, peer, otp)
        return await self._finish(outcome)

    def _check_sync(self, username: str, secret: str, protocol: str, mechanism: str,
                    peer: str, otp: str | None) -> _Outcome:
        keys = (user_key(username), peer_key(peer))
        refused, failures = self._throttled_sync(*keys)
        if refused is not None:
            # Unchecked, but the user's own log shows the refusal.
            outcome = attrs.evolve(refused, doc=self._user_doc_sync(username))
        else:
            outcome = self._verify_sync(username, secret, protocol, peer, otp)
        return self._conclude_sync(outcome, username, protocol, mechanism, peer, keys,
                                   failures)

    def _throttled_sync(self, *keys: str) -> tuple[_Outcome | None, int]:
        """The refusal when a key is over its limit, and the user's failures."""
        counts = self.throttle.counts_sync(*keys)
        policy = self.throttle.policy
        if counts[keys[0]] >= policy.user_limit or counts[keys[1]] >= policy.peer_limit:
            return _Outcome(THROTTLED, "too many failures", error=Throttled), counts[keys[0]]
        return None, counts[keys[0]]

    def _verify_sync(self, username: str, secret: str, protocol: str, peer: str,
                     otp: str | None) -> _Outcome:
        doc = self._user_doc_sync(username)
        if doc is None:
            # An unknown user costs one scrypt like a known one: timing does not
            # tell which user names exist.
            off_loop(lambda: verify_password(secret, _dummy_hash()))
            return _Outcome(FAILURE, "credentials")
        app = self._app_passwords.match_sync(doc["_id"], secret)
        if app is not None:
            if protocol not in app.get("scopes", ()):
                return _Outcome(FAILURE, "scope", doc, str(app["_id"]))
            if doc.get("disabled"):
                return _Outcome(FAILURE, "disabled", doc, str(app["_id"]))
            return _Outcome(SUCCESS, None, doc, str(app["_id"]))
        if not self._password_sync(secret, doc["password"]):
            return _Outcome(FAILURE, "credentials", doc)
        if doc.get("disabled"):
            return _Outcome(FAILURE, "disabled", doc)
        totp = doc.get("totp") or {}
        if totp.get("enabled"):
            if protocol in MAIL_PROTOCOLS:
                # WildDuck's rule: with two-factor on, mail clients use application
                # passwords; the main password is for the (two-factor) API only.
                return _Outcome(FAILURE, "two-factor: use an application password", doc)
            if not otp:
                return _Outcome(FAILURE, "two-factor code required", doc,
                                error=TwoFactorRequired)
            otp_key = "otp:" + str(doc["_id"])
            if self.throttle.counts_sync(otp_key)[otp_key] >= self.throttle.policy.otp_limit:
                return _Outcome(THROTTLED, "too many two-factor failures", doc,
                                error=Throttled)
            if self._two_factor.verify_sync(doc["_id"], totp, otp) is None:
                self.throttle.failed_sync(otp_key)
                return _Outcome(FAILURE, "two-factor code", doc, error=TwoFactorRequired)
        self._upgrade_sync(doc, secret)
        return _Outcome(SUCCESS, None, doc)

    def _user_doc_sync(self, username: str) -> dict[str, Any] | None:
        try:
            name = normalize_address(username)
        except InvalidInput:
            return None
        doc: dict[str, Any] | None = self._user_docs.find_one({"username": name})
        return doc

    def _password_sync(self, password: str, stored: str) -> bool:
        cache = self._users.verified
        key = cache.key(password, stored)
        if cache.fresh(key, now=time.monotonic()):
            return True
        ok = off_loop(verify_password, password, stored)
        if ok:
            cache.remember(key, now=time.monotonic())
        return ok

    def _upgrade_sync(self, doc: dict[str, Any], password: str) -> None:
        """What only a login with the password at hand can do: rehash with today's
        parameters, and derive the SCRAM keys of a user made before SCRAM."""
        update: dict[str, Any] = {}
        if needs_rehash(doc["password"]):
            update["password"] = off_loop(hash_password, password)
        if "scram" not in doc:
            update["scram"] = off_loop(derive_keys, password).document()
        if update:
            # Conditional on the hash being unchanged: a password change meanwhile wins.
            self._user_docs.update_one({"_id": doc["_id"], "password": doc["password"]},
                                       {"$set": update})

    def _conclude_sync(self, outcome: _Outcome, username: str, protocol: str,
                       mechanism: str, peer: str, keys: tuple[str, str],
                       failures: int) -> _Outcome:
        """Count, log and record an attempt (blocking); ``failures``: the user's, as
        read when it began."""
        now = dt.datetime.now(dt.UTC)
        doc = outcome.doc
        if outcome.result == SUCCESS:
            if failures:
                # (With none counted, the usual case, there is nothing to forget: a
                # round trip fewer per login.)
                self.throttle.forget_sync(keys[0])
            if outcome.app_password is not None:
                self._app_passwords.used_sync(ObjectId(outcome.app_password), peer, now)
        elif outcome.result == FAILURE and outcome.error is not TwoFactorRequired:
            counts = self.throttle.failed_sync(*keys)
            outcome = attrs.evolve(outcome, delay=self.throttle.policy.delay(max(counts.values())))
        shown = doc["username"] if doc is not None else username
        self._log.record_sync(AuthEvent(
            time=now, username=shown, protocol=protocol, mechanism=mechanism, peer=peer,
            result=outcome.result, reason=outcome.reason,
            user_id=None if doc is None else str(doc["_id"]),
            app_password=outcome.app_password))
        if outcome.result == SUCCESS:
            auth_log.info("auth ok: user=%s peer=%s protocol=%s mechanism=%s app_password=%s",
                          _printable(shown), _printable(peer), protocol,
                          _printable(mechanism), outcome.app_password or "-")
        else:
            auth_log.warning("auth failed: user=%s peer=%s protocol=%s mechanism=%s reason=%s",
                             _printable(shown), _printable(peer), protocol,
                             _printable(mechanism), (outcome.reason or "").replace(" ", "_"))
        return outcome

    async def _finish(self, outcome: _Outcome) -> AuthResult:
        if outcome.result == SUCCESS:
            assert outcome.doc is not None
            return AuthResult(user_from_document(outcome.doc), outcome.app_password)
        if outcome.delay:
            await trio.sleep(outcome.delay)
        message = {Throttled: "too many failed logins, try again later",
                   TwoFactorRequired: "a valid two-factor code is required"}
        raise outcome.error(message.get(outcome.error, "invalid credentials"))

    # -- SCRAM-SHA-256 -------------------------------------------------------------------

    async def scram_begin(self, client_first: bytes, *, protocol: str,
                          peer: str) -> ScramLogin:
        """Start a SCRAM-SHA-256 exchange: the login's ``server_first`` is the
        challenge to send. AuthenticationFailed for a malformed first message."""
        if protocol not in SCOPES:
            raise InvalidInput(f"unknown protocol {protocol!r}")
        try:
            server = ScramServer(client_first)
        except ScramError as exc:
            raise AuthenticationFailed(f"malformed SCRAM message: {exc}") from None
        return await self._database.run(self._scram_begin_sync, server, protocol, peer)

    def _scram_begin_sync(self, server: ScramServer, protocol: str, peer: str) -> ScramLogin:
        doc = self._user_doc_sync(server.username)
        doomed = None
        keys: ScramKeys | None = None
        if doc is None:
            doomed = "credentials"
        elif "scram" not in doc:
            doomed = "no SCRAM keys yet (log in once with the password)"
        elif (doc.get("totp") or {}).get("enabled"):
            doomed = "two-factor: use an application password"
        else:
            keys = ScramKeys.from_document(doc["scram"])
        if keys is None:
            keys = fake_keys(server.username, self._fake_secret)
        first = server.server_first(keys)
        return ScramLogin(server, first, protocol, peer, doc, doomed)

    async def scram_finish(self, login: ScramLogin,
                           client_final: bytes) -> tuple[AuthResult, bytes]:
        """Check the client's proof: the result and the server-final message to
        send (the client verifies the server with it). AuthenticationFailed."""
        outcome, final = await self._database.run(self._scram_finish_sync, login, client_final)
        result = await self._finish(outcome)
        return result, final

    def _scram_finish_sync(self, login: ScramLogin,
                           client_final: bytes) -> tuple[_Outcome, bytes]:
        username = login.server.username
        keys = (user_key(username), peer_key(login.peer))
        final = b""
        outcome, failures = self._throttled_sync(*keys)
        if outcome is not None:
            outcome = attrs.evolve(outcome, doc=login.doc)
        else:
            try:
                final = login.server.client_final(client_final)
            except ScramError as exc:
                outcome = _Outcome(FAILURE, login.doomed or f"scram {exc}", login.doc)
            else:
                doc = login.doc
                if login.doomed is not None or doc is None:
                    outcome = _Outcome(FAILURE, login.doomed or "credentials", doc)
                elif doc.get("disabled"):
                    outcome = _Outcome(FAILURE, "disabled", doc)
                else:
                    outcome = _Outcome(SUCCESS, None, doc)
        outcome = self._conclude_sync(outcome, username, login.protocol, SCRAM_MECHANISM,
                                      login.peer, keys, failures)
        return outcome, final

    # -- two-factor enrolment, rate-limited like verification --------------------------------

    async def enable_totp(self, user_id: str, code: str) -> list[str]:
        """Enable the pending TOTP secret with a code from it: the recovery codes.
        Throttled after too many wrong codes; AuthenticationFailed for a wrong one."""
        key = "otp:" + user_id

        def limited() -> bool:
            return self.throttle.counts_sync(key)[key] >= self.throttle.policy.otp_limit

        if await self._database.run(limited):
            raise Throttled("too many two-factor failures, try again later")
        codes = await self._two_factor.enable(user_id, code)
        if codes is None:
            await self._database.run(self.throttle.failed_sync, key)
            raise AuthenticationFailed("invalid two-factor code")
        return codes


@functools.cache
def _dummy_hash() -> str:
    return hash_password("duck-dummy-password")


def _well_formed(text: str) -> str:
    """``text`` with octets that were not UTF-8 (kept by a protocol's parser as
    surrogates, which no database query can hold) read as Latin-1: what a client
    that sends Latin-1 meant, and a well-formed string for the throttle's keys."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("latin-1")
    return text
