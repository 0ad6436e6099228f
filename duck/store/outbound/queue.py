"""The outbound queue: mail accepted for sending, durable until the relay took it.

One document per message in ``outbound``: envelope (sender, recipients still to
send to), the message bytes (inline when small, else in ``outbound_chunks``),
``status`` (``queued`` -> ``sent`` | ``failed``), ``next_at`` and ``attempts``.
``enqueue`` returns once the document is durable (the database's journaled,
majority write concern), so an accepted message survives a crash of any duck
process and a failover of the database.

Sent once across processes: ``claim`` takes the earliest due message with one
``find_one_and_update`` that moves its ``next_at`` a lease ahead and stamps a
fresh claim token. Another sender cannot claim it until the lease runs out, and
every later write (``settle``) is conditional on the token, so a sender whose
lease ran out cannot overwrite the work of the one that claimed it next.

The window SMTP leaves open (RFC 5321 §4.1.1.4 and RFC 1047): after the relay's
250 to the final dot the message is the relay's, but a crash before ``settle``
is durable leaves it ``queued``; when the lease expires it is sent again. The
sender keeps that window as small as it can (it settles right after the reply,
before QUIT, and retries the settle through database outages while its lease
lasts) and the message keeps its own Message-ID, by which receivers drop a
duplicate. Every other crash point is covered: before the final dot the relay
discards the transaction, so a retry after the lease is no duplicate.

Large messages: bodies over ``INLINE_MAX`` go to ``outbound_chunks`` first and
the queue document, written last, is the commit point; chunks orphaned by a crash
in between carry a TTL past any message's allowed age, which removes them.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

import attrs
import pymongo.errors
import trio
from bson import Binary, ObjectId
from pymongo import ReturnDocument

from ..engine import clock, schema
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import InvalidInput, NotFound, TooBig
from .vacation import VacationMemory

QUEUE = "outbound"
CHUNKS = "outbound_chunks"

#: Statuses of a queued message.
QUEUED, SENT, FAILED = "queued", "sent", "failed"
#: Bodies up to this size are kept in the queue document itself.
INLINE_MAX = 256 * 1024
CHUNK_SIZE = 1024 * 1024
#: Chunks written or read per database command (8 MiB).
CHUNKS_PER_COMMAND = 8
#: Largest message the queue takes (LMTP's default maximum message size).
MAX_MESSAGE = 64 * 1024 * 1024
#: Most recipients of one queued message (a redirect has one; a cap all the same).
MAX_RECIPIENTS = 100
#: Longest address (RFC 5321 §4.5.3.1: 64 + 1 + 255, with room for a route).
MAX_ADDRESS = 320
MAX_KIND = 32
MAX_KEY = 200
#: Longest a message may stay queued: the senders' ``max_age`` is capped to this,
#: and orphaned chunks are removed after it (plus a day).
MAX_AGE = 30 * 24 * 3600
#: Sent and failed messages stay this long for inspection (without their body).
KEEP_DONE = 7 * 24 * 3600

_ADDRESS = re.compile(r"[^\s<>\x00-\x1f\x7f]+@[^\s<>@\x00-\x1f\x7f]+")

schema.register(QUEUE, [
    # Claiming and "when is the next one due" are both this index.
    schema.IndexModel([("status", schema.ASCENDING), ("next_at", schema.ASCENDING)],
                      name="due"),
    # An idempotency key: the same action of the same delivery queued twice (a
    # delivery retried after a crash before its reply) is one message.
    schema.IndexModel([("key", schema.ASCENDING)], unique=True, name="key",
                      partialFilterExpression={"key": {"$type": "string"}}),
    schema.IndexModel([("expire", schema.ASCENDING)], expireAfterSeconds=KEEP_DONE,
                      name="ttl"),
])
schema.register(CHUNKS, [
    schema.IndexModel([("q", schema.ASCENDING), ("n", schema.ASCENDING)], unique=True,
                      name="q_n"),
    schema.IndexModel([("orphan_at", schema.ASCENDING)], expireAfterSeconds=0,
                      name="ttl"),
])


@attrs.frozen
class OutboundMessage:
    """A claimed message: send ``message`` from ``sender`` to ``recipients``, then
    hand it back to ``settle``."""

    id: str
    kind: str
    user_id: str | None
    #: The reverse-path; "" is the null sender (``MAIL FROM:<>``).
    sender: str
    recipients: tuple[str, ...]
    message: bytes
    #: Attempts so far, this one included.
    attempts: int
    created: dt.datetime
    #: The claim this sender holds (writes are conditional on it).
    claim: str
    lease_until: dt.datetime


@attrs.frozen
class Outcome:
    """What one attempt did, per recipient: ``sent`` (accepted by the relay),
    ``refused`` (permanently, with the relay's reply), ``deferred`` (to be tried
    again after ``delay`` seconds; ``error`` says why)."""

    sent: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()
    deferred: tuple[str, ...] = ()
    error: str = ""
    delay: float = 0.0


@attrs.frozen
class OutboundStatus:
    """A queued message as an operator sees it (no body)."""

    id: str
    kind: str
    user_id: str | None
    sender: str
    status: str
    #: Recipients still to send to (queued), or none.
    pending: tuple[str, ...]
    sent: tuple[str, ...]
    refused: tuple[tuple[str, str], ...]
    attempts: int
    created: dt.datetime
    next_at: dt.datetime
    error: str | None


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _check_address(value: Any, *, null_ok: bool) -> str:
    if not isinstance(value, str) or len(value) > MAX_ADDRESS:
        raise InvalidInput("bad address")
    if value == "" and null_ok:
        return value
    if not _ADDRESS.fullmatch(value):
        raise InvalidInput(f"bad address {value[:80]!r}")
    return value


def _crlf(message: bytes) -> bytes:
    """Bare LFs as CRLF (SMTP's line ending); a CRLF message is left byte-exact."""
    if b"\n" not in message.replace(b"\r\n", b""):
        return message
    return re.sub(rb"\r?\n", b"\r\n", message)


class Outbound(VacationMemory):
    """``store.outbound``: the outbound queue, and the vacation memory
    (``vacation_should_reply``, from ``vacation.py``)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        #: Messages this process enqueued: its sender waits for this to change
        #: (``wait_enqueued``); other processes' senders find a message at their
        #: next poll.
        self.enqueued = 0
        self._enqueued = trio.Event()

    @property
    def _queue(self) -> Any:
        return self._database.collection(QUEUE)

    @property
    def _chunks(self) -> Any:
        return self._database.collection(CHUNKS)

    # -- accepting -----------------------------------------------------------------

    async def enqueue(self, sender: str, recipients: list[str], message: bytes, *,
                      kind: str, user_id: str | None = None, key: str | None = None,
                      max_size: int = MAX_MESSAGE) -> str:
        """Accept a message for sending; returns its queue id once durable.

        ``sender`` is the reverse-path ("" for the null sender, as automatic
        replies use); ``kind`` says what queued it ("redirect", "vacation", ...);
        ``key``, when given, makes the call idempotent: a second enqueue with the
        same key returns the first one's id and queues nothing. InvalidInput for a
        bad address or kind, TooBig over ``max_size``.
        """
        sender = _check_address(sender, null_ok=True)
        if not isinstance(recipients, list | tuple) or not 0 < len(recipients) <= MAX_RECIPIENTS:
            raise InvalidInput(f"1 to {MAX_RECIPIENTS} recipients")
        rcpts = [_check_address(r, null_ok=False) for r in recipients]
        if not isinstance(kind, str) or not 0 < len(kind) <= MAX_KIND:
            raise InvalidInput("bad kind")
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_KEY):
            raise InvalidInput("bad key")
        if not isinstance(message, bytes | bytearray | memoryview):
            raise InvalidInput("the message is bytes")
        data = _crlf(bytes(message))
        if len(data) > max_size:
            raise TooBig(f"message larger than {max_size} bytes")
        queue_id = await self._database.run(
            self._enqueue_sync, sender, rcpts, data, kind, user_id, key)
        self.enqueued += 1
        self._enqueued.set()
        self._enqueued = trio.Event()
        return queue_id

    def _enqueue_sync(self, sender: str, rcpts: list[str], data: bytes, kind: str,
                      user_id: str | None, key: str | None) -> str:
        if key is not None:
            existing = self._queue.find_one({"key": key}, {"_id": 1})
            if existing is not None:
                return str(existing["_id"])
        now = clock.now()
        oid = ObjectId()
        doc: dict[str, Any] = {
            "_id": oid, "kind": kind, "user": user_id, "sender": sender, "rcpts": rcpts,
            "sent": [], "refused": [], "size": len(data), "status": QUEUED,
            "attempts": 0, "next_at": now, "created": now,
        }
        if key is not None:
            doc["key"] = key
        if len(data) <= INLINE_MAX:
            doc["body"] = Binary(data)
        else:
            # Chunks first; the queue document below is the commit point.
            orphan_at = now + dt.timedelta(seconds=MAX_AGE + 86400)
            chunks = [{"q": oid, "n": i, "data": Binary(data[at:at + CHUNK_SIZE]),
                       "orphan_at": orphan_at}
                      for i, at in enumerate(range(0, len(data), CHUNK_SIZE))]
            # A few chunks a command: the embedded engine refuses messages and
            # replies over 48 MB and does not split them (docs/architecture.md).
            for at in range(0, len(chunks), CHUNKS_PER_COMMAND):
                self._chunks.insert_many(chunks[at:at + CHUNKS_PER_COMMAND])
            doc["chunks"] = len(chunks)
        try:
            self._queue.insert_one(doc)
        except pymongo.errors.DuplicateKeyError:
            # The same key queued meanwhile by another delivery attempt.
            if "chunks" in doc:
                self._chunks.delete_many({"q": oid})
            existing = self._queue.find_one({"key": key}, {"_id": 1})
            if existing is None:
                raise
            return str(existing["_id"])
        return str(oid)

    # -- sending ---------------------------------------------------------------------

    async def claim(self, owner: str, lease: float) -> OutboundMessage | None:
        """Take the earliest due message for ``lease`` seconds (None: nothing due).

        Nobody else claims it before the lease runs out; ``owner`` names the
        claimant in the document (diagnostics only)."""
        if not lease > 0:
            raise InvalidInput("a lease lasts a positive number of seconds")
        return await self._database.run(self._claim_sync, owner, lease)

    def _claim_sync(self, owner: str, lease: float) -> OutboundMessage | None:
        now = clock.now()
        token = secrets.token_hex(12)
        until = now + dt.timedelta(seconds=lease)
        # AFTER, not BEFORE: the embedded engine's pre-images are stale under
        # concurrency (docs/architecture.md); the token read back says who won.
        doc = self._queue.find_one_and_update(
            {"status": QUEUED, "next_at": {"$lte": now}},
            {"$set": {"next_at": until, "claim": token, "owner": owner},
             "$inc": {"attempts": 1}},
            sort=[("next_at", 1)], return_document=ReturnDocument.AFTER,
        )
        if doc is None or doc.get("claim") != token:
            return None
        if "body" in doc:
            data = bytes(doc["body"])
        else:
            parts = list(self._chunks.find({"q": doc["_id"]}).sort("n", 1)
                         .batch_size(CHUNKS_PER_COMMAND))
            data = b"".join(bytes(p["data"]) for p in parts)
            if len(parts) != doc.get("chunks") or len(data) != doc.get("size"):
                # Cannot happen short of someone deleting chunks by hand: never
                # send a truncated message.
                self._queue.update_one(
                    {"_id": doc["_id"], "claim": token},
                    {"$set": {"status": FAILED, "error": "message body missing",
                              "expire": now}})
                return None
        return OutboundMessage(
            id=str(doc["_id"]), kind=doc["kind"], user_id=doc.get("user"),
            sender=doc["sender"], recipients=tuple(doc["rcpts"]), message=data,
            attempts=int(doc["attempts"]), created=_utc(doc["created"]), claim=token,
            lease_until=until,
        )

    async def settle(self, message: OutboundMessage, outcome: Outcome, *,
                     max_age: float) -> str | None:
        """Record what an attempt did; returns the message's status now ("queued"
        when some recipients are retried after ``outcome.delay``, "sent", or
        "failed"), or None when the claim was lost (the lease ran out and another
        sender claimed the message; nothing is written).

        Deferred recipients are given up (refused with ``outcome.error``) when the
        retry would fall after ``created + max_age``. A message ends "sent" when
        the relay took it for at least one recipient, "failed" otherwise.
        """
        return await self._database.run(self._settle_sync, message, outcome, max_age)

    def _settle_sync(self, message: OutboundMessage, outcome: Outcome,
                     max_age: float) -> str | None:
        now = clock.now()
        error = outcome.error[:500]
        refused = [[r, reply[:500]] for r, reply in outcome.refused]
        retry_at = now + dt.timedelta(seconds=max(0.0, outcome.delay))
        give_up = message.created + dt.timedelta(seconds=min(max_age, MAX_AGE))
        deferred = list(outcome.deferred)
        if deferred and retry_at > give_up:
            refused += [[r, f"gave up after {message.attempts} attempts: {error}"[:500]]
                        for r in deferred]
            deferred = []
        update: dict[str, Any] = {}
        if deferred:
            status = QUEUED
            update["$set"] = {"status": QUEUED, "rcpts": deferred, "next_at": retry_at,
                              "error": error}
        else:
            # An earlier attempt may have sent to some recipients already.
            any_sent = bool(outcome.sent) or bool(
                (self._queue.find_one({"_id": ObjectId(message.id)}, {"sent": 1}) or {})
                .get("sent"))
            status = SENT if any_sent else FAILED
            update["$set"] = {"status": status, "rcpts": [], "expire": now,
                              "done_at": now, "error": error or None}
            update["$unset"] = {"body": ""}
        pushes: dict[str, Any] = {}
        if outcome.sent:
            pushes["sent"] = {"$each": list(outcome.sent)}
        if refused:
            pushes["refused"] = {"$each": refused}
        if pushes:
            update["$push"] = pushes
        result = self._queue.update_one({"_id": ObjectId(message.id), "claim": message.claim},
                                        update)
        if result.matched_count == 0:
            return None
        if status != QUEUED:
            self._chunks.delete_many({"q": ObjectId(message.id)})
        return status

    async def next_due(self) -> dt.datetime | None:
        """When the earliest queued message falls due (None: the queue is empty);
        a claimed message counts with its lease's end."""
        doc = await self._database.run(
            lambda: self._queue.find_one({"status": QUEUED}, {"next_at": 1},
                                         sort=[("next_at", 1)]))
        return None if doc is None else _utc(doc["next_at"])

    async def wait_enqueued(self, seen: int) -> None:
        """Block until this process has enqueued more than ``seen`` messages (pass
        ``enqueued`` as read before looking at the queue: nothing is missed)."""
        while self.enqueued == seen:
            await self._enqueued.wait()

    # -- inspection ------------------------------------------------------------------

    async def get(self, queue_id: str) -> OutboundStatus:
        """A queued, sent or failed message's state (NotFound; kept ``KEEP_DONE``)."""
        doc = await self._database.run(
            self._queue.find_one, {"_id": parse_id(queue_id)}, {"body": 0})
        if doc is None:
            raise NotFound("no such outbound message")
        return OutboundStatus(
            id=str(doc["_id"]), kind=doc["kind"], user_id=doc.get("user"),
            sender=doc["sender"], status=doc["status"],
            pending=tuple(doc["rcpts"]) if doc["status"] == QUEUED else (),
            sent=tuple(doc.get("sent", ())),
            refused=tuple((r, reply) for r, reply in doc.get("refused", ())),
            attempts=int(doc.get("attempts", 0)), created=_utc(doc["created"]),
            next_at=_utc(doc["next_at"]), error=doc.get("error"),
        )

    async def statistics(self) -> dict[str, int]:
        """Messages by status: ``queued`` is the queue's depth; ``sent`` and
        ``failed`` count those kept for inspection."""
        def run() -> dict[str, int]:
            return {s: self._queue.count_documents({"status": s})
                    for s in (QUEUED, SENT, FAILED)}

        return await self._database.run(run)
