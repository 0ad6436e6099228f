"""Typed store errors.

The protocols map these to their own replies (IMAP response codes per RFC 5530,
LMTP enhanced status codes, HTTP statuses) in one table each; the store never
speaks a protocol.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""

    code = "SERVERBUG"


class StoreUnavailable(StoreError):
    """The database cannot be reached or did not answer in time (IMAP UNAVAILABLE)."""

    code = "UNAVAILABLE"


class NotFound(StoreError):
    """The user, mailbox or message does not exist (IMAP NONEXISTENT)."""

    code = "NONEXISTENT"


class AlreadyExists(StoreError):
    """A unique name (user, address, mailbox path) is taken (IMAP ALREADYEXISTS)."""

    code = "ALREADYEXISTS"


class InvalidInput(StoreError):
    """A value the store was asked to keep is not acceptable (IMAP CANNOT)."""

    code = "CANNOT"


def require_utf8(value: str, what: str) -> str:
    """``value``, or InvalidInput when it holds a lone surrogate, which no database
    query can hold: an octet that was not UTF-8, kept so by a protocol's parser
    (IMAP's grammar), or a JSON escape such as ``"\\udcff"``."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"{what} is not valid UTF-8") from None
    return value


class OverQuota(StoreError):
    """Storing this would exceed the user's quota (IMAP OVERQUOTA)."""

    code = "OVERQUOTA"


class TooBig(StoreError):
    """A single message exceeds the configured size limit (IMAP TOOBIG)."""

    code = "TOOBIG"


class AuthenticationFailed(StoreError):
    """Wrong user name or password (IMAP AUTHENTICATIONFAILED)."""

    code = "AUTHENTICATIONFAILED"
