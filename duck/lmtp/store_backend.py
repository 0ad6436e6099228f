"""The store behind LMTP: recipient lookup and streamed, per-recipient delivery.

This is the translation layer of docs/architecture.md: LMTP's backend interface on one side,
the store's public API on the other. The message streams through the store's
ingest (MIME indexer, large bodies to GridFS once) as it arrives; then one copy
per recipient goes to that user's INBOX with the recipient's trace headers in
front, each acknowledged only once durable.

A recipient with an active Sieve script has it run first (``duck.rules``): its
copy may go to other mailboxes with flags, be refused for that recipient alone
(reject/ereject), be redirected or answered with a vacation reply, or dropped.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

import trio

from ..rules.delivery import MAX_HEADER_BUFFER, MAX_MESSAGE_BUFFER, Loaded, Plan, Recipient, Rules
from ..store import (
    Delivered,
    DeliveryTarget,
    Ingested,
    MailRules,
    NotFound,
    OverQuota,
    SieveScript,
    Store,
    StoreError,
    StoreUnavailable,
    TooBig,
)
from .address import NormalizedAddress
from .backend import (
    Accepted,
    BackendUnavailable,
    Envelope,
    RecipientCheck,
    RecipientOutcome,
    Refused,
    Stored,
)
from .replies import Failure

log = logging.getLogger(__name__)

#: Seconds a recipient's script and rules read at RCPT serve its delivery.
KNOWN_FOR = 60.0
#: Recipients whose script and rules are kept between RCPT and DATA, and the
#: octets of script source they may hold together (a script is up to 64 KB).
KNOWN_MAX = 10_000
KNOWN_BYTES = 16 * 1024 * 1024
#: A user's active script and mail rules, None when there are neither.
RulesOf = tuple[SieveScript | None, MailRules] | None


class StoreDelivery:
    """One message on its way into the store for every accepted recipient."""

    def __init__(self, store: Store, envelope: Envelope, max_size: int | None,
                 rules: Rules | None = None, scripts: dict[str, Loaded] | None = None
                 ) -> None:
        self._store = store
        self._envelope = envelope
        self._ingest = store.messages.ingest(max_size=max_size)
        self._rules = rules
        self._scripts = scripts or {}
        # What the scripts read: the header section, or the whole message when one
        # of them may need it (body test, redirect), both capped.
        whole = any(s.needs_message for s in self._scripts.values())
        self._cap = 0 if not self._scripts else (
            MAX_MESSAGE_BUFFER if whole else MAX_HEADER_BUFFER)
        self._buffer = bytearray()
        self._size = 0

    async def write(self, chunk: bytes) -> None:
        """Stream message bytes into the store's ingest."""
        self._size += len(chunk)
        if len(self._buffer) < self._cap:
            self._buffer += chunk[: self._cap - len(self._buffer)]
        try:
            await self._ingest.write(chunk)
        except StoreUnavailable as exc:
            raise BackendUnavailable(str(exc)) from exc

    async def finish(self) -> Sequence[RecipientOutcome]:
        """Index the end, store every recipient's copy; one outcome each, in order."""
        try:
            ingested = await self._ingest.finish()
        except StoreUnavailable as exc:
            raise BackendUnavailable(str(exc)) from exc
        except TooBig:
            return [Refused(Failure.MESSAGE_TOO_BIG) for _ in self._envelope.recipients]
        if self._rules is None or not self._scripts:
            targets = [
                DeliveryTarget(user_id=r.user, mailbox_path="INBOX", prepend=r.header_prefix)
                for r in self._envelope.recipients
            ]
            try:
                results = await self._store.messages.deliver(ingested, targets)
            except StoreUnavailable as exc:
                raise BackendUnavailable(str(exc)) from exc
            return [_outcome(result) for result in results]
        return await self._finish_with_rules(ingested, self._rules)

    async def _finish_with_rules(self, ingested: Ingested, rules: Rules
                                 ) -> list[RecipientOutcome]:
        message = bytes(self._buffer)
        complete = self._size <= len(self._buffer)
        plans: list[Plan] = []
        try:
            for r in self._envelope.recipients:
                plans.append(await rules.plan(
                    Recipient(r.user, r.address, r.lookup, r.header_prefix),
                    self._scripts.get(r.user), message, complete=complete,
                    reverse_path=self._envelope.reverse_path, size=self._size))
            targets = [t for plan in plans for t in plan.targets]
            results = await self._store.messages.deliver(ingested, targets)
        except StoreUnavailable as exc:
            try:  # (a no-op once deliver has taken the ingest's hold over)
                await self._store.messages.discard(ingested)
            except StoreError:
                log.warning("LMTP: the body sweep will collect an undelivered message")
            raise BackendUnavailable(str(exc)) from exc
        outcomes: list[RecipientOutcome] = []
        at = 0
        for plan in plans:
            mine = results[at:at + len(plan.targets)]
            at += len(plan.targets)
            if plan.refusal is not None:
                outcomes.append(Refused(Failure.REJECTED_BY_RULE, _reply_text(plan.refusal)))
            elif not mine:
                outcomes.append(Stored(text=f"OK, {plan.note} by the recipient's rules"))
            else:
                stored = [m for m in mine if isinstance(m, Delivered)]
                outcomes.append(_outcome(stored[0] if stored else mine[0]))
        return outcomes

    async def abort(self) -> None:
        """Drop everything of this message (GridFS uploads included)."""
        try:
            await self._ingest.abort()
        except StoreError:
            # The sweep collects what an abort during an outage could not remove.
            log.warning("LMTP: abort of a delivery failed; the body sweep will collect it")


def _reply_text(reason: str) -> str:
    """A reject reason fit for an LMTP reply line: ASCII, one line, not too long
    (RFC 5429 section 2.1.1: the reason goes into the protocol refusal)."""
    text = " ".join(reason.split()) or "Message refused"
    return text.encode("ascii", "replace").decode("ascii")[:400]


def _outcome(result: Delivered | StoreError) -> RecipientOutcome:
    if isinstance(result, Delivered):
        return Stored(text=f"Saved as UID {result.uid}")
    if isinstance(result, OverQuota):
        return Refused(Failure.OVER_QUOTA)
    if isinstance(result, NotFound):
        return Refused(Failure.UNKNOWN_USER)
    if isinstance(result, TooBig):
        return Refused(Failure.MESSAGE_TOO_BIG)
    if isinstance(result, StoreUnavailable):
        return Refused(Failure.UNAVAILABLE)
    log.error("LMTP: delivery failed: %r", result)
    return Refused(Failure.UNAVAILABLE)


class StoreBackend:
    """``LmtpBackend`` over duck's store."""

    def __init__(self, store: Store, *, max_message_size: int | None = None,
                 rules: Rules | None = None) -> None:
        self._store = store
        self._max_size = max_message_size
        self._rules = rules if rules is not None else Rules(store)
        #: Each accepted recipient's script and rules, read with its address at
        #: RCPT (``check_recipient``), for the delivery that follows: (when read,
        #: what). Bounded; an entry not taken within KNOWN_FOR seconds is read again.
        self._known: OrderedDict[str, tuple[float, RulesOf, int]] = OrderedDict()
        self._known_bytes = 0

    async def check_recipient(self, address: NormalizedAddress) -> RecipientCheck:
        """Known address (or its ``+tag`` base)? Over quota already? (RCPT time)."""
        local, _, domain = address.lookup.rpartition("@")
        full = f"{local}+{address.detail}@{domain}" if address.detail else address.lookup
        try:
            # An address that itself contains the separator wins over sub-addressing.
            # The address and its user in one query.
            # Its script and rules come along, for the delivery (two queries
            # fewer at DATA).
            found = await self._store.users.recipient_with(
                full, self._store.sieve.delivery_stages())
        except StoreUnavailable as exc:
            raise BackendUnavailable(str(exc)) from exc
        if found is None or found[1] is None:
            return Refused(Failure.UNKNOWN_USER)
        user = found[1]
        if user.disabled:
            return Refused(Failure.MAILBOX_DISABLED)
        if user.quota and user.storage_used >= user.quota:
            return Refused(Failure.OVER_QUOTA)
        self._remember(user.id, self._store.sieve.delivery_rules(found[2]))
        return Accepted(user=user.id)

    def _remember(self, user_id: str, rules: RulesOf) -> None:
        """Keep ``rules`` for the user's delivery, the oldest entries going first
        beyond KNOWN_MAX entries or KNOWN_BYTES of script source."""
        self._take(user_id)
        cost = len(rules[0].source) if rules is not None and rules[0] is not None else 0
        while self._known and (len(self._known) >= KNOWN_MAX
                               or self._known_bytes + cost > KNOWN_BYTES):
            self._take(next(iter(self._known)))
        self._known[user_id] = (trio.current_time(), rules, cost)
        self._known_bytes += cost

    def _take(self, user_id: str) -> tuple[float, RulesOf, int] | None:
        entry = self._known.pop(user_id, None)
        if entry is not None:
            self._known_bytes -= entry[2]
        return entry

    def statistics(self) -> dict[str, int]:
        """Recipients' rules kept between RCPT and DATA, and their script octets."""
        return {"known": len(self._known), "known_bytes": self._known_bytes}

    async def open_delivery(self, envelope: Envelope) -> StoreDelivery:
        """Start storing one message for ``envelope.recipients``; the recipients'
        active Sieve scripts (read at RCPT with their addresses, else in one query
        now) are compiled now."""
        users = [r.user for r in envelope.recipients]
        known: dict[str, RulesOf] = {}
        now = trio.current_time()
        for user in dict.fromkeys(users):
            entry = self._take(user)
            if entry is not None and now - entry[0] <= KNOWN_FOR:
                known[user] = entry[1]
        try:
            scripts = await self._rules.load(users, known)
        except StoreUnavailable as exc:
            raise BackendUnavailable(str(exc)) from exc
        return StoreDelivery(self._store, envelope, self._max_size, self._rules, scripts)
