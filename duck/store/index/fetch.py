"""The read side of messages: the selected-mailbox view, FETCH, SEARCH.

Each is one query with a projection of only what was asked for (docs/architecture.md,
"Sessions and round trips"); FETCH of a large range and SEARCH's substring, flag,
size and date keys read the mailbox digest first (digest.py), a query per ~16 MB.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import bson
import trio
from bson import ObjectId
from pymongo import UpdateOne

from duck.mime.model import Envelope, Part

from ..engine import schema
from ..engine.convert import envelope_from_bson, part_from_bson
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import InvalidInput
from ..models import FETCH_FIELDS, MessageRecord, MessageSummary
from . import casemap, contents, digest, digestsearch
from .layout import segment_from_bson
from .query import (
    And,
    Body,
    Not,
    Or,
    Query,
    Text,
    Uids,
    UidSet,
    compile_search,
    contains,
    leaves,
    map_leaves,
)

#: FETCH field -> document fields it needs.
_PROJECTION: dict[str, tuple[str, ...]] = {
    "flags": ("flags",),
    "modseq": ("modseq",),
    "internal_date": ("idate",),
    "savedate": ("sdate",),
    "size": ("size",),
    # (Kept in the contents, by ``cid``: contents.py.)
    "envelope": ("env", "cid"),
    "structure": ("root", "cid"),
    "emailid": ("emailid",),
    "threadid": ("threadid",),
    "content": ("segs", "cid"),
    "headers": ("hdr",),
}
#: Names of renderings: they are document field names (``render.<name>``).
RENDERING_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: FETCH fields the digest has (digest.py); with renderings, a FETCH of at least
#: DIGEST_MIN messages asking only for these reads the digest.
DIGEST_FIELDS = frozenset({"size", "internal_date"})
DIGEST_MIN = 128
#: Most message documents in one reply of ``fetch_batches`` (renderings of up to
#: ~16 KB each stay under the engine's 48 MB reply limit).
MESSAGES_BATCH = 2000
#: Most UIDs one fetch call may name (the IMAP layer batches larger ranges).
MAX_FETCH = 100000


def uid_filter(uids: Iterable[int]) -> dict[str, Any]:
    """A filter for a UID set: one range where consecutive, else ``$in``.

    Never an ``$or`` of ranges: the embedded engine answers one with a scan of the
    whole collection (~50 ms at 30k messages against ~1 ms for ``$in``).
    """
    values = sorted(set(uids))
    if len(values) > MAX_FETCH:
        raise InvalidInput("too many UIDs in one request")
    if values and values[-1] - values[0] + 1 == len(values):
        return {"uid": {"$gte": values[0], "$lte": values[-1]}}
    return {"uid": {"$in": values}}


#: The fields of a message document that ``stored_record`` reads.
_IMMUTABLE_KEYS = ("_id", "mailbox", "uid", "idate", "sdate", "size", "env", "root",
                   "emailid", "threadid", "segs", "hdr", "render")


def stored_record(doc: dict[str, Any], envelope: Envelope | None = None,
                  structure: Part | None = None) -> MessageRecord:
    """The record a FETCH of every immutable field would read of ``doc``, a message
    document just written; ``envelope`` and ``structure``: the models its ``env`` and
    ``root`` were made from, taken as they are (they read back equal: a conversion
    back from the document was ~4% of an LMTP delivery's CPU). Its fields read back
    as written: strings, numbers, bytes, ObjectIds, lists and dicts of them, and
    dates the store only ever writes at BSON's precision in UTC (engine/clock.py,
    messages.py ``_internal_date``). (A pass through BSON to be sure was ~10% of an
    APPEND's CPU: it copied the message's inline bytes twice.)"""
    return _record({k: doc[k] for k in _IMMUTABLE_KEYS if k in doc}, envelope, structure)


def _record(doc: dict[str, Any], envelope: Envelope | None = None,
            structure: Part | None = None) -> MessageRecord:
    flags = doc.get("flags")
    segs = doc.get("segs")
    hdr = doc.get("hdr")
    render = doc.get("render")
    return MessageRecord(
        id=str(doc["_id"]),
        mailbox_id=str(doc["mailbox"]),
        uid=int(doc["uid"]),
        modseq=doc.get("modseq"),
        flags=tuple(flags) if flags is not None else None,
        internal_date=doc.get("idate"),
        savedate=doc.get("sdate"),
        size=doc.get("size"),
        envelope=(envelope if envelope is not None
                  else envelope_from_bson(doc["env"]) if "env" in doc else None),
        structure=(structure if structure is not None
                   else part_from_bson(doc["root"]) if "root" in doc else None),
        emailid=doc.get("emailid"),
        threadid=doc.get("threadid"),
        segments=tuple(segment_from_bson(s) for s in segs) if segs is not None else None,
        headers=tuple((h["k"], h["v"]) for h in hdr) if hdr is not None else None,
        renderings={k: bytes(v) for k, v in render.items()} if render else None,
    )


async def view(database: Database, mailbox_id: str, count: int | None = None,
               top: int | None = None) -> list[MessageSummary]:
    """Every message of a mailbox as (uid, modseq, flags), by UID.

    With the mailbox's message ``count`` and highest UID ``top`` as just read, from
    the digest (64 messages a document: a 100k-message mailbox is ~1,600 documents
    instead of 100,000 read whole); when the digest does not hold ``count``
    messages (a change landed between the two reads, or entries are missing) from
    the messages themselves, one query either way.
    """
    mailbox = parse_id(mailbox_id)

    def query() -> list[MessageSummary]:
        if count is not None and top is not None and not digest.pending(database, mailbox):
            found = _view_from_digest(database, mailbox, top)
            if len(found) == count:
                return found
        cursor = database.collection(schema.MESSAGES).find(
            {"mailbox": mailbox}, {"_id": 0, "uid": 1, "modseq": 1, "flags": 1}
        ).sort("uid", 1)
        return [MessageSummary(d["uid"], d["modseq"], tuple(d["flags"])) for d in cursor]

    return await database.run(query)


async def count_between(database: Database, mailbox_id: str, lo: int, hi: int, *,
                        built: bool = True) -> int:
    """How many messages the mailbox has with UIDs ``lo..hi``: the digest's existence
    words, one document per 64 UIDs of the range (STATUS RECENT); ``built``: whether
    the mailbox has one (Mailbox.digest; else its messages are counted)."""
    if hi < lo:
        return 0
    mailbox = parse_id(mailbox_id)

    def count() -> int:
        if not built or digest.pending(database, mailbox):  # ask the messages
            return int(database.collection(schema.MESSAGES).count_documents(
                {"mailbox": mailbox, "uid": {"$gte": lo, "$lte": hi}}))
        total = 0
        for docs in digest.scan(database, mailbox, digest.META, lo, hi, {"L": 1}):
            for doc in docs:
                base = int(doc["c"]) * digest.SPAN
                word = digest.unsigned(int(doc.get("L", 0)))
                for bit in range(max(lo - base, 0), min(hi - base, digest.SPAN - 1) + 1):
                    total += (word >> bit) & 1
        return total

    return await database.run(count)


def _view_from_digest(database: Database, mailbox: ObjectId, top: int
                      ) -> list[MessageSummary]:
    out: list[MessageSummary] = []
    if top < 1:
        return out
    for docs in digest.scan(database, mailbox, digest.META, 1, top, {"f": 1, "q": 1}):
        for doc in docs:
            flags, modseqs = doc.get("f") or {}, doc.get("q") or {}
            for key, value in flags.items():
                modseq = modseqs.get(key)
                if modseq is not None:
                    out.append(MessageSummary(int(key), int(modseq), tuple(value)))
    out.sort(key=lambda m: m.uid)
    return out


def _projection(fields: Iterable[str], renderings: Iterable[str]) -> dict[str, Any]:
    wanted = set(fields)
    unknown = wanted - FETCH_FIELDS
    if unknown:
        raise InvalidInput(f"unknown fetch fields {sorted(unknown)}")
    projection = {"uid": 1, "mailbox": 1}
    for field in wanted:
        projection.update(dict.fromkeys(_PROJECTION[field], 1))
    for name in renderings:
        projection[f"render.{check_rendering_name(name)}"] = 1
        projection["cid"] = 1
    return projection


def check_fields(fields: Iterable[str], renderings: Iterable[str]) -> None:
    """InvalidInput unless every field is a FETCH field and every name a rendering name."""
    _checked(frozenset(fields), frozenset(renderings))


@functools.lru_cache(maxsize=1024)
def _checked(fields: frozenset[str], renderings: frozenset[str]) -> None:
    # (Remembered: a few pairs are asked again and again; a refused one raises
    # each time, as an exception is not remembered.)
    _projection(fields, renderings)


def check_rendering_name(name: str) -> str:
    """``name`` if it may name a rendering (a document field name), else InvalidInput."""
    if not RENDERING_NAME_RE.fullmatch(name):
        raise InvalidInput(f"bad rendering name {name!r}")
    return name


async def fetch(
    database: Database, mailbox_id: str, uids: Iterable[int], fields: Iterable[str],
    renderings: Iterable[str] = (),
) -> list[MessageRecord]:
    """The messages with these UIDs (missing ones skipped), by UID, in one query."""
    mailbox = parse_id(mailbox_id)
    projection = _projection(fields, renderings)
    wanted = sorted(set(uids))
    query = {"mailbox": mailbox, **uid_filter(wanted)}

    def run() -> list[MessageRecord]:
        cursor = database.collection(schema.MESSAGES).find(query, projection).sort("uid", 1)
        # One reply for the whole set where it fits (the server caps a batch at 16 MB).
        # (One more than can match: a full batch would leave the cursor open.)
        docs = list(cursor.batch_size(len(wanted) + 1))
        if "cid" in projection:  # (the contents: one more query)
            contents.load(database, docs, projection)
        return [_record(d) for d in docs]

    return await database.run(run)


async def fetch_batches(
    database: Database, mailbox_id: str, uids: Iterable[int], fields: Iterable[str],
    renderings: Iterable[str] = (),
) -> AsyncIterator[list[MessageRecord]]:
    """``fetch`` as the database's reply batches arrive: one query (a ``find`` plus a
    ``getMore`` per further 16 MB), whatever the number of UIDs.

    A sparse UID set is asked as its covering range when that is at most twice as
    many UIDs (a short filter; the extra documents are dropped here).
    """
    mailbox = parse_id(mailbox_id)
    wanted = sorted(set(uids))
    if not wanted:
        return
    if (len(wanted) >= DIGEST_MIN and DIGEST_FIELDS.issuperset(fields)
            and not digest.pending(database, mailbox)):
        missing: list[int] = []
        async for records in _digest_batches(database, mailbox, wanted, renderings,
                                             missing):
            yield records
        if not missing:
            return
        # Not in the digest: expunged meanwhile, or not digested (backfill race).
        wanted = missing
    projection = _projection(fields, renderings)
    span = wanted[-1] - wanted[0] + 1
    if len(wanted) > 16 and span <= 2 * len(wanted):
        keep: set[int] | None = set(wanted) if span != len(wanted) else None
        query = {"mailbox": mailbox, "uid": {"$gte": wanted[0], "$lte": wanted[-1]}}
        most = span
    else:
        keep = None
        query = {"mailbox": mailbox, **uid_filter(wanted)}
        most = len(wanted)
    # One more than can match: a batch that is exactly full leaves the cursor open
    # (and costs an empty getMore). At most MESSAGES_BATCH a reply: the embedded
    # server does not split replies at 16 MB and refuses one over 48 MB.
    cursor = database.collection(schema.MESSAGES).find_raw_batches(
        query, projection, sort=[("uid", 1)], batch_size=min(most + 1, MESSAGES_BATCH))
    codec = database.collection(schema.MESSAGES).codec_options

    def next_batch() -> list[MessageRecord] | None:
        raw = next(cursor, None)
        if raw is None:
            return None
        docs = [d for d in bson.decode_all(raw, codec) if keep is None or d["uid"] in keep]
        if "cid" in projection:  # (the contents: one more query a batch)
            contents.load(database, docs, projection)
        return [_record(d) for d in docs]

    try:
        while (batch := await database.run(next_batch)) is not None:
            yield batch
    finally:
        if cursor.alive:  # left early: killCursors, in a worker thread like every call
            with trio.CancelScope(shield=True):
                await database.run(cursor.close)


async def _digest_batches(
    database: Database, mailbox: ObjectId, wanted: list[int], renderings: Iterable[str],
    missing: list[int],
) -> AsyncIterator[list[MessageRecord]]:
    """Records (uid, size, internal date, renderings) of ``wanted`` from the digest,
    64 messages a document; UIDs it does not have are appended to ``missing``."""
    names = [check_rendering_name(n) for n in renderings]
    lo, hi = wanted[0], wanted[-1]
    keep = set(wanted) if hi - lo + 1 != len(wanted) else None
    mailbox_id = str(mailbox)
    seen: set[int] = set()
    wanted_here = (lambda uid: lo <= uid <= hi) if keep is None else keep.__contains__

    def entries(doc: dict[str, Any]) -> Iterator[tuple[int, tuple[Any, Any, Any]]]:
        sizes, dates = doc.get("z") or {}, doc.get("d") or {}
        for key, oid in (doc.get("m") or {}).items():
            uid = int(key)
            if wanted_here(uid):
                yield uid, (oid, sizes.get(key), dates.get(key))

    # The part of the first rendering asked for carries the ids, sizes and dates
    # too: a first sync is one query per ~16 MB. Without renderings: the small part.
    part = digest.RENDER + names[0] if names else digest.META
    scans = digest.scan(database, mailbox, part, lo, hi,
                        {"m": 1, "z": 1, "d": 1, "v": 1})

    def next_window() -> list[MessageRecord] | None:
        docs = next(scans, None)
        if docs is None:
            return None
        found: dict[int, dict[str, bytes]] = defaultdict(dict)
        if names:
            others = {n: list(database.collection(digest.COLLECTION).find(
                {"mailbox": mailbox, "k": digest.RENDER + n,
                 "c": {"$in": [int(d["c"]) for d in docs]}}, {"_id": 0, "v": 1}))
                for n in names[1:]}  # the same chunks of the other renderings
            for name, part_docs in [(names[0], docs), *others.items()]:
                for doc in part_docs:
                    for key, value in (doc.get("v") or {}).items():
                        found[int(key)][name] = bytes(value)
        out = [MessageRecord(id=str(oid), mailbox_id=mailbox_id, uid=uid, size=size,
                             internal_date=idate, renderings=found.get(uid) or None)
               for doc in docs for uid, (oid, size, idate) in entries(doc)]
        out.sort(key=lambda r: r.uid)
        return out

    while (batch := await database.run(next_window)) is not None:
        seen.update(r.uid for r in batch)
        if batch:
            yield batch
    missing += [u for u in wanted if u not in seen]


async def save_renderings(
    database: Database, mailbox_id: str, renderings: dict[int, dict[str, bytes]]
) -> int:
    """Store renderings of messages (uid -> name -> bytes) with the messages and in
    the digest (three round trips); how many messages were updated. Not a change of
    the message: no modseq, no journal."""
    mailbox = parse_id(mailbox_id)
    ops = [
        UpdateOne({"mailbox": mailbox, "uid": uid},
                  {"$set": {f"render.{check_rendering_name(k)}": bytes(v)
                            for k, v in values.items()}})
        for uid, values in sorted(renderings.items()) if values
    ]
    if not ops:
        return 0

    def run() -> int:
        messages = database.collection(schema.MESSAGES)
        result = messages.bulk_write(ops, ordered=False)
        # The digest's rendering parts too: FETCH and SORT read those, 64 messages
        # a document, and fall back to the messages for what they lack. Only
        # messages read now get entries (one expunged meanwhile may leave one
        # behind, which readers skip: it is in no view).
        docs = messages.find({"mailbox": mailbox, "uid": {"$in": sorted(renderings)}},
                             {"_id": 1, "uid": 1, "size": 1, "idate": 1})
        parts = digest.rendering_updates(mailbox, docs, renderings)
        if parts:
            database.collection(digest.COLLECTION).bulk_write(parts, ordered=False)
        return int(result.modified_count)

    return await database.run(run)


async def search(database: Database, mailbox_id: str, query: Query) -> list[int]:
    """UIDs of the messages matching ``query``, sorted.

    Substring criteria are first answered or narrowed from the mailbox digest
    (digestsearch.py: a query per ~16 MB of it read; a query the digest answers whole
    ends there). The exact checks left run in windows of SEARCH_WINDOW candidates.
    Then, when the prefilter is the whole criterion (modseq, a UID range) it is one
    ``find`` on its index. Otherwise one aggregate: stage one
    matches the mailbox plus the prefilter (one index's fields only, so an index
    scan), stage two the exact filter on those candidates (query.py). ``find`` is
    preferred where possible: on the embedded Rust engine an aggregate costs
    ~10x more per document it passes along (measured, bench/search_bench.py).
    """
    mailbox = parse_id(mailbox_id)

    def run() -> list[int]:
        resolved = digestsearch.resolve(database, mailbox, query)
        if resolved.universe is not None:
            local = digestsearch.evaluate(resolved.query, resolved.universe)
            if local is not None:
                return sorted(local)
        compiled = compile_search(resolved.query)
        if compiled.covered:  # (no BODY/TEXT: those are never covered)
            return sorted(_matching(database, mailbox, compiled))
        # The exact check reads whole message documents (~0.5 ms each on the
        # embedded engine): a query per window of UIDs keeps each one well inside
        # the socket timeout however many candidates there are.
        top = resolved.top
        if top is None:  # not read by the digest step
            box = database.collection(schema.MAILBOXES).find_one({"_id": mailbox},
                                                                  {"uid_next": 1})
            top = int(box["uid_next"]) - 1 if box else 0
        found: list[int] = []
        for lo, hi in search_windows(resolved.query, top):
            window = restrict(resolved.query, lo, hi) if (lo, hi) != (1, top) else resolved.query
            window = with_contents(database, mailbox, window, lo, hi)
            if resolved.universe is not None:  # (BODY answered whole from contents)
                local = digestsearch.evaluate(window, resolved.universe)
                if local is not None:
                    found += local
                    continue
            found += _matching(database, mailbox, compile_search(window))
        return sorted(set(found))

    return await database.run(run)


#: Most candidate messages (or UIDs, without a candidate set) one SEARCH query checks.
SEARCH_WINDOW = 4000


def _matching(database: Database, mailbox: ObjectId, compiled: Any) -> list[int]:
    first = {"mailbox": mailbox, **compiled.prefilter}
    messages = database.collection(schema.MESSAGES)
    if compiled.covered:
        cursor = messages.find(first, {"_id": 0, "uid": 1})
    else:
        pipeline: list[dict[str, Any]] = [{"$match": first}]
        if compiled.exact:
            pipeline.append({"$match": compiled.exact})
        pipeline.append({"$project": {"_id": 0, "uid": 1}})
        cursor = messages.aggregate(pipeline)
    # Sorted by the caller: a $sort stage or sort() would cost the engine more.
    return [int(d["uid"]) for d in cursor]


def with_contents(database: Database, mailbox: ObjectId, query: Query, lo: int,
                  hi: int) -> Query:
    """``query`` (of UIDs ``lo..hi``) with each BODY/TEXT criterion also matching the
    messages whose text is in their contents document (contents.py), as the UID set
    of those that match, found there (blocking; two queries: the candidates' ``cid``
    and the check). The criterion itself stays for messages stored whole before.

    The candidates are the UID set the digest narrowed a criterion to (an AND of
    both, digestsearch.py) when every BODY/TEXT criterion has one, else the window.
    """
    searched: set[Query] = {n for n in leaves(query) if isinstance(n, Body | Text)}
    if not searched:
        return query
    narrowed = _narrowed(query, searched)
    if narrowed is None:
        where: dict[str, Any] | None = {"mailbox": mailbox, "uid": {"$gte": lo, "$lte": hi}}
    else:
        uids = [u for u in narrowed if lo <= u <= hi]
        where = {"mailbox": mailbox, **uid_filter(uids)} if uids else None
    owners: dict[Any, int] = {}
    whole = False  # (a candidate stored before contents had documents of their own)
    # TEXT's header half is checked here too, on the header values read with the cid.
    texts = any(isinstance(n, Text) for n in searched)
    headers: dict[int, list[str]] = {}
    if where is not None:
        # (``cid`` is checked here, not in the filter: a field outside the index
        # would make the embedded engine scan the collection.)
        projection = {"_id": 0, "uid": 1, "cid": 1, **({"hdr.v": 1} if texts else {})}
        for d in database.collection(schema.MESSAGES).find(where, projection):
            if d.get("cid") is not None:
                owners[d["cid"]] = int(d["uid"])
            else:
                whole = True
            if texts:
                headers[int(d["uid"])] = [h.get("v", "") for h in d.get("hdr", ())]
    found: dict[Query, frozenset[int]] = {}
    for leaf in searched:
        hits: frozenset[int] = frozenset()
        if owners:
            assert isinstance(leaf, Body | Text)
            value = leaf.value
            # An aggregate: its first $match is on the _id index alone (see _matching).
            # Candidates the digest narrowed to mostly match: tested for the
            # common spelling first (query.contains).
            cursor = database.collection(contents.COLLECTION).aggregate([
                {"$match": {"_id": {"$in": list(owners)}}},
                {"$match": contains("text", value, likely=narrowed is not None)},
                {"$project": {"_id": 1}}])
            hits = frozenset(owners[d["_id"]] for d in cursor)
        if isinstance(leaf, Text) and not whole:
            # The same match as the database's $regex (query.py), as
            # digestsearch.py's header checks make it.
            pattern = re.compile(casemap.substring_pattern(leaf.value))
            hits |= {uid for uid, values in headers.items()
                     if any(pattern.search(v) for v in values)}
        found[leaf] = hits

    def also(node: Query) -> Query:
        if node not in found:
            return node
        if not whole:
            # Every candidate's text is in its contents (and TEXT's headers were
            # checked above): the answer is whole, and the query may then be answered
            # without asking the messages again (``search``).
            return UidSet(found[node])
        return Or((node, UidSet(found[node])))

    return map_leaves(query, also)


def _narrowed(query: Query, searched: set[Query]) -> frozenset[int] | None:
    """The UIDs on which the BODY/TEXT criteria of ``query`` decide anything: those of
    the UID sets ANDed above each (outside them the AND is false whatever the
    criterion says); None when one criterion has no such set above it."""
    out: set[int] = set()

    def walk(node: Query, own: frozenset[int] | None) -> bool:
        if node in searched:
            if own is None:
                return False
            out.update(own)
            return True
        if isinstance(node, And):
            for item in node.items:
                if isinstance(item, UidSet):
                    own = item.uids if own is None else own & item.uids
        if isinstance(node, And | Or):
            return all(walk(item, own) for item in node.items)
        if isinstance(node, Not):
            return walk(node.item, own)
        return True

    return frozenset(out) if walk(query, None) else None


def search_windows(query: Query, top: int) -> list[tuple[int, int]]:
    """UID ranges covering 1..top, each holding at most SEARCH_WINDOW members of the
    query's candidate sets (or SEARCH_WINDOW UIDs when it has none)."""
    if top <= 0:
        return [(1, 1)]
    members = sorted(frozenset().union(
        *(n.uids for n in leaves(query) if isinstance(n, UidSet))))
    if not members:
        members = list(range(1, top + 1))
    if len(members) <= SEARCH_WINDOW:
        return [(1, top)]
    starts = [1, *(members[i] for i in range(SEARCH_WINDOW, len(members), SEARCH_WINDOW))]
    return [(lo, (starts[n + 1] - 1) if n + 1 < len(starts) else max(top, members[-1]))
            for n, lo in enumerate(starts)]


def restrict(query: Query, lo: int, hi: int) -> Query:
    """``query`` limited to UIDs lo..hi (its UID sets cut to the window, so that the
    first stage is an index scan of the window's candidates only)."""

    def cut(node: Query) -> Query:
        if isinstance(node, UidSet):
            return UidSet(frozenset(u for u in node.uids if lo <= u <= hi))
        return node

    # The query first: its own prefilter (a UID union under OR) ranks with the window's
    # range, and the first of equals is taken.
    return And((map_leaves(query, cut), Uids(((lo, hi),))))
