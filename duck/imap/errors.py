"""Command failures and the one table that maps store errors to IMAP responses.

A command handler raises :class:`CommandError` (or lets a store error escape);
the session turns either into the tagged NO/BAD. Response codes follow RFC 5530.
"""

from __future__ import annotations

from typing import Literal

from duck.store import (
    AlreadyExists,
    AuthenticationFailed,
    InvalidInput,
    NotFound,
    OverQuota,
    StoreError,
    StoreUnavailable,
    TooBig,
)

from .grammar.resp_codes import Code, ResponseCode


class CommandError(Exception):
    """A command failed: the session answers ``tag NO|BAD [code] text``."""

    def __init__(
        self,
        text: str,
        *,
        status: Literal["NO", "BAD"] = "NO",
        code: ResponseCode | str | None = None,
    ) -> None:
        super().__init__(text)
        # (Made fit for the response line here, once: a text may quote a client's or
        # a message's bytes, and a CR or NUL in one made the response invalid and
        # took the session down.)
        self.text = response_text(text)
        self.status: Literal["NO", "BAD"] = status
        self.code: ResponseCode | None = Code(code) if isinstance(code, str) else code


def bad(text: str, code: str | None = None) -> CommandError:
    """A BAD (protocol misuse: wrong state, bad arguments)."""
    return CommandError(text, status="BAD", code=code)


def no(text: str, code: str | None = None) -> CommandError:
    """A NO (the command was understood but failed)."""
    return CommandError(text, status="NO", code=code)


#: Store error class -> (RFC 5530 code, text prefix). The most specific class wins;
#: anything not listed is a SERVERBUG.
STORE_ERRORS: dict[type[StoreError], str] = {
    StoreUnavailable: "UNAVAILABLE",
    OverQuota: "OVERQUOTA",
    NotFound: "NONEXISTENT",
    AlreadyExists: "ALREADYEXISTS",
    TooBig: "TOOBIG",
    InvalidInput: "CANNOT",
    AuthenticationFailed: "AUTHENTICATIONFAILED",
}


def from_store_error(exc: StoreError) -> CommandError:
    """The tagged NO for a store error (RFC 5530 code from :data:`STORE_ERRORS`)."""
    for cls in type(exc).__mro__:
        code = STORE_ERRORS.get(cls)  # type: ignore[call-overload]
        if code is not None:
            break
    else:
        code = "SERVERBUG"
    return CommandError(str(exc) or code.lower(), status="NO", code=code)


def response_text(text: str) -> str:
    """``text`` as a response's text: no control characters (CR, LF and NUL may not
    be there), not starting with "[" (it would read as a code), at most 300
    characters, and not empty ("error")."""
    text = "".join(ch if ch >= " " else " " for ch in text).strip()
    return text.lstrip("[")[:300] or "error"
