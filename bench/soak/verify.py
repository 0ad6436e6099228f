"""Checkpoint checks, run while the load is parked and every process is up.

- acknowledged messages: the copies of each soak id per mailbox, recounted from the
  message documents, against ``Expect``; (mailbox, UID) unique, and a UID never
  names another message (``Uids``); the API worker's mailboxes as it left them;
- counters, quota, GridFS references and digest: the store's own ``duck doctor``
  (duck/store/doctor.py), which recounts them from the message documents;
- SSE: every journal entry of the user's mailboxes since the stream started was
  given to the reader (repeats and order are checked as events arrive);
- IDLE: the session's view equals a fresh SELECT + FETCH.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Any

import httpx
import trio
from bson import ObjectId

from duck.store import Store
from duck.store.engine import schema
from duck.store.mail import repair
from duck.store.mail.mailboxes import PURGES

from .api_worker import ApiWorker
from .context import Soak, User
from .imap import Imap, ImapDown, fetch_items
from .watchers import IdleWatch, SseWatch

_SID = re.compile(r"sk[0-9a-f]{10}x")
_REFS = re.compile(r"reference count (\d+), messages (\d+)")
#: How long readers may take to catch up once the load is parked.
CATCH_UP = 30.0


def journal_keys(store: Store, user: User) -> set[tuple[str, int]]:
    """(mailbox, modseq) of the journal entries an SSE reader of ``user`` is given
    (blocking)."""
    oid = ObjectId(user.id)
    db = store.database
    boxes = {b["_id"] for b in db.collection(schema.MAILBOXES).find({"user": oid}, {"_id": 1})}
    boxes |= {e["mailbox"] for e in db.collection(schema.JOURNAL).find(
        {"user": oid, "kind": "mailbox-create"}, {"mailbox": 1})}
    return {(str(e["mailbox"]), int(e["modseq"])) for e in db.collection(schema.JOURNAL).find(
        {"mailbox": {"$in": list(boxes)}, "kind": {"$ne": "acl"}}, {"mailbox": 1, "modseq": 1})}


def _recount(store: Store, user: User) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    oid = ObjectId(user.id)
    db = store.database
    boxes = list(db.collection(schema.MAILBOXES).find({"user": oid}, {"path": 1, "uidv": 1}))
    messages = list(db.collection(schema.MESSAGES).find(
        {"user": oid}, {"mailbox": 1, "uid": 1, "msgid": 1}))
    return boxes, messages


def _whereabouts(store: Store, sid: str) -> list[str]:
    """Where the database has a message: live, archived, journal (evidence)."""
    db = store.database
    pattern = {"$regex": sid}
    out = [f"message in {m['mailbox']} UID {m['uid']}" for m in
           db.collection(schema.MESSAGES).find({"msgid": pattern}, {"mailbox": 1, "uid": 1})]
    out += [f"archived from {m.get('mailbox')} UID {m.get('uid')} at {m.get('archived')}"
            for m in db.collection(schema.ARCHIVE).find({"msgid": pattern})]
    return out or ["nowhere"]


async def check_messages(soak: Soak, store: Store, user: User, api: ApiWorker,
                         where: str) -> None:
    """Recount the user's messages against the expectations and the UIDs seen."""
    boxes, messages = await store.database.run(lambda: _recount(store, user))
    by_id = {b["_id"]: b for b in boxes}
    counts: dict[str, Counter[str]] = {}
    slots: Counter[tuple[ObjectId, int]] = Counter()
    tracked = {user.key(f"api:{b.id}") for b in api.boxes if b.exists}
    for msg in messages:
        slots[(msg["mailbox"], msg["uid"])] += 1
        box = by_id.get(msg["mailbox"])
        found = _SID.search(str(msg.get("msgid") or ""))
        if box is None or found is None:
            continue  # orphans are the doctor's finding
        path = box["path"]
        key = user.key(path if not path.startswith("Api") else f"api:{box['_id']}")
        counts.setdefault(key, Counter())[found.group()] += 1
        if not path.startswith("Api"):
            soak.uids.observed(key, int(box["uidv"]), int(msg["uid"]), found.group(), where)
    for (mailbox, uid), n in slots.items():
        if n > 1:
            soak.violations.add("UIDs unique and increasing",
                                f"{where}: mailbox {mailbox} has {n} messages with UID {uid}")
    prefix = user.key("")
    keys = {k for k in soak.expect.boxes if k.startswith(prefix)}
    keys |= {k for k in counts if "/api:" not in k or k in tracked}
    soak.expect.lost.clear()
    for key in sorted(keys):
        soak.expect.observe(key, counts.get(key, Counter()), where)
    for sid in soak.expect.lost[:3]:
        places = await store.database.run(lambda sid=sid: _whereabouts(store, sid))
        soak.violations.add("acknowledged message present exactly once",
                            f"{where}: where {sid} is: {places}")
    for made in api.boxes:
        doc = by_id.get(ObjectId(made.id))
        if made.exists and (doc is None or doc["path"] != made.path):
            soak.violations.add("API mailbox changes", f"{where}: {user.address} mailbox "
                                f"{made.id} should be {made.path!r}, is {doc and doc['path']!r}")
        elif made.exists is False and doc is not None:
            soak.violations.add("API mailbox changes", f"{where}: {user.address} mailbox "
                                f"{made.id} ({doc['path']}) deleted, still there")


async def check_doctor(soak: Soak, store: Store, where: str, final: bool) -> int:
    """``duck doctor`` with no grace (nothing is in flight now). What a crash leaves
    for the server's own later passes is counted as pending, not as a violation:
    bodies whose count is above their references, or that nothing references (a
    crash between a body write and its message: the sweep, engine/bodies.py), and
    the messages (and digest) of a mailbox whose DELETE was killed after its
    transaction and before its purge (the ``purges`` note it left: the repair pass,
    which waits for the maintenance lease the killed process held). At the end
    those passes are run (the purges' step only: the repair's recount would hide a
    counter bug) and the doctor again, after which nothing may be left. Returns the
    findings pending."""
    report = await store.doctor(grace=dt.timedelta(0))
    purging = {str(d["_id"]) for d in await store.database.run(
        lambda: list(store.database.collection(PURGES).find({}, {"_id": 1})))}
    pending = 0
    for f in report.findings:
        refs = _REFS.search(f.problem)
        leak = f.check == "bodies" and (
            "referenced by no message" in f.problem or "no body names" in f.problem
            or (refs is not None and int(refs.group(1)) > int(refs.group(2))))
        interrupted = (f.check in ("counters", "digest") and "no longer exists" in f.problem
                       and f.subject.removeprefix("mailbox ") in purging)
        if leak or interrupted:
            pending += 1
            continue
        soak.violations.add(f"doctor: {f.check} match the message documents",
                            f"{where}: {f.subject}: {f.problem}")
    if final and pending:
        def finish_purges() -> None:
            after = None
            while (after := repair.orphans_page(store.database, store.mailboxes,
                                                repair.RepairReport(), after)) is not None:
                pass

        await store.database.run(finish_purges)
        await store.database.run(lambda: store.bodies.sweep(dt.timedelta(0)))
        report = await store.doctor(grace=dt.timedelta(0))
        for f in report.findings:
            soak.violations.add(f"doctor: {f.check} match the message documents",
                                f"{where} (after the sweep): {f.subject}: {f.problem}")
    return pending


async def notifier_seen(port: int) -> float | None:
    """The ``duck_notifier_events`` counter of a process (its /metrics)."""
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith("duck_notifier_events"):
            return float(line.split()[-1])
    return None


def journal_total(store: Store) -> int:
    """Journal entries of the whole database (blocking)."""
    return int(store.database.collection(schema.JOURNAL).count_documents({}))


async def check_sse(soak: Soak, store: Store, watch: SseWatch, baseline: set[tuple[str, int]],
                    where: str) -> None:
    """Every journal entry since the stream started reached the reader."""
    expected = await store.database.run(lambda: journal_keys(store, watch.user)) - baseline
    with trio.move_on_after(CATCH_UP):
        while not expected <= watch.seen:
            await trio.sleep(0.2)
    for key in sorted(expected - watch.seen)[:50]:
        soak.violations.add("SSE: every change once and in order",
                            f"{where}: {watch.user.address}: {key} never given")


async def _fresh(conn: Imap) -> list[tuple[int, frozenset[str]]]:
    """A fresh SELECT of INBOX and the UIDs and flags of all its messages."""
    await conn.command("SELECT INBOX")
    reply = await conn.command("FETCH 1:* (UID FLAGS)")
    rows = sorted(item for line in reply.untagged if (item := fetch_items(line)))
    return [(uid or 0, flags or frozenset()) for _, uid, flags in rows]


def _inbox_journal(store: Store, user: User) -> list[str]:
    """The last journal entries of the user's INBOX (evidence for a report)."""
    coll = store.database.collection(schema.JOURNAL)
    box = store.database.collection(schema.MAILBOXES).find_one({"_id": ObjectId(user.inbox)})
    rows = list(coll.find({"mailbox": ObjectId(user.inbox)}).sort("modseq", -1).limit(8))
    return [f"INBOX modseq {box and box['modseq']}"] + [
        f"{r['modseq']}:{r['kind']}:{r.get('uid')}@{r['at'].strftime('%H:%M:%S.%f')[:-3]}"
        for r in reversed(rows)]


async def check_idle(soak: Soak, watch: IdleWatch, where: str) -> None:
    """The IDLE session's view equals a fresh SELECT + FETCH (given time to arrive;
    selected again each time, as an operation still in flight may land)."""
    fresh: list[tuple[int, frozenset[str]]] | None = None
    view: list[tuple[int, frozenset[str]]] = []
    conn: Imap | None = None
    with trio.move_on_after(CATCH_UP):
        while True:
            if conn is None:
                conn = await soak.login(watch.user)
                continue
            try:
                fresh = await _fresh(conn)
            except ImapDown:
                await conn.aclose()
                conn = None
                continue
            view = [(uid, flags) for uid, flags in watch.view]
            if watch.current and view == fresh:
                await conn.aclose()
                return
            await trio.sleep(0.5)
    if conn is not None:
        await conn.aclose()
    if fresh is None:
        soak.violations.add("IDLE view equals SELECT + FETCH",
                            f"{where}: {watch.user.address}: no fresh session")
        return
    differ = [f"#{i + 1}: idle {a} fresh {b}" for i, (a, b) in
              enumerate(zip(view, fresh, strict=False)) if a != b][:3]
    journal = await soak.cluster_store.database.run(lambda: _inbox_journal(
        soak.cluster_store, watch.user)) if soak.cluster_store else []
    soak.violations.add("IDLE view equals SELECT + FETCH",
                        f"{where}: {watch.user.address}: view of {len(view)} messages "
                        f"(current={watch.current}, on {watch.on}), fresh {len(fresh)}; "
                        f"{differ}; journal {journal}")
