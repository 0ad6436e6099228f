"""``duck doctor``: check what the store keeps incrementally against what it counts.

The store keeps several figures up to date with each write rather than counting
them when asked (mailbox counters, quota usage, body reference counts, the
digest). A crash between two writes that are not in one transaction, a bug, or a
hand edit can leave one of them wrong; this module recounts each from the
documents it summarises and says where they differ. With ``fix`` it repairs what
can be repaired from those documents:

- indexes: every registered index exists (fix: create the missing ones);
- mailbox counters: ``count``/``unseen``/``size`` against the mailbox's messages,
  ``uid_next`` above its highest UID (fix: set them, guarded by the values read, so
  that a delivery racing the fix is never overwritten); messages of a mailbox that
  no longer exists (fix: purge them, releasing their quota and bodies);
- quota: ``storage_used`` against the size of the user's messages (fix: set it);
- bodies: reference counts against the messages that reference each body, bodies
  nothing references, GridFS files no body names (fix: ``Bodies.sweep``), and
  bodies a message references that are gone (not fixable: that mail is damaged);
- digest: a mailbox's digest entries against its messages (fix: rebuild it), and
  digest documents of mailboxes that no longer exist (fix: drop them); a digest
  that a server is building in the background is not a finding;
- contents (index/contents.py): a message or archived message whose contents are
  gone (not fixable: that mail is damaged), and contents nothing refers to (a crash
  in an archive purge; fix: delete them).

Everything runs as blocking calls in one worker thread (``Store.doctor``); each
check is a scan of its collections, meant for an administrator's occasional run.
The scans are not one snapshot, and the store keeps being written meanwhile: a
mailbox whose counters or digest, or a user whose quota, differ from the scans is
read again in one transaction (a snapshot of it alone), and only a difference that
shows there too is a finding (or is fixed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import partial
from typing import Any

import attrs
from bson import ObjectId

from .engine import schema
from .engine.bodies import SWEEP_GRACE, Bodies
from .engine.clock import now
from .engine.database import Database
from .index import contents, digest
from .mail.mailboxes import Mailboxes

#: The checks, in the order they run.
CHECKS = ("indexes", "counters", "quota", "bodies", "digest", "contents")


@attrs.frozen
class Finding:
    """One thing found wrong: which check, about what, and whether it was fixed."""

    check: str
    subject: str
    problem: str
    fixed: bool = False
    #: False when no fix exists (the data itself is damaged).
    fixable: bool = True


@attrs.define
class DoctorReport:
    """What ``duck doctor`` looked at and found."""

    findings: list[Finding] = attrs.Factory(list)
    #: What was examined, by kind (indexes, mailboxes, users, bodies, files).
    examined: dict[str, int] = attrs.Factory(dict)

    @property
    def healthy(self) -> bool:
        """True when nothing is wrong any more (nothing found, or all fixed)."""
        return all(f.fixed for f in self.findings)


#: A mailbox's figures, counted from its message documents.
_MAILBOX_GROUP: dict[str, Any] = {"$group": {
    "_id": "$mailbox", "user": {"$first": "$user"}, "count": {"$sum": 1},
    "unseen": {"$sum": {"$cond": [{"$eq": ["$seen", True]}, 0, 1]}},
    "size": {"$sum": "$size"}, "max_uid": {"$max": "$uid"}}}
_EMPTY_BOX: dict[str, Any] = {"count": 0, "unseen": 0, "size": 0, "max_uid": 0}


def _counters_wrong(box: dict[str, Any], have: dict[str, Any]) -> dict[str, int]:
    """The counters of mailbox document ``box`` that differ from ``have`` (counted
    from its messages), with the counted values; ``uid_next`` when it is not above
    the highest UID."""
    wrong = {k: int(have[k]) for k in ("count", "unseen", "size")
             if int(box.get(k, 0)) != int(have[k])}
    if int(box["uid_next"]) <= int(have["max_uid"]):
        wrong["uid_next"] = int(have["max_uid"]) + 1
    return wrong


class _Doctor:
    def __init__(self, database: Database, mailboxes: Mailboxes, bodies: Bodies,
                 fix: bool, grace: dt.timedelta) -> None:
        self.database = database
        self.mailboxes = mailboxes
        self.store_bodies = bodies
        self.fix = fix
        self.grace = grace
        self.report = DoctorReport()

    def coll(self, name: str) -> Any:
        return self.database.collection(name)

    def found(self, check: str, subject: str, problem: str, *, fixed: bool = False,
              fixable: bool = True) -> None:
        self.report.findings.append(Finding(check, subject, problem, fixed, fixable))

    # -- indexes --------------------------------------------------------------------

    def indexes(self) -> None:
        missing = []
        total = 0
        for collection in schema.INDEXES:
            present = {ix["name"] for ix in self.coll(collection).list_indexes()}
            for model in schema.wanted(collection):
                total += 1
                name = model.document["name"]
                if name not in present:
                    missing.append(f"{collection}.{name}")
        self.report.examined["indexes"] = total
        if missing and self.fix:
            schema.ensure_indexes(self.database.db)
        for name in missing:
            self.found("indexes", name, "index missing", fixed=self.fix)

    # -- mailbox counters and quota ----------------------------------------------------

    def counters(self) -> None:
        actual: dict[ObjectId, dict[str, Any]] = {
            g["_id"]: g for g in self.coll(schema.MESSAGES).aggregate([_MAILBOX_GROUP])
        }
        boxes = self.coll(schema.MAILBOXES)
        known = set()
        for box in boxes.find({}, {"user": 1, "path": 1, "count": 1, "unseen": 1,
                                   "size": 1, "uid_next": 1}):
            known.add(box["_id"])
            have = actual.get(box["_id"], _EMPTY_BOX)
            subject = f"mailbox {box['_id']} ({box['path']})"
            if not _counters_wrong(box, have):
                continue
            # The scan above read the messages, then the mailboxes: a write that
            # landed in between (a delivery, an expunge, a write held back behind a
            # dead client's transaction) differs there without anything being wrong.
            # Only what one snapshot of this mailbox still shows is a finding.
            again, have = self.database.in_transaction(
                partial(self._box_snapshot, mailbox=box["_id"]))
            if again is None:
                continue  # (deleted meanwhile)
            box = again
            wrong = _counters_wrong(box, have)
            if not wrong:
                continue
            fixed = False
            if self.fix:
                guard = {"_id": box["_id"], **{k: box.get(k, 0) for k in wrong}}
                fixed = boxes.update_one(guard, {"$set": wrong}).modified_count == 1
            said = ", ".join(f"{k} {box.get(k, 0)} (counted {v if k != 'uid_next' else v - 1}"
                             f"{' as highest UID' if k == 'uid_next' else ''})"
                             for k, v in wrong.items())
            self.found("counters", subject, f"counters differ: {said}", fixed=fixed)
        self.report.examined["mailboxes"] = len(known)
        for mailbox, group in list(actual.items()):
            if mailbox in known:
                continue
            fixed = False
            if self.fix:
                # Releases their quota and bodies, and drops their digest.
                self.mailboxes.purge_sync(mailbox)
                del actual[mailbox]
                fixed = True
            self.found("counters", f"mailbox {mailbox}",
                       f"{group['count']} messages in a mailbox that no longer exists",
                       fixed=fixed)
        self._quota(actual)

    def _box_snapshot(self, session: Any, mailbox: ObjectId
                      ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """A mailbox's document and its messages' figures, read in ``session``."""
        box = self.coll(schema.MAILBOXES).find_one(
            {"_id": mailbox}, {"user": 1, "path": 1, "count": 1, "unseen": 1, "size": 1,
                               "uid_next": 1}, session=session)
        groups = list(self.coll(schema.MESSAGES).aggregate(
            [{"$match": {"mailbox": mailbox}}, _MAILBOX_GROUP], session=session))
        return box, (groups[0] if groups else _EMPTY_BOX)

    def _user_snapshot(self, session: Any, user: ObjectId) -> tuple[int, int] | None:
        """A user's ``storage_used`` and the size of their messages, read in ``session``."""
        doc = self.coll(schema.USERS).find_one({"_id": user}, {"storage_used": 1},
                                               session=session)
        if doc is None:
            return None
        groups = list(self.coll(schema.MESSAGES).aggregate(
            [{"$match": {"user": user}}, {"$group": {"_id": None, "size": {"$sum": "$size"}}}],
            session=session))
        return int(doc.get("storage_used", 0)), int(groups[0]["size"]) if groups else 0

    def _quota(self, per_mailbox: dict[ObjectId, dict[str, Any]]) -> None:
        used: dict[ObjectId, int] = {}
        for group in per_mailbox.values():
            used[group["user"]] = used.get(group["user"], 0) + int(group["size"])
        users = self.coll(schema.USERS)
        count = 0
        for user in users.find({}, {"username": 1, "storage_used": 1}):
            count += 1
            stored = int(user.get("storage_used", 0))
            counted = used.get(user["_id"], 0)
            if stored == counted:
                continue
            # (As for the counters: a finding only if one snapshot of the user shows it.)
            snapshot = self.database.in_transaction(
                partial(self._user_snapshot, user=user["_id"]))
            if snapshot is None or snapshot[0] == snapshot[1]:
                continue
            stored, counted = snapshot
            fixed = False
            if self.fix:
                guard = {"_id": user["_id"], "storage_used": stored}
                fixed = users.update_one(
                    guard, {"$set": {"storage_used": counted}}).modified_count == 1
            self.found("quota", f"user {user['username']}",
                       f"storage used {stored} bytes, messages hold {counted}", fixed=fixed)
        self.report.examined["users"] = count

    def _digest_differs(self, session: Any, mailbox: ObjectId,
                        uid_next: int | None) -> tuple[int, int] | None:
        """How many of the mailbox's messages its digest lacks (or holds as expunged),
        and how many UIDs it holds that no message has; None when it matches.
        ``uid_next``: the mailbox's, or None to read it in ``session`` too."""
        if uid_next is None:
            box = self.coll(schema.MAILBOXES).find_one({"_id": mailbox}, {"uid_next": 1},
                                                      session=session)
            if box is None:
                return None  # (deleted meanwhile)
            uid_next = int(box["uid_next"])
        uids = {int(d["uid"]) for d in self.coll(schema.MESSAGES).find(
            {"mailbox": mailbox}, {"uid": 1}, session=session)}
        entries: set[int] = set()
        live: set[int] = set()
        for docs in digest.scan(self.database, mailbox, digest.META, 1, max(1, uid_next),
                                {"m": 1, "L": 1}, session=session):
            for doc in docs:
                entries.update(int(uid) for uid in doc.get("m", {}))
                word = digest.unsigned(int(doc.get("L", 0)))
                base = int(doc["c"]) * digest.SPAN
                live.update(base + bit for bit in range(digest.SPAN) if word >> bit & 1)
        if entries == uids and live == uids:
            return None
        return len(uids - (entries & live)), len((entries | live) - uids)

    # -- bodies ----------------------------------------------------------------------

    def bodies(self) -> None:
        cutoff = now() - self.grace
        messages = self.coll(schema.MESSAGES)
        bodies = self.coll(schema.BODIES)
        findings: list[tuple[str, str]] = []
        count = 0
        for doc in bodies.find({}, {"refs": 1, "touched": 1, "file": 1}):
            count += 1
            if doc["touched"] > cutoff:
                continue  # possibly in flight: sweep leaves it alone too
            # (The archive's deleted messages keep their references: mail/archive.py.)
            actual = sum(self.coll(c).count_documents({"bodies": doc["_id"]})
                         for c in (schema.MESSAGES, schema.ARCHIVE))
            if actual == 0:
                findings.append((f"body {doc['_id']}", "referenced by no message"))
            elif actual != doc["refs"]:
                findings.append((f"body {doc['_id']}",
                                 f"reference count {doc['refs']}, messages {actual}"))
        files = 0
        for batch in _batches(self.store_bodies.files.find({}, {"_id": 1, "uploadDate": 1}), 500):
            files += len(batch)
            ids = [f["_id"] for f in batch if f["uploadDate"] <= cutoff]
            named = {d["file"] for d in bodies.find({"file": {"$in": ids}}, {"file": 1})}
            findings += [(f"file {i}", "GridFS file no body names") for i in ids
                         if i not in named]
        self.report.examined["bodies"] = count
        self.report.examined["files"] = files
        if findings and self.fix:
            self.store_bodies.sweep(self.grace)
        for subject, problem in findings:
            self.found("bodies", subject, problem, fixed=self.fix)
        for batch in _batches(messages.distinct("bodies"), 500):
            present = {d["_id"] for d in bodies.find({"_id": {"$in": batch}}, {"_id": 1})}
            for sha in batch:
                if sha not in present:
                    self.found("bodies", f"body {sha}",
                               "referenced by messages but missing (their mail is damaged)",
                               fixable=False)

    # -- digest ------------------------------------------------------------------------

    def digest(self) -> None:
        boxes = self.coll(schema.MAILBOXES)
        rebuild = []
        ids = set()
        building = 0
        for box in boxes.find({}, {"path": 1, "dg": 1, "uid_next": 1}):
            ids.add(box["_id"])
            subject = f"mailbox {box['_id']} ({box['path']})"
            if box.get("dg") == digest.BUILDING:
                # A server builds it in the background; readers read the messages
                # meanwhile: nothing is wrong.
                building += 1
                continue
            if box.get("dg") == digest.NONE:
                continue  # a small mailbox: none to check (digest.DIGEST_FROM)
            if box.get("dg") != digest.VERSION:
                self.found("digest", subject, "digest not built", fixed=self.fix)
                rebuild.append(box["_id"])
                continue
            differs = self._digest_differs(None, box["_id"], int(box["uid_next"]))
            if differs is not None:
                # (As for the counters: a write between the two reads is no finding,
                # so the difference must show in one snapshot of the mailbox too.)
                differs = self.database.in_transaction(partial(
                    self._digest_differs, mailbox=box["_id"], uid_next=None))
            if differs is not None:
                missing, stale = differs
                self.found("digest", subject,
                           f"digest differs from the messages: {missing} missing, "
                           f"{stale} stale", fixed=self.fix)
                rebuild.append(box["_id"])
        self.report.examined["digests"] = len(ids)
        if building:
            self.report.examined["digests being built"] = building
        orphans = [m for m in self.coll(digest.COLLECTION).distinct("mailbox") if m not in ids]
        for mailbox in orphans:
            self.found("digest", f"mailbox {mailbox}",
                       "digest of a mailbox that no longer exists", fixed=self.fix)
        if self.fix:
            for mailbox in orphans:
                digest.purge(self.database, mailbox)
            if rebuild:
                # backfill rebuilds every mailbox whose digest version is not current
                # (and drops what it had first).
                boxes.update_many({"_id": {"$in": rebuild}}, {"$set": {"dg": -1}})
                digest.backfill(self.database)


    # -- contents ------------------------------------------------------------------------

    def contents(self) -> None:
        kept = self.coll(contents.COLLECTION)
        referred: set[ObjectId] = set()
        for name in (schema.MESSAGES, schema.ARCHIVE):
            for batch in _batches(self.coll(name).find({}, {"cid": 1}), 1000):
                cids = contents.cids(batch)
                referred.update(cids)
                present = {d["_id"] for d in kept.find({"_id": {"$in": cids}}, {"_id": 1})}
                for d in batch:
                    if d.get("cid") is not None and d["cid"] not in present:
                        self.found("contents", f"{name} {d['_id']}",
                                   "its contents are missing (its mail is damaged)",
                                   fixable=False)
        cutoff = now() - self.grace
        unreferred: list[ObjectId] = []
        count = 0
        for batch in _batches(kept.find({}, {"_id": 1}), 1000):
            count += len(batch)
            unreferred += [d["_id"] for d in batch if d["_id"] not in referred
                           and d["_id"].generation_time <= cutoff]
        self.report.examined["contents"] = count
        if unreferred:
            # Asked again: one restored from the archive between the two scans above
            # was in neither.
            again = {d["cid"] for name in (schema.MESSAGES, schema.ARCHIVE)
                     for d in self.coll(name).find({"cid": {"$in": unreferred}}, {"cid": 1})}
            unreferred = [c for c in unreferred if c not in again]
        for cid in unreferred:
            self.found("contents", f"contents {cid}", "referred to by no message",
                       fixed=self.fix)
        if self.fix and unreferred:
            kept.delete_many({"_id": {"$in": unreferred}})


def examine(database: Database, mailboxes: Mailboxes, bodies: Bodies, *,
            fix: bool = False, grace: dt.timedelta = SWEEP_GRACE,
            checks: Iterable[str] = CHECKS) -> DoctorReport:
    """Run the checks (blocking); with ``fix``, repair what they find. Bodies and
    files younger than ``grace`` are left out (deliveries in flight hold them)."""
    doctor = _Doctor(database, mailboxes, bodies, fix, grace)
    for check in checks:
        if check == "quota":
            continue  # counted with the mailbox counters (one scan of the messages)
        getattr(doctor, check)()
    return doctor.report


def _batches(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
