"""Restore: a backup directory (backup.py) written back into a database.

A deployment backup goes into a database with no users (or, forced, into one
emptied first); a user's backup goes into any deployment where neither the user
name, nor its id, nor any of its addresses exists (or, forced, replaces that user).

Order follows the bodies' rule (engine/bodies.py: a reference is added before the
message that holds it is inserted): bodies first, each with as many references as
restored messages name it (or those added to a body the deployment already has),
then every collection, the user documents last, with ``storage_used`` recounted
from the messages restored. Message documents (and archived ones) name their
bodies' GridFS files; those names are rewritten to the files of this deployment.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
from bson import ObjectId

from .backup import MAILBOX_KEYED, body_path, documents, read_manifest
from .engine import schema
from .engine.bodies import Bodies
from .engine.database import Database
from .errors import AlreadyExists, InvalidInput
from .index import contents

log = logging.getLogger(__name__)

#: Documents per insert_many.
BATCH = 200


@attrs.define
class RestoreReport:
    """What a restore wrote."""

    users: int = 0
    mailboxes: int = 0
    messages: int = 0
    bodies: int = 0


def load(database: Database, root: Path, *, force: bool = False,
         progress: Callable[[int], None] | None = None,
         delete_user: Callable[[ObjectId], None] | None = None) -> RestoreReport:
    """Restore the backup in ``root`` (blocking). AlreadyExists when the target
    holds what would be overwritten and ``force`` is not set; InvalidInput for a
    damaged backup. ``delete_user``: how a forced user restore deletes the user it
    replaces (the store's own deletion, which releases the bodies' references)."""
    root = Path(root)
    manifest = read_manifest(root)
    users = list(documents(root, schema.USERS))
    if manifest["scope"] == "deployment":
        _clear_deployment(database, force)
    else:
        _clear_user(database, root, users, force, delete_user)
    refs, counted = _references(root, manifest["collections"])
    mapping = _bodies(database, root, refs)
    report = RestoreReport(users=len(users), bodies=len(mapping))
    names = sorted(manifest["collections"])
    used: Counter[Any] = Counter()
    for name in names:
        if name == schema.USERS:
            continue
        docs: Iterable[dict[str, Any]] = _rewritten(documents(root, name), mapping)
        if name == schema.MESSAGES:
            # (Archived messages stay whole: one stored before contents had documents
            # of their own has no SEARCH text, which its restore makes again.)
            docs = _contents_apart(database, _messages(docs, used, progress))
        n = _insert(database, name, docs)
        if name == schema.MAILBOXES:
            report.mailboxes = n
        elif name == schema.MESSAGES:
            report.messages = n
    if report.messages != counted:
        raise InvalidInput(f"backup holds {counted} messages, restored {report.messages}")
    for doc in users:
        doc["storage_used"] = int(used.get(doc["_id"], 0))
    _insert(database, schema.USERS, users)
    log.info("restored %d users, %d mailboxes, %d messages, %d bodies", report.users,
             report.mailboxes, report.messages, report.bodies)
    return report


def _clear_deployment(database: Database, force: bool) -> None:
    names = [n for n in database.db.list_collection_names() if not n.startswith("system.")]
    if not force:
        users = database.collection(schema.USERS).count_documents({}, limit=1)
        boxes = database.collection(schema.MAILBOXES).count_documents({}, limit=1)
        if users or boxes:
            raise AlreadyExists(
                f"database {database.db.name!r} has users; restore a deployment only into "
                "an empty one (or --force to replace everything in it)")
        return
    for name in names:
        database.db.drop_collection(name)
    schema.ensure_indexes(database.db)


def _clear_user(database: Database, root: Path, users: list[dict[str, Any]],
                force: bool, delete_user: Callable[[ObjectId], None] | None) -> None:
    if len(users) != 1:
        raise InvalidInput("a user backup holds exactly one user")
    user = users[0]
    coll = database.collection(schema.USERS)
    clash = coll.find_one({"$or": [{"_id": user["_id"]}, {"username": user["username"]}]})
    addresses = [d["address"] for d in documents(root, schema.ADDRESSES)]
    taken = [d["address"] for d in database.collection(schema.ADDRESSES).find(
        {"address": {"$in": addresses}, "user": {"$ne": user["_id"]}})]
    if (clash is not None or taken) and not force:
        what = f"user {user['username']} exists" if clash is not None else \
            f"addresses already in use: {', '.join(sorted(taken))}"
        raise AlreadyExists(f"{what} (--force replaces the user)")
    if clash is not None:
        if delete_user is None:
            raise AlreadyExists(f"user {user['username']} exists")
        delete_user(clash["_id"])
    taken = [d["address"] for d in database.collection(schema.ADDRESSES).find(
        {"address": {"$in": addresses}, "user": {"$ne": user["_id"]}})]
    if taken:  # held by another user, whom --force does not touch
        raise AlreadyExists(f"addresses already in use: {', '.join(sorted(taken))}")
    # Left-overs of an interrupted restore of this same user (same ids): its own
    # documents go; body references they held stay (a leak sweep repairs, never a loss).
    boxes = [d["_id"] for d in documents(root, schema.MAILBOXES)]
    for name in database.db.list_collection_names():
        if name in MAILBOX_KEYED:
            database.collection(name).delete_many({"mailbox": {"$in": boxes}})
        elif not name.startswith("system.") and name != schema.BODIES:
            database.collection(name).delete_many({"user": user["_id"]})


def _references(root: Path, names: Iterable[str]) -> tuple[Counter[str], int]:
    """References per body hash (one per document naming it: messages, archived
    messages), and the message count."""
    refs: Counter[str] = Counter()
    n = 0
    for name in names:
        for doc in documents(root, name):
            n += name == schema.MESSAGES
            refs.update(set(doc.get("bodies", ())))
    return refs, n


def _bodies(database: Database, root: Path, refs: Counter[str]) -> dict[str, ObjectId]:
    """Make every referenced body exist here with its references; sha -> its file."""
    bodies = Bodies(database)
    coll = database.collection(schema.BODIES)
    mapping: dict[str, ObjectId] = {}
    for sha, count in sorted(refs.items()):
        existing = coll.find_one_and_update({"_id": sha}, {"$inc": {"refs": count}})
        if existing is not None:
            mapping[sha] = existing["file"]
            continue
        path = body_path(root, sha)
        if not path.exists():
            raise InvalidInput(f"backup lacks body {sha}")
        upload = bodies.upload(0)
        hasher = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                hasher.update(chunk)
                upload.write(chunk)
        if hasher.hexdigest() != sha:
            upload.abort()
            raise InvalidInput(f"body {sha} in the backup is damaged")
        _, file_id = upload.finish()  # holds one reference
        if count > 1:
            coll.update_one({"_id": sha}, {"$inc": {"refs": count - 1}})
        mapping[sha] = file_id
    return mapping


def _rewritten(docs: Iterable[dict[str, Any]], mapping: dict[str, ObjectId]
               ) -> Iterable[dict[str, Any]]:
    """Documents with their segments naming this deployment's GridFS files."""
    for doc in docs:
        for seg in doc.get("segs", ()):
            if "h" in seg:
                seg["f"] = mapping[seg["h"]]
        yield doc


def _messages(docs: Iterable[dict[str, Any]], used: Counter[Any],
              progress: Callable[[int], None] | None) -> Iterable[dict[str, Any]]:
    for doc in docs:
        used[doc["user"]] += int(doc.get("size", 0))
        if progress is not None:
            progress(1)
        yield doc


def _contents_apart(database: Database, docs: Iterable[dict[str, Any]]
                    ) -> Iterable[dict[str, Any]]:
    """Message documents as stored now: a backup holds them whole, and their bytes
    and text go to their own contents documents (index/contents.py), inserted as the
    documents are read, before the last of them."""
    kept: list[dict[str, Any]] = []
    coll = database.collection(contents.COLLECTION)
    for doc in docs:
        if "segs" in doc and doc.get("cid") is None:
            doc, content = contents.split(doc)
            kept.append(content)
            if len(kept) >= BATCH:
                coll.insert_many(kept, ordered=True)
                kept = []
        yield doc
    if kept:
        coll.insert_many(kept, ordered=True)


def _insert(database: Database, name: str, docs: Iterable[dict[str, Any]]) -> int:
    coll = database.collection(name)
    batch: list[dict[str, Any]] = []
    n = 0
    for doc in docs:
        batch.append(doc)
        if len(batch) >= BATCH:
            coll.insert_many(batch, ordered=True)
            n += len(batch)
            batch = []
    if batch:
        coll.insert_many(batch, ordered=True)
        n += len(batch)
    return n
