"""An in-memory LmtpBackend: a test double of the store interface, for protocol tests only.

It records every byte written so tests can assert byte-exactness, and can be told
to refuse recipients, fail per recipient at the end, be slow, or be unavailable.
Real delivery into the store is tested against the store, not this.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import trio

from duck.lmtp.address import NormalizedAddress
from duck.lmtp.backend import (
    Accepted,
    BackendUnavailable,
    Envelope,
    RecipientCheck,
    RecipientOutcome,
    Refused,
    Stored,
)
from duck.lmtp.replies import Failure


@attrs.frozen
class StoredCopy:
    """One recipient's stored copy."""

    user: str
    address: str
    detail: str | None
    data: bytes  # header prefix + message bytes


@attrs.define
class MemoryBackend:
    """Users by normalised address; knobs to simulate failures."""

    users: dict[str, str] = attrs.Factory(dict)
    #: lookup -> failure at RCPT time
    refuse_at_rcpt: dict[str, Failure] = attrs.Factory(dict)
    #: lookup -> failure reported by finish()
    refuse_at_finish: dict[str, Failure] = attrs.Factory(dict)
    #: lookup -> seconds finish() waits before reporting that recipient
    slow: dict[str, float] = attrs.Factory(dict)
    unavailable: bool = False
    #: raise BackendUnavailable once this many bytes were written
    fail_write_after: int | None = None
    stored: list[StoredCopy] = attrs.Factory(list)
    envelopes: list[Envelope] = attrs.Factory(list)
    chunks: list[int] = attrs.Factory(list)
    opened: int = 0
    finished: int = 0
    aborted: int = 0
    #: deliveries opened and neither finished nor aborted (must end at 0: no leaks)
    in_flight: int = 0
    checked: list[NormalizedAddress] = attrs.Factory(list)

    async def check_recipient(self, address: NormalizedAddress) -> RecipientCheck:
        await trio.lowlevel.checkpoint()
        self.checked.append(address)
        if self.unavailable:
            raise BackendUnavailable("store down")
        if address.lookup in self.refuse_at_rcpt:
            return Refused(self.refuse_at_rcpt[address.lookup])
        user = self.users.get(address.lookup)
        if user is None:
            return Refused(Failure.UNKNOWN_USER)
        return Accepted(user)

    async def open_delivery(self, envelope: Envelope) -> MemoryDelivery:
        await trio.lowlevel.checkpoint()
        if self.unavailable:
            raise BackendUnavailable("store down")
        self.opened += 1
        self.in_flight += 1
        self.envelopes.append(envelope)
        return MemoryDelivery(self, envelope)

    def messages_for(self, user: str) -> list[bytes]:
        """The stored copies of ``user``, oldest first."""
        return [c.data for c in self.stored if c.user == user]


@attrs.define
class MemoryDelivery:
    """Accumulates the message (fine for a test double) and stores it per recipient."""

    backend: MemoryBackend
    envelope: Envelope
    body: bytearray = attrs.Factory(bytearray)
    state: str = "open"

    async def write(self, chunk: bytes) -> None:
        assert self.state == "open", self.state
        assert chunk, "write() is never called with empty bytes"
        await trio.lowlevel.checkpoint()
        limit = self.backend.fail_write_after
        if limit is not None and len(self.body) + len(chunk) > limit:
            raise BackendUnavailable("write failed")
        self.backend.chunks.append(len(chunk))
        self.body += chunk

    async def finish(self) -> Sequence[RecipientOutcome]:
        assert self.state == "open", self.state
        outcomes: list[RecipientOutcome] = []
        for rcpt in self.envelope.recipients:
            await trio.sleep(self.backend.slow.get(rcpt.lookup, 0))
            failure = self.backend.refuse_at_finish.get(rcpt.lookup)
            if failure is not None:
                outcomes.append(Refused(failure))
                continue
            self.backend.stored.append(StoredCopy(
                rcpt.user, rcpt.address, rcpt.detail, rcpt.header_prefix + bytes(self.body),
            ))
            outcomes.append(Stored())
        self.state = "finished"
        self.backend.finished += 1
        self.backend.in_flight -= 1
        return outcomes

    async def abort(self) -> None:
        if self.state != "open":
            return
        self.state = "aborted"
        self.backend.aborted += 1
        self.backend.in_flight -= 1
