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


class OverQuota(StoreError):
    """Storing this would exceed the user's quota (IMAP OVERQUOTA)."""

    code = "OVERQUOTA"


class TooBig(StoreError):
    """A single message exceeds the configured size limit (IMAP TOOBIG)."""

    code = "TOOBIG"


class AuthenticationFailed(StoreError):
    """Wrong user name or password (IMAP AUTHENTICATIONFAILED)."""

    code = "AUTHENTICATIONFAILED"
