"""IMAP's per-process limits: connections per user and per IP (the counters are
shared with POP3: duck/throttle.py), and IMAP's timers. Failed logins are counted
in the database by the store, across processes (store/accounts/loginthrottle.py).
"""

from __future__ import annotations

import attrs
import trio

from ..throttle import ConnectionCounter

__all__ = ["ByteBudget", "ConnectionCounter", "ServerLimits"]

#: RFC 3501 §5.4: the autologout timer is at least 30 minutes once authenticated.
AUTOLOGOUT = 30 * 60.0
#: Before authentication a shorter timer applies (§5.4 constrains only the one
#: after it): idle unauthenticated connections are what connection floods are.
PREAUTH_TIMEOUT = 120.0
#: RFC 2177 §3: clients re-issue IDLE at least every 29 minutes; we end it at 30.
IDLE_MAX = 30 * 60.0
MAX_CONNECTIONS_PER_IP = 64
MAX_CONNECTIONS_PER_USER = 32
#: Literal octets the sessions of a process hold at once by default (``literal_memory``).
LITERAL_MEMORY = 512 * 1024 * 1024
#: Copies of a literal the process holds at once while its command is read, parsed
#: and stored (the reader's pieces, the joined command, the parsed value): a
#: session's share is this many times the octets its command announced, so that
#: the budget bounds memory, not just literal octets.
LITERAL_COPIES = 3
#: A command announcing no more than this takes no share of that budget (LOGIN,
#: small APPENDs: the common case costs nothing).
LITERAL_FREE = 256 * 1024
#: What one APPEND streaming its literal into the store holds at most, whatever
#: the message's size (the ingest's feed batch, a GridFS chunk being filled, the
#: copies made while one is written; measured with bench.append_memory): its
#: share of that budget while its command is read.
STREAMED_SHARE = 4 * 1024 * 1024
#: Literal cap before authentication (LOGIN/AUTHENTICATE need no more).
PREAUTH_LITERAL_MAX = 8 * 1024


@attrs.define
class ServerLimits:
    """The limits one IMAP listener set shares."""

    per_ip: ConnectionCounter = attrs.Factory(lambda: ConnectionCounter(MAX_CONNECTIONS_PER_IP))
    per_user: ConnectionCounter = attrs.Factory(
        lambda: ConnectionCounter(MAX_CONNECTIONS_PER_USER)
    )
    autologout: float = AUTOLOGOUT
    preauth_timeout: float = PREAUTH_TIMEOUT
    idle_max: float = IDLE_MAX
    #: Literal octets all sessions may hold at once (``literal_memory``).
    literals: ByteBudget = attrs.Factory(lambda: ByteBudget(LITERAL_MEMORY))


class ByteBudget:
    """Octets of command literals all sessions of a process may hold at once.

    A literal kept whole until its command runs (CATENATE's TEXT parts, a binary
    APPEND, any literal of another command) counts LITERAL_COPIES times its size;
    an APPEND streaming its literal into the store counts STREAMED_SHARE, whatever
    its size. Without a cap many clients appending at once would hold the sum. A
    session takes a share of this budget before it asks for a synchronizing
    literal (``+``) or reads a non-synchronizing one, and gives it back when the
    command has run; while the budget is spent it waits (its client waits for the
    ``+`` or for its socket to be read again: TCP back-pressure). A share larger
    than the whole budget is cut to the whole budget, so one literal of any
    allowed size can always go through alone.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._lot = trio.lowlevel.ParkingLot()

    async def grow(self, held: int, want: int) -> int:
        """A holder's share from ``held`` to ``want`` octets, waiting while the
        budget cannot give that much; the new share."""
        want = min(want, self.total)
        while self.used - held + want > self.total:
            await self._lot.park()
        self.used += want - held
        return want

    def release(self, held: int) -> None:
        """Give a share back (and wake the sessions waiting for one)."""
        if held:
            self.used -= held
            self._lot.unpark_all()

    def statistics(self) -> dict[str, int]:
        """Octets in use, the total, and sessions waiting."""
        return {"used": self.used, "total": self.total,
                "waiting": self._lot.statistics().tasks_waiting}
