"""What the ManageSieve server needs from the store, and the errors it maps to
response codes (RFC 5804 section 1.3)."""

from __future__ import annotations

from typing import Protocol

import attrs


class BackendError(Exception):
    """A command failed; ``code`` is the RFC 5804 response code (or None)."""

    code: str | None = None


class BadCredentials(BackendError):
    """Wrong user name or password."""


class Unavailable(BackendError):
    """The store cannot answer now (``TRYLATER``)."""

    code = "TRYLATER"


class NoSuchScript(BackendError):
    """No script by that name (``NONEXISTENT``)."""

    code = "NONEXISTENT"


class ScriptExists(BackendError):
    """A script by the new name exists (``ALREADYEXISTS``)."""

    code = "ALREADYEXISTS"


class ScriptIsActive(BackendError):
    """The active script cannot be deleted (``ACTIVE``)."""

    code = "ACTIVE"


class QuotaExceeded(BackendError):
    """Over a cap: ``QUOTA/MAXSCRIPTS`` or ``QUOTA/MAXSIZE``."""

    def __init__(self, message: str, code: str = "QUOTA") -> None:
        super().__init__(message)
        self.code = code


class InvalidScript(BackendError):
    """The script is not valid Sieve; the message names the line."""


class InvalidName(BackendError):
    """A script name RFC 5804 section 1.6 does not allow."""


@attrs.frozen
class Account:
    """An authenticated user."""

    id: str
    name: str


@attrs.frozen
class Limits:
    """Caps announced in CAPABILITY (RFC 5804 section 1.7)."""

    max_redirects: int
    max_scripts: int
    max_script_size: int


class ManageSieveBackend(Protocol):
    """Script storage and checking for one server."""

    limits: Limits
    #: Sieve capabilities, space-separated (the CAPABILITY "SIEVE" line).
    extensions: str

    async def authenticate(self, username: str, password: str, *, mechanism: str,
                           peer: str) -> Account:
        """Check credentials (BadCredentials); ``mechanism`` and ``peer`` are for the
        auth log and the login throttle."""
        ...

    async def scram_start(self, client_first: bytes, *, peer: str) -> tuple[object, bytes]:
        """SCRAM-SHA-256's first step: (state, server-first); BadCredentials."""
        ...

    async def scram_finish(self, state: object, client_final: bytes) -> tuple[Account, bytes]:
        """SCRAM-SHA-256's proof check: (account, server-final); BadCredentials."""
        ...

    async def list(self, account: Account) -> list[tuple[str, bool]]:
        """(name, active) of every script."""
        ...

    async def get(self, account: Account, name: str) -> str:
        """A script's source; NoSuchScript."""
        ...

    def check(self, source: str) -> None:
        """InvalidScript (with a line number) when ``source`` is not valid Sieve."""
        ...

    async def have_space(self, account: Account, name: str, size: int) -> None:
        """QuotaExceeded when a script of ``size`` octets named ``name`` would not fit."""
        ...

    async def put(self, account: Account, name: str, source: str) -> None:
        """Check and store; InvalidScript, QuotaExceeded, InvalidName."""
        ...

    async def set_active(self, account: Account, name: str) -> None:
        """Activate ``name`` ("" deactivates all); NoSuchScript."""
        ...

    async def delete(self, account: Account, name: str) -> None:
        """NoSuchScript, ScriptIsActive."""
        ...

    async def rename(self, account: Account, old: str, new: str) -> None:
        """NoSuchScript, ScriptExists, InvalidName."""
        ...
