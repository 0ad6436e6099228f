"""Typed Sieve errors: each carries the script line it was found on."""

from __future__ import annotations


class SieveError(Exception):
    """Base of every Sieve error; ``line`` is 1-based (0 when unknown)."""

    kind = "error"

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        if self.line:
            return f"line {self.line}: {self.message}"
        return self.message


class SieveSyntaxError(SieveError):
    """The script is not well-formed (RFC 5228 section 8)."""

    kind = "syntax error"


class SieveValidationError(SieveError):
    """Well-formed, but an unknown command or test, wrong arguments or a missing
    ``require`` (RFC 5228 section 2.10.5, 3.2)."""

    kind = "validation error"


class SieveRuntimeError(SieveError):
    """Something went wrong while running the script (RFC 5228 section 2.10.6): the
    message is then kept, as if by the implicit keep."""

    kind = "runtime error"


class SieveLimitExceeded(SieveRuntimeError):
    """A cap on steps, actions, redirects or include depth was reached."""

    kind = "limit exceeded"
