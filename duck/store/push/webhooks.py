"""Webhooks: registrations, and a durable delivery queue fed from the journal.

Production: ``produce`` reads journal entries by their write time from a
watermark kept in the database (``webhook_state``), minus ``SCAN_MARGIN`` because
entries from other processes can commit out of time order; each matching (hook,
event) becomes one queued delivery. Every process may produce: the unique index
on (hook, event id) makes a delivery queued twice a no-op, so producers need no
leader. The event id is ``<mailbox>:<modseq>``: stable across processes and
restarts, the receiver's dedup key (delivery is at-least-once).

Dispatch: ``claim`` takes the earliest due delivery with an atomic
``find_one_and_update`` that pushes its ``next_at`` forward by a lease; a
dispatcher that dies leaves the lease to expire and another claims it. Failures
are retried with exponential backoff up to ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from typing import Any

import attrs
import pymongo.errors
from bson import ObjectId
from pymongo import ReturnDocument

from ..engine import clock, schema
from ..engine.convert import envelope_from_bson
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import InvalidInput, NotFound
from .events import MessageMeta

log = logging.getLogger(__name__)

HOOKS = "webhooks"
DELIVERIES = "webhook_deliveries"
STATE = "webhook_state"

#: Event types a hook may subscribe to (empty list: all of them).
EVENT_TYPES = (
    "message.new", "message.deleted", "message.flags",
    "mailbox.created", "mailbox.renamed", "mailbox.deleted",
)
_KINDS = {
    "exists": "message.new", "expunge": "message.deleted", "flags": "message.flags",
    "mailbox-create": "mailbox.created", "mailbox-rename": "mailbox.renamed",
    "mailbox-delete": "mailbox.deleted",
}
#: Journal entries written this long before the watermark are read again: a
#: transaction stamps ``at`` before it commits, and clocks of processes differ.
SCAN_MARGIN = dt.timedelta(seconds=10)
#: Clock skew between processes allowed when a change is compared with a hook's
#: creation time.
CREATED_SKEW = dt.timedelta(seconds=1)
#: Most journal entries one ``produce`` call reads.
SCAN_LIMIT = 5000
MAX_HOOKS = 10000
#: Most mailbox -> user mappings kept for message entries (which lack the user).
MAILBOX_CACHE = 100_000
MAX_URL = 2048
#: Attempts before a delivery is given up (with the default backoff: ~4 days).
MAX_ATTEMPTS = 20
#: Delivered and failed deliveries are kept this long for inspection.
KEEP_DONE = 7 * 24 * 3600

schema.register(HOOKS, [schema.IndexModel([("user", schema.ASCENDING)], name="user")])
schema.register(DELIVERIES, [
    schema.IndexModel([("hook", schema.ASCENDING), ("event_id", schema.ASCENDING)],
                      unique=True, name="hook_event"),
    schema.IndexModel([("status", schema.ASCENDING), ("next_at", schema.ASCENDING)],
                      name="due"),
    schema.IndexModel([("expire", schema.ASCENDING)], expireAfterSeconds=KEEP_DONE,
                      name="ttl"),
])


@attrs.frozen
class Hook:
    """A registered webhook. ``user`` None means every user."""

    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    user_id: str | None
    created: dt.datetime


@attrs.frozen
class HookEvent:
    """A change as a webhook reports it (rendered to JSON by the API layer)."""

    event_id: str
    kind: str
    user_id: str
    mailbox_id: str
    path: str | None
    modseq: int
    at: dt.datetime | None
    uid: int | None = None
    flags: tuple[str, ...] | None = None
    message: MessageMeta | None = None


@attrs.frozen
class Delivery:
    """One claimed delivery: POST ``body`` to the hook's URL."""

    id: str
    hook_id: str
    event_id: str
    kind: str
    body: bytes
    attempts: int


def _utc(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _hook(doc: dict[str, Any]) -> Hook:
    return Hook(
        id=str(doc["_id"]), url=doc["url"], events=tuple(doc.get("events", ())),
        secret=doc["secret"], user_id=str(doc["user"]) if doc.get("user") else None,
        created=doc["created"],
    )


def backoff(attempts: int, base: float = 2.0, cap: float = 3600.0) -> float:
    """Seconds to wait before retry number ``attempts`` (1, 2, ...): doubling, capped."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


class Webhooks:
    """Hook registrations and the delivery queue (``store.webhooks``)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        #: Message documents (read with ``env`` and ``cid``) with their envelopes
        #: put back where the document keeps them apart (blocking; the store sets
        #: it: index/contents.py, which this layer does not import).
        self.with_envelopes: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = _same
        #: (mailbox, modseq) this process queued recently: saves re-inserting them.
        self._recent: dict[tuple[Any, int], dt.datetime] = {}
        self._mailbox_users: dict[Any, Any] = {}
        #: Whether the last production found any hook (the dispatcher polls
        #: seldom while there is none).
        self.has_hooks = False
        #: Productions run by this process (each a few queries).
        self.productions = 0

    def _coll(self, name: str) -> Any:
        return self._database.collection(name)

    # -- registrations ---------------------------------------------------------------

    async def create(self, url: str, events: list[str], *, user_id: str | None = None,
                     secret: str | None = None) -> Hook:
        """Register a hook (InvalidInput for a bad URL or event type; NotFound user)."""
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) \
                or len(url) > MAX_URL or any(c.isspace() for c in url):
            raise InvalidInput("url must be an http(s) URL")
        unknown = sorted(set(events) - set(EVENT_TYPES))
        if unknown:
            raise InvalidInput(f"unknown event types: {', '.join(unknown)}")
        if secret is not None and not 16 <= len(secret) <= 256:
            raise InvalidInput("secret must be 16 to 256 characters")
        user = parse_id(user_id) if user_id is not None else None
        doc = {
            "_id": ObjectId(), "url": url, "events": sorted(set(events)),
            "secret": secret or secrets.token_hex(32), "user": user, "created": clock.now(),
        }

        def run() -> None:
            if user is not None and self._coll(schema.USERS).count_documents({"_id": user}) == 0:
                raise NotFound("no such user")
            if self._coll(HOOKS).count_documents({}) >= MAX_HOOKS:
                raise InvalidInput("too many webhooks")
            self._coll(HOOKS).insert_one(doc)

        await self._database.run(run)
        self.has_hooks = True  # (this process's producer wakes on changes from now)
        return _hook(doc)

    async def list_hooks(self, user_id: str | None = None) -> list[Hook]:
        """Hooks of one user (its own, not the global ones), or all hooks."""
        query = {"user": parse_id(user_id)} if user_id is not None else {}
        docs = await self._database.run(
            lambda: list(self._coll(HOOKS).find(query).sort("_id", 1).limit(MAX_HOOKS))
        )
        return [_hook(d) for d in docs]

    async def get(self, hook_id: str) -> Hook:
        """One hook (NotFound)."""
        doc = await self._database.run(self._coll(HOOKS).find_one, {"_id": parse_id(hook_id)})
        if doc is None:
            raise NotFound("no such webhook")
        return _hook(doc)

    async def delete(self, hook_id: str) -> None:
        """Unregister a hook and drop its pending deliveries (NotFound)."""
        oid = parse_id(hook_id)

        def run() -> None:
            if self._coll(HOOKS).delete_one({"_id": oid}).deleted_count == 0:
                raise NotFound("no such webhook")
            self._coll(DELIVERIES).delete_many({"hook": oid, "status": "pending"})

        await self._database.run(run)

    # -- production ------------------------------------------------------------------

    async def produce(self, render: Callable[[HookEvent], bytes]) -> int:
        """Queue deliveries for journal entries since the watermark; returns how many.

        ``render`` turns an event into the exact body bytes that will be signed
        and sent (stored, so every retry sends the same bytes).
        """
        return await self._database.run(self._produce_sync, render)

    def _produce_sync(self, render: Callable[[HookEvent], bytes]) -> int:
        self.productions += 1
        started = clock.now()
        state = self._coll(STATE).find_one({"_id": "producer"})
        hooks = [_hook(d) for d in self._coll(HOOKS).find({}).limit(MAX_HOOKS)]
        self.has_hooks = bool(hooks)
        if state is None or not hooks:
            # Nothing to deliver to (or first start): begin from now.
            self._coll(STATE).update_one({"_id": "producer"}, {"$max": {"at": started}},
                                         upsert=True)
            return 0
        watermark: dt.datetime = state["at"]
        catching_up = started - watermark > 3 * SCAN_MARGIN
        low = watermark if catching_up else watermark - SCAN_MARGIN
        docs = list(self._coll(schema.JOURNAL).find({"at": {"$gte": low}}, {"_id": 0})
                    .sort("at", 1).limit(SCAN_LIMIT))
        for key in [k for k, at in self._recent.items() if at < low - SCAN_MARGIN]:
            del self._recent[key]
        fresh = [d for d in docs if (d["mailbox"], d["modseq"]) not in self._recent]
        queued = self._enqueue(fresh, hooks, render) if fresh else 0
        for d in fresh:
            self._recent[(d["mailbox"], d["modseq"])] = d["at"]
        if len(docs) >= SCAN_LIMIT:
            new_mark = docs[-1]["at"]
            if new_mark == watermark:  # SCAN_LIMIT entries in one millisecond
                new_mark = new_mark + dt.timedelta(milliseconds=1)
        else:
            new_mark = started
        self._coll(STATE).update_one({"_id": "producer"}, {"$max": {"at": new_mark}})
        return queued

    def _enqueue(self, docs: list[dict[str, Any]], hooks: list[Hook],
                 render: Callable[[HookEvent], bytes]) -> int:
        missing = {d["mailbox"] for d in docs if "user" not in d} - set(self._mailbox_users)
        if len(self._mailbox_users) > MAILBOX_CACHE:
            self._mailbox_users.clear()  # a bounded cache: refilled on demand
        if missing:
            for box in self._coll(schema.MAILBOXES).find({"_id": {"$in": list(missing)}},
                                                         {"user": 1}):
                self._mailbox_users[box["_id"]] = box["user"]
        paths = {
            b["_id"]: b["path"] for b in self._coll(schema.MAILBOXES).find(
                {"_id": {"$in": list({d["mailbox"] for d in docs})}}, {"path": 1})
        }
        wanted_meta = [d for d in docs if d["kind"] == "exists" and "uid" in d]
        meta: dict[tuple[Any, int], MessageMeta] = {}
        if wanted_meta and any("message.new" in h.events or not h.events for h in hooks):
            clauses = [{"mailbox": d["mailbox"], "uid": d["uid"]} for d in wanted_meta]
            # (The envelope may be kept apart: ``with_envelopes``.)
            found = list(self._coll(schema.MESSAGES).find(
                {"$or": clauses},
                {"mailbox": 1, "uid": 1, "size": 1, "flags": 1, "idate": 1, "emailid": 1,
                 "env": 1, "cid": 1},
            ))
            for m in self.with_envelopes(found):
                meta[(m["mailbox"], m["uid"])] = MessageMeta(
                    size=int(m.get("size", 0)), flags=tuple(m.get("flags", ())),
                    internal_date=m.get("idate"), emailid=m.get("emailid"),
                    envelope=envelope_from_bson(m["env"]) if "env" in m else None,
                )
        now = clock.now()
        rows = []
        for d in docs:
            user = d.get("user") or self._mailbox_users.get(d["mailbox"])
            if user is None:
                continue  # the mailbox is gone and the entry does not say whose it was
            kind = _KINDS.get(d["kind"])
            # (A change made before a hook existed is not the hook's: the producer
            # may look back further than the hook's age when it polls seldom.)
            at = d.get("at")
            targets = [h for h in hooks if (h.user_id is None or h.user_id == str(user))
                       and (not h.events or kind in h.events)
                       and (at is None or _utc(at) >= _utc(h.created) - CREATED_SKEW)]
            if kind is None or not targets:
                continue
            event = HookEvent(
                event_id=f"{d['mailbox']}:{d['modseq']}", kind=kind, user_id=str(user),
                mailbox_id=str(d["mailbox"]), path=d.get("path") or paths.get(d["mailbox"]),
                modseq=int(d["modseq"]), at=d.get("at"), uid=d.get("uid"),
                flags=tuple(d["flags"]) if d.get("flags") is not None else None,
                message=meta.get((d["mailbox"], d.get("uid", 0))),
            )
            body = render(event)
            for hook in targets:
                rows.append({
                    "hook": ObjectId(hook.id), "event_id": event.event_id, "kind": kind,
                    "body": body, "status": "pending", "attempts": 0, "next_at": now,
                    "created": now,
                })
        if not rows:
            return 0
        try:
            result = self._coll(DELIVERIES).insert_many(rows, ordered=False)
            return len(result.inserted_ids)
        except pymongo.errors.BulkWriteError as exc:
            errors = exc.details.get("writeErrors", ())
            if any(e.get("code") != 11000 for e in errors):
                raise
            return len(rows) - len(errors)  # the rest were queued by another process

    # -- dispatch --------------------------------------------------------------------

    async def claim(self, owner: str, lease: float) -> tuple[Delivery, Hook] | None:
        """Take the earliest due delivery for ``lease`` seconds, with its hook."""
        return await self._database.run(self._claim_sync, owner, lease)

    def _claim_sync(self, owner: str, lease: float) -> tuple[Delivery, Hook] | None:
        while True:
            now = clock.now()
            doc = self._coll(DELIVERIES).find_one_and_update(
                {"status": "pending", "next_at": {"$lte": now}},
                {"$set": {"next_at": now + dt.timedelta(seconds=lease), "owner": owner},
                 "$inc": {"attempts": 1}},
                sort=[("next_at", 1)], return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                return None
            hook = self._coll(HOOKS).find_one({"_id": doc["hook"]})
            if hook is None:  # unregistered meanwhile
                self._coll(DELIVERIES).delete_one({"_id": doc["_id"]})
                continue
            return Delivery(
                id=str(doc["_id"]), hook_id=str(doc["hook"]), event_id=doc["event_id"],
                kind=doc["kind"], body=bytes(doc["body"]), attempts=int(doc["attempts"]),
            ), _hook(hook)

    async def complete(self, delivery: Delivery, owner: str, status: int) -> None:
        """Mark a claimed delivery done."""
        now = clock.now()
        await self._database.run(
            self._coll(DELIVERIES).update_one, {"_id": ObjectId(delivery.id), "owner": owner},
            {"$set": {"status": "done", "response": status, "done_at": now, "expire": now}},
        )

    async def retry(self, delivery: Delivery, owner: str, error: str, delay: float,
                    max_attempts: int = MAX_ATTEMPTS) -> bool:
        """Schedule another attempt after ``delay`` s; False when given up (failed)."""
        now = clock.now()
        if delivery.attempts >= max_attempts:
            update = {"status": "failed", "error": error[:500], "done_at": now, "expire": now}
        else:
            update = {"next_at": now + dt.timedelta(seconds=delay), "error": error[:500]}
        await self._database.run(
            self._coll(DELIVERIES).update_one, {"_id": ObjectId(delivery.id), "owner": owner},
            {"$set": update},
        )
        return delivery.attempts < max_attempts

    async def statistics(self) -> dict[str, int]:
        """Deliveries by status."""
        def run() -> dict[str, int]:
            coll = self._coll(DELIVERIES)
            return {s: coll.count_documents({"status": s}) for s in ("pending", "done", "failed")}

        return await self._database.run(run)


def _same(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return docs
