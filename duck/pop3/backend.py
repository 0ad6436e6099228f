"""The interface POP3 serves through; ``store_backend.py`` implements it on the store.

The POP3 layer knows nothing of users, mailboxes or MongoDB: it asks the
backend to check credentials, to open the user's maildrop (exclusively, for the
session's length) and, through the open maildrop, for a message's bytes and for
the removal of the messages deleted in the session.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import attrs

from .maildrop import Entry


class BackendError(Exception):
    """Base of the backend's typed failures; the text is for the client."""


class BadCredentials(BackendError):
    """Unknown user or wrong password (RFC 3206 [AUTH])."""


class Unavailable(BackendError):
    """The store cannot answer now (RFC 3206 [SYS/TEMP])."""


class InUse(BackendError):
    """Another session holds the maildrop (RFC 2449 [IN-USE])."""


class TooSoon(BackendError):
    """Logged in again before the login delay ran out (RFC 2449 [LOGIN-DELAY])."""


class NoMaildrop(BackendError):
    """The user's POP3 folder does not exist (RFC 3206 [SYS/PERM])."""


class MessageGone(BackendError):
    """The message was removed by another session since the maildrop was opened."""


class LeaseLost(BackendError):
    """The maildrop's lease ran out and another session may hold it."""


@attrs.frozen
class Account:
    """An authenticated user."""

    id: str
    name: str
    #: The backend's name for the account's maildrop (opaque to POP3).
    maildrop: str = ""


class OpenMaildrop(Protocol):
    """A maildrop held by this session."""

    @property
    def entries(self) -> Sequence[Entry]:
        """The messages, oldest first (numbered from 1 in this order)."""
        ...

    @property
    def lost(self) -> bool:
        """The lease could not be renewed: the session must not UPDATE."""
        ...

    def read(self, uid: int) -> AsyncGenerator[bytes, None]:
        """The stored bytes of message ``uid`` in bounded chunks (MessageGone)."""
        ...

    async def remove(self, uids: Sequence[int]) -> int:
        """Remove these messages in one store operation (LeaseLost, Unavailable);
        how many were still there to remove."""
        ...

    async def release(self) -> None:
        """Give the maildrop up now (QUIT, before its reply)."""
        ...


class Pop3Backend(Protocol):
    """What POP3 needs of the mail store."""

    async def authenticate(self, username: str, password: str, *, mechanism: str,
                           peer: str) -> Account:
        """Check credentials (BadCredentials, Unavailable); ``mechanism`` and ``peer``
        are for the auth log and the login throttle."""
        ...

    async def scram_start(self, client_first: bytes, *, peer: str) -> tuple[object, bytes]:
        """Begin a SCRAM-SHA-256 exchange: (its state, the server-first message)
        (BadCredentials, Unavailable)."""
        ...

    async def scram_finish(self, state: object, client_final: bytes) -> tuple[Account, bytes]:
        """Check the client's proof: (the account, the server-final message)
        (BadCredentials, Unavailable)."""
        ...

    def open(self, account: Account) -> AbstractAsyncContextManager[OpenMaildrop]:
        """Hold the account's maildrop for the block (InUse, TooSoon, NoMaildrop,
        Unavailable); released on leaving it, however the session ends."""
        ...
