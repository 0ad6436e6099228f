"""Backup: a deployment or one user written out as a versioned directory, while duck runs.

The format (docs/admin.md, "Backups and restore"), version 1::

    manifest.json              written last: a directory without it is incomplete
    collections/<name>.jsonl   one document per line, MongoDB Extended JSON (canonical)
    bodies/<sha[:2]>/<sha256>  the bytes of every stored large body, named by hash

Documents are copied as stored, so UIDs, UIDVALIDITY, modseqs, flags, internal dates,
digests and journal entries come back exactly; bodies are content-addressed, so
their bytes are checked against their names on restore (restore.py).

What "consistent" means: each mailbox is copied as one state. Its document is read,
then its messages, digest and journal, then its document again; when the modseq
or the next UID moved in between (mail arrived, flags changed, an expunge) the
mailbox is read again. Every write to a mailbox's messages raises its modseq in
the same transaction, so an equal modseq before and after means no write landed in
between. A mailbox that changes during three such reads (mail arriving faster than
it is read) is read in one read-only transaction with snapshot read concern, which
isolates it on MongoDB and on the embedded engine alike. Mailboxes are copied one
after another, not at one instant; nothing in duck ties one mailbox's state to
another's except reference counts of bodies and a user's storage used, and restore
recomputes both from the messages it writes.
(Not every mailbox in a transaction: the embedded engine's snapshot sessions
outside transactions do not isolate reads, and a transaction must end within
MongoDB's transaction lifetime, 60 s by default, which a large mailbox outlasts;
a failed transaction is followed by more optimistic reads.)

A document belongs to a user when its ``user`` field names them; the
messages, digest and journal belong to a mailbox by their ``mailbox`` field. Bodies
and their GridFS files are written as files, those of any document with stored
segments (messages, archived messages); POP3 leases are not copied (they
expire). A collection added later is copied by the same rules without change here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import gridfs
import gridfs.errors
import pymongo.errors
from bson import ObjectId, json_util
from pymongo.read_concern import ReadConcern

from .engine import schema
from .engine.database import Database
from .errors import InvalidInput, NotFound, StoreError
from .index import contents, digest
from .mail import leases

log = logging.getLogger(__name__)

FORMAT = "duck-backup"
VERSION = 1
MANIFEST = "manifest.json"
#: Collections whose documents belong to a mailbox (its ``mailbox`` field) and are
#: copied together with the mailbox document, as one state.
MAILBOX_KEYED = (schema.MESSAGES, digest.COLLECTION, schema.JOURNAL)
#: Collections never copied as documents: bodies are written as files, leases expire.
NOT_COPIED = frozenset({
    schema.BODIES, f"{schema.ATTACHMENTS}.files", f"{schema.ATTACHMENTS}.chunks",
    leases.COLLECTION, contents.COLLECTION,
})
#: Reads of one mailbox before the backup gives up on it (it never stood still).
MAX_ATTEMPTS = 20
#: Optimistic reads (no transaction) of a mailbox before a snapshot transaction.
OPTIMISTIC = 3
JSON_OPTIONS = json_util.CANONICAL_JSON_OPTIONS


@attrs.define
class BackupReport:
    """What a backup wrote."""

    users: int = 0
    mailboxes: int = 0
    messages: int = 0
    bodies: int = 0
    body_bytes: int = 0
    rereads: int = 0


class MailboxBusy(StoreError):
    """A mailbox changed during every one of MAX_ATTEMPTS reads."""


def encode(doc: dict[str, Any]) -> bytes:
    """One document as a line of the format."""
    return json_util.dumps(doc, json_options=JSON_OPTIONS).encode("utf-8") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """A line of the format as a document."""
    doc: dict[str, Any] = json_util.loads(line, json_options=JSON_OPTIONS)
    return doc


def body_path(root: Path, sha: str) -> Path:
    """Where the body with this SHA-256 is kept in a backup."""
    return root / "bodies" / sha[:2] / sha


class _Output:
    """The backup directory being written: one open file per collection."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "collections").mkdir(parents=True, exist_ok=True)
        (root / "bodies").mkdir(exist_ok=True)
        self._files: dict[str, IO[bytes]] = {}
        self.counts: dict[str, int] = {}
        self.bodies: set[str] = set()
        self.body_bytes = 0

    def file(self, name: str) -> IO[bytes]:
        if name not in self._files:
            self._files[name] = open(self.root / "collections" / f"{name}.jsonl", "wb")  # noqa: SIM115
            self.counts.setdefault(name, 0)
        return self._files[name]

    def write(self, name: str, doc: dict[str, Any]) -> None:
        self.file(name).write(encode(doc))
        self.counts[name] += 1

    def append(self, name: str, spool: IO[bytes], count: int) -> None:
        spool.seek(0)
        target = self.file(name)
        while chunk := spool.read(1 << 20):
            target.write(chunk)
        self.counts[name] += count

    def close(self) -> None:
        for f in self._files.values():
            f.flush()
            os.fsync(f.fileno())
            f.close()
        self._files.clear()


def _collections(database: Database) -> list[str]:
    names = database.db.list_collection_names()
    return sorted(n for n in names if not n.startswith("system.") and n not in NOT_COPIED)


def dump(database: Database, root: Path, username: str | None = None,
         progress: Callable[[int], None] | None = None, *,
         optimistic: int = OPTIMISTIC) -> BackupReport:
    """Write a backup of the deployment, or of one user, into the directory ``root``
    (blocking; created, and it must be empty). NotFound for an unknown user.
    ``optimistic``: reads of a mailbox before it is read in a snapshot transaction."""
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise InvalidInput(f"{root} is not empty")
    users = database.collection(schema.USERS)
    if username is None:
        user_docs: list[dict[str, Any]] = list(users.find({}).sort("_id", 1))
    else:
        found = users.find_one({"username": username})
        if found is None:
            raise NotFound(f"no such user: {username}")
        user_docs = [found]
    out = _Output(root)
    report = BackupReport(users=len(user_docs))
    ids = [u["_id"] for u in user_docs]
    try:
        boxes = database.collection(schema.MAILBOXES)
        where: dict[str, Any] = {} if username is None else {"user": {"$in": ids}}
        box_ids = [d["_id"] for d in boxes.find(where, {"_id": 1}).sort("_id", 1)]
        for box in box_ids:
            copied = _mailbox(database, out, box, report, optimistic)
            if copied is not None and progress is not None:
                progress(copied)
        # Everything outside the mailboxes (all of it for a deployment, the user's own
        # documents for one user), after them: a message expunged meanwhile is then
        # in the archive if it is no longer in its mailbox.
        for name in _collections(database):
            if name in MAILBOX_KEYED or name in (schema.USERS, schema.MAILBOXES):
                continue
            cursor = database.collection(name).find(where)
            while docs := list(itertools.islice(cursor, 500)):
                # (An archived message purged meanwhile goes, its contents with it.)
                gone = {id(d) for d in _contents_back(database, docs)} \
                    if name == schema.ARCHIVE else set()
                for doc in docs:
                    if id(doc) not in gone and _outside_bodies(database, out, name, doc):
                        out.write(name, doc)
        # Users last: a user's storage_used as read now covers every message copied.
        for doc in user_docs:
            fresh = users.find_one({"_id": doc["_id"]})
            out.write(schema.USERS, fresh if fresh is not None else doc)
    finally:
        out.close()
    report.messages = out.counts.get(schema.MESSAGES, 0)
    report.bodies, report.body_bytes = len(out.bodies), out.body_bytes
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "database": database.db.name,
        "scope": "deployment" if username is None else "user",
        "user": username,
        "collections": dict(sorted(out.counts.items())),
        "bodies": report.bodies,
        "body_bytes": report.body_bytes,
    }
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.replace(root / MANIFEST)
    return report


def _outside_bodies(database: Database, out: _Output, name: str,
                    doc: dict[str, Any]) -> bool:
    """Write the bodies a document outside the mailboxes references (an archived
    message); False when it went meanwhile (purged, and its bodies with it)."""
    if not doc.get("segs"):
        return True
    try:
        _write_bodies(database, out, doc)
    except _Changed:
        if database.collection(name).count_documents({"_id": doc["_id"]}, limit=1):
            raise StoreError(f"{name} {doc['_id']}: a body it references is missing") \
                from None
        return False
    return True


def _contents_back(database: Database, docs: list[dict[str, Any]], session: Any = None
                   ) -> list[dict[str, Any]]:
    """Put the contents of message (or archive) documents back in them, without
    their ``cid``, as a backup holds them (the layout before index/contents.py, which
    every reader and restore take). Returns those whose contents are gone (removed
    since they were read)."""
    contents.load(database, docs, contents.FIELDS, session)
    gone = []
    for d in docs:
        if d.pop("cid", None) is not None and "segs" not in d:
            gone.append(d)
    return gone


class _Changed(Exception):
    """The mailbox moved while it was read (a body vanished): read it again."""


def _mailbox(database: Database, out: _Output, box: ObjectId,
             report: BackupReport, optimistic: int = OPTIMISTIC) -> int | None:
    """Copy one mailbox as one state (see the module docstring); the number of
    messages copied, None when the mailbox was deleted meanwhile."""
    for attempt in range(MAX_ATTEMPTS):
        spools: dict[str, IO[bytes]] = {
            name: tempfile.TemporaryFile() for name in MAILBOX_KEYED}  # noqa: SIM115
        try:
            try:
                if attempt < optimistic or not database.transactions:
                    state = _read_optimistic(database, out, box, spools)
                else:
                    state = _read_snapshot(database, out, box, spools)
            except _Changed:
                report.rereads += 1
                continue
            if state is None:
                return None
            doc, counts = state
            for name in MAILBOX_KEYED:
                out.append(name, spools[name], counts[name])
            out.write(schema.MAILBOXES, doc)
            report.mailboxes += 1
            return counts[schema.MESSAGES]
        finally:
            for spool in spools.values():
                spool.close()
    raise MailboxBusy(f"mailbox {box} changed during {MAX_ATTEMPTS} reads")


_State = tuple[dict[str, Any], dict[str, int]]


def _read_documents(database: Database, out: _Output, box: ObjectId,
                    spools: dict[str, IO[bytes]], session: Any = None) -> dict[str, int]:
    counts = dict.fromkeys(MAILBOX_KEYED, 0)
    for name in MAILBOX_KEYED:
        cursor = database.collection(name).find({"mailbox": box}, session=session)
        while docs := list(itertools.islice(cursor, 500)):
            if name == schema.MESSAGES and _contents_back(database, docs, session):
                raise _Changed  # (contents gone: expunged meanwhile)
            for doc in docs:
                spools[name].write(encode(doc))
                counts[name] += 1
                if name == schema.MESSAGES:
                    _write_bodies(database, out, doc)
    return counts


def _read_optimistic(database: Database, out: _Output, box: ObjectId,
                     spools: dict[str, IO[bytes]]) -> _State | None:
    """The mailbox document before and after its documents: _Changed when its
    modseq or next UID moved in between."""
    boxes = database.collection(schema.MAILBOXES)
    before = boxes.find_one({"_id": box})
    if before is None:
        return None
    counts = _read_documents(database, out, box, spools)
    after = boxes.find_one({"_id": box})
    if after is None:
        return None
    if (after["modseq"], after["uid_next"]) != (before["modseq"], before["uid_next"]):
        raise _Changed
    return after, counts


def _read_snapshot(database: Database, out: _Output, box: ObjectId,
                   spools: dict[str, IO[bytes]]) -> _State | None:
    """All of it in one read-only transaction (snapshot isolation): for a mailbox
    written to faster than it can be read. _Changed when the transaction fails
    (too long, a conflict): the caller goes on trying."""
    try:
        with database.client.start_session() as session, session.start_transaction(
                read_concern=ReadConcern("snapshot")):
            doc = database.collection(schema.MAILBOXES).find_one({"_id": box},
                                                                 session=session)
            if doc is None:
                return None
            counts = _read_documents(database, out, box, spools, session)
            return doc, counts
    except pymongo.errors.PyMongoError as exc:
        log.info("snapshot read of mailbox %s failed (%s); reading it again", box, exc)
        for spool in spools.values():
            spool.seek(0)
            spool.truncate()
        raise _Changed from exc


def _write_bodies(database: Database, out: _Output, doc: dict[str, Any]) -> None:
    """Write the bodies a message references that the backup does not have yet."""
    bucket = gridfs.GridFSBucket(database.db, bucket_name=schema.ATTACHMENTS)
    for seg in doc.get("segs", ()):
        sha = seg.get("h")
        if sha is None or sha in out.bodies:
            continue
        path = body_path(out.root, sha)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        hasher = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as f, bucket.open_download_stream(seg["f"]) as stream:
                while chunk := stream.read(1 << 20):
                    hasher.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
        except gridfs.errors.NoFile as exc:
            tmp.unlink(missing_ok=True)
            raise _Changed from exc  # freed after an expunge we have not seen yet
        if hasher.hexdigest() != sha:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"stored body {sha} does not match its hash")
        tmp.replace(path)
        out.bodies.add(sha)
        out.body_bytes += size


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of a backup directory (InvalidInput when it is not a complete
    backup of a version this duck reads)."""
    path = Path(root) / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInput(f"{root}: no {MANIFEST} (not a backup, or an incomplete one)") \
            from exc
    except ValueError as exc:
        raise InvalidInput(f"{path}: not JSON: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise InvalidInput(f"{path}: not a duck backup")
    if manifest.get("version") != VERSION:
        raise InvalidInput(f"{path}: backup format version {manifest.get('version')!r}; "
                           f"this duck reads version {VERSION}")
    return manifest


def documents(root: Path, name: str) -> Iterator[dict[str, Any]]:
    """The documents of one collection of a backup, in file order."""
    path = Path(root) / "collections" / f"{name}.jsonl"
    if not path.exists():
        return
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield decode(line)
