"""ManageSieve's backend over duck's store: ``store.users`` for passwords (the
same check IMAP and POP3 use) and ``store.sieve`` for scripts; scripts are
checked with ``duck.sieve`` before they are stored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .. import sieve
from ..store import (
    MAX_SCRIPT_SIZE,
    MAX_SCRIPTS,
    AlreadyExists,
    AuthenticationFailed,
    InvalidInput,
    NotFound,
    ScramLogin,
    ScriptActive,
    ScriptQuotaExceeded,
    Store,
    StoreError,
    StoreUnavailable,
    Throttled,
)
from .backend import (
    Account,
    BackendError,
    BadCredentials,
    InvalidName,
    InvalidScript,
    Limits,
    NoSuchScript,
    QuotaExceeded,
    ScriptExists,
    ScriptIsActive,
    Unavailable,
)


@contextmanager
def _auth_errors() -> Iterator[None]:
    try:
        yield
    except Throttled as exc:
        raise BadCredentials("too many failed logins, try again later") from exc
    except AuthenticationFailed as exc:
        raise BadCredentials("authentication failed") from exc
    except StoreUnavailable as exc:
        raise Unavailable("authentication is unavailable, try again later") from exc


def _translate(exc: StoreError) -> BackendError:
    if isinstance(exc, StoreUnavailable):
        return Unavailable("the store is unavailable, try again later")
    if isinstance(exc, ScriptQuotaExceeded):
        return QuotaExceeded(str(exc), f"QUOTA/{exc.limit.upper()}")
    if isinstance(exc, ScriptActive):
        return ScriptIsActive(str(exc))
    if isinstance(exc, NotFound):
        return NoSuchScript(str(exc))
    if isinstance(exc, AlreadyExists):
        return ScriptExists(str(exc))
    if isinstance(exc, InvalidInput):
        return InvalidName(str(exc))
    return BackendError(str(exc))


class StoreBackend:
    """``ManageSieveBackend`` over duck's store."""

    def __init__(self, store: Store, *, max_redirects: int = sieve.Limits().max_redirects
                 ) -> None:
        self._store = store
        self.limits = Limits(max_redirects, MAX_SCRIPTS, MAX_SCRIPT_SIZE)
        self.extensions = " ".join(sorted(sieve.EXTENSIONS))

    async def authenticate(self, username: str, password: str, *, mechanism: str,
                           peer: str) -> Account:
        """The store's login check (the one IMAP and POP3 use), for managesieve."""
        try:
            result = await self._store.authenticate(username, password, protocol="managesieve",
                                                    mechanism=mechanism, peer=peer)
        except Throttled as exc:
            raise BadCredentials("too many failed logins, try again later") from exc
        except AuthenticationFailed as exc:
            raise BadCredentials("authentication failed") from exc
        except StoreError as exc:
            raise _translate(exc) from exc
        return Account(result.user.id, result.user.username)

    async def scram_start(self, client_first: bytes, *, peer: str) -> tuple[object, bytes]:
        """The store's SCRAM-SHA-256 first step."""
        with _auth_errors():
            login = await self._store.auth.scram_begin(client_first, protocol="managesieve",
                                                       peer=peer)
        return login, login.server_first

    async def scram_finish(self, state: object, client_final: bytes) -> tuple[Account, bytes]:
        """The store's SCRAM-SHA-256 proof check."""
        assert isinstance(state, ScramLogin)
        with _auth_errors():
            result, final = await self._store.auth.scram_finish(state, client_final)
        return Account(result.user.id, result.user.username), final

    async def list(self, account: Account) -> list[tuple[str, bool]]:
        """(name, active) of each script."""
        try:
            return [(s.name, s.active) for s in await self._store.sieve.scripts(account.id)]
        except StoreError as exc:
            raise _translate(exc) from exc

    async def get(self, account: Account, name: str) -> str:
        """A script's source."""
        try:
            return (await self._store.sieve.get(account.id, name)).source
        except StoreError as exc:
            raise _translate(exc) from exc

    def check(self, source: str) -> None:
        """Parse and validate with duck's Sieve implementation."""
        try:
            sieve.compile_script(source)
        except sieve.SieveError as exc:
            raise InvalidScript(str(exc)) from exc

    async def have_space(self, account: Account, name: str, size: int) -> None:
        """HAVESPACE."""
        try:
            await self._store.sieve.check_space(account.id, name, size)
        except StoreError as exc:
            raise _translate(exc) from exc

    async def put(self, account: Account, name: str, source: str) -> None:
        """PUTSCRIPT: the size cap first (a clearer answer), then the syntax."""
        if len(source.encode("utf-8")) > MAX_SCRIPT_SIZE:
            raise QuotaExceeded(f"a script is at most {MAX_SCRIPT_SIZE} octets",
                                "QUOTA/MAXSIZE")
        self.check(source)
        try:
            await self._store.sieve.put(account.id, name, source)
        except StoreError as exc:
            raise _translate(exc) from exc

    async def set_active(self, account: Account, name: str) -> None:
        """SETACTIVE."""
        try:
            await self._store.sieve.activate(account.id, name or None)
        except StoreError as exc:
            raise _translate(exc) from exc

    async def delete(self, account: Account, name: str) -> None:
        """DELETESCRIPT."""
        try:
            await self._store.sieve.delete(account.id, name)
        except StoreError as exc:
            raise _translate(exc) from exc

    async def rename(self, account: Account, old: str, new: str) -> None:
        """RENAMESCRIPT."""
        try:
            await self._store.sieve.rename(account.id, old, new)
        except StoreError as exc:
            raise _translate(exc) from exc
