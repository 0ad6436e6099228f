"""The mailbox digest (duck/store/index/digest.py): kept in step with deliveries, COPY,
EXPUNGE and mailbox deletion; FETCH and SEARCH through it give what the message
documents give; its Bloom filter never loses a match."""

from __future__ import annotations

import itertools
import random
import string
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from store_samples import simple_message
from test_search_oracle import _message, oracle

from duck.mime.model import IndexedMessage
from duck.store import Store, User
from duck.store import query as q
from duck.store.engine import schema
from duck.store.index import casemap, contents, digest, fetch

pytestmark = pytest.mark.store


@pytest.mark.no_database
def test_ascii_folds_cover_every_letter_whose_map_is_an_ascii_letter() -> None:
    # i;unicode-casemap (casemap.py) equates these with an ASCII letter inside a
    # needle; İ (I and a dot) only at its end, which the filter leaves out.
    found: dict[str, str] = {}
    for cp in range(0x80, 0x110000):
        ch = chr(cp)
        mapped = casemap.casemap(ch)
        if len(mapped) == 1 and mapped.isascii() and mapped.isalpha():
            found[ch] = mapped.lower()
    assert found == {"\u0131": "i", "\u017f": "s", "\u212a": "k"}
    assert found.items() <= digest.ASCII_FOLDS.items()
    assert casemap.casemap("\u0130") == "I\u0307"


#: Text with the characters where i;unicode-casemap and ASCII needles meet.
_TEXT = st.lists(st.one_of(
    st.sampled_from(["e", "E", "é", "É", "e\u0301", "\u0131", "İ", "\u017f", "\u212a", "s",
                     "i", "k", "ß", "ẞ", " ", "a", "ệ", "≠", "="]),
    st.characters()), min_size=3, max_size=60).map("".join)


@pytest.mark.no_database
@given(_TEXT, st.data())
def test_the_bloom_filter_never_misses_an_ascii_needle(text: str, data: Any) -> None:
    text = data.draw(st.sampled_from([text, unicodedata.normalize("NFC", text),
                                      unicodedata.normalize("NFD", text)]))
    mapped = casemap.casemap(text)
    start = data.draw(st.integers(0, max(len(mapped) - 3, 0)))
    length = data.draw(st.integers(1, max(len(mapped) - start, 1)))
    needle = mapped[start : start + length]
    needle = data.draw(st.sampled_from([needle, needle.swapcase(), needle.lower()]))
    if not casemap.matches(needle, text):
        return
    positions = digest.needle_positions(needle)
    if positions is None:
        assert not needle.isascii() or digest.SEPARATOR in needle or len(needle) < 4
        return
    have = digest.text_positions([text])
    assert have is not None and set(positions) <= have


def _positions_one_by_one(values: list[str]) -> set[int]:
    """The filter's positions as its definition gives them: each trigram of the
    canonical text hashed on its own through the tables."""
    data = digest.canonical(digest.SEPARATOR.join(values))
    low, high = digest.LOW, digest.HIGH
    return {(high[0][a] ^ high[1][b] ^ high[2][c]) << 8 | (low[0][a] ^ low[1][b] ^ low[2][c])
            for a, b, c in zip(data, data[1:], data[2:], strict=False)}


@pytest.mark.no_database
@given(st.lists(st.text(max_size=300), max_size=4))
def test_a_filter_is_the_trigrams_hashed_one_by_one(values: list[str]) -> None:
    """The whole-text computation (bytes.translate, numpy) is the per-trigram one."""
    expected = _positions_one_by_one(values)
    assert digest.text_positions(values) == expected
    assert digest.text_bloom(values) == digest.bloom_bytes(expected)
    bits = int.from_bytes(digest.text_bloom(values), "little")
    assert {p for p in range(digest.BLOOM_BITS) if bits >> p & 1} == expected


@pytest.mark.no_database
def test_a_filter_of_too_much_text_is_every_bit() -> None:
    values = ["x" * (digest.MAX_BLOOM_TEXT // 2), "y" * (digest.MAX_BLOOM_TEXT // 2 + 1)]
    assert digest.text_bloom(values) == b"\xff" * (digest.BLOOM_BITS // 8)
    assert digest.text_bloom(["ab"]) == bytes(digest.BLOOM_BITS // 8)


@pytest.mark.no_database
def test_trigrams_spread_over_the_whole_filter() -> None:
    # 1,000 distinct trigrams in 2,048 positions: ~790 distinct ones if the hash is
    # uniform; a table left constant (or a high part lost) would give 256 at most.
    letters = string.ascii_lowercase + string.digits
    grams = {a + b + c for a in letters for b in letters for c in letters}
    chosen = sorted(grams)[::47][:1000]
    positions = set().union(*(digest.text_positions([g]) or [] for g in chosen))
    assert 700 <= len(positions) <= 900 and max(positions) >= 1800
    # Values do not join: the last two characters of one and the first of the next
    # make no trigram of the text (only a NUL-spanning one no needle has).
    joined = digest.text_positions(["xyz", "abc"])
    # ("yzab": a needle's last character is not in its trigrams, casemap.py.)
    assert joined is not None and set(digest.needle_positions("yzab") or []) - joined


@pytest.mark.no_database
def test_case_variants_share_positions() -> None:
    assert digest.needle_positions("KeLvIn") == digest.needle_positions("kelvin")
    text = digest.text_positions(["\u212aelvin and \u017ftraße"])
    assert text is not None
    for needle in ("kelvin", "stra", "KELVIN"):
        positions = digest.needle_positions(needle)
        assert positions is not None and set(positions) <= text
    assert digest.needle_positions("ab") is None  # too short to narrow
    assert digest.needle_positions("été") is None  # not ASCII: the engine decides
    assert digest.text_positions(["x" * (digest.MAX_BLOOM_TEXT + 1)]) is None


def _entries(store: Store, mailbox: str) -> dict[int, Any]:
    docs = store.database.collection(digest.COLLECTION).find(
        {"mailbox": schema_id(mailbox), "k": digest.META})
    return {int(k): [v, d["z"][k], d["d"][k]] for d in docs
            for k, v in (d.get("m") or {}).items()}


def schema_id(mailbox_id: str) -> Any:
    from bson import ObjectId
    return ObjectId(mailbox_id)


def _live(store: Store, mailbox: str) -> dict[int, Any]:
    docs = store.database.collection(schema.MESSAGES).find(
        {"mailbox": schema_id(mailbox)}, {"uid": 1, "size": 1, "idate": 1})
    return {d["uid"]: [d["_id"], d["size"], d["idate"]] for d in docs}


def _env(message: IndexedMessage) -> bytes:
    return b"E:" + (message.envelope.subject or b"")


async def test_the_digest_follows_every_write(store: Store, user: User) -> None:
    store.messages.register_renderer("env", _env)
    try:
        for i in range(180):  # three chunks
            await store.messages.append(user.id, "INBOX", simple_message(subject=f"s{i}"),
                                        ["\\Deleted"] if i % 7 == 0 else [])
    finally:
        store.messages.renderers.clear()
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.mailboxes.create(user.id, "Other")
    other = await store.mailboxes.get(user.id, "Other")
    await store.messages.copy(inbox.id, range(60, 180), user.id, "Other")
    await store.messages.move(inbox.id, range(100, 120), user.id, "Other")
    await store.messages.expunge(inbox.id)

    for box in (inbox, other):
        entries = await store.database.run(_entries, store, box.id)
        live = await store.database.run(_live, store, box.id)
        assert entries == live and len(live) > 50
    # The copies' entries (taken from the originals') are what their text makes.
    coll = store.database.collection(digest.COLLECTION)

    def rebuilt() -> tuple[list[Any], list[Any]]:
        query = {"mailbox": schema_id(other.id)}
        before = list(coll.find(query, {"_id": 0}).sort([("c", 1), ("k", 1)]))
        coll.delete_many(query)
        store.database.collection(schema.MAILBOXES).update_one(
            {"_id": schema_id(other.id)}, {"$unset": {"dg": ""}})
        digest.backfill(store.database)
        return before, list(coll.find(query, {"_id": 0}).sort([("c", 1), ("k", 1)]))

    before, after = await store.database.run(rebuilt)
    for b, a in zip(before, after, strict=True):
        for field in ("m", "z", "d", "p", "v", "F"):
            bf, af = b.get(field) or {}, a.get(field) or {}
            assert {k for k in set(bf) | set(af) if bf.get(k) != af.get(k)} == set(), field
    assert before == after and any(d.get("p") for d in after)

    # FETCH of a range through the digest: the same records as from the messages.
    uids = sorted(await store.database.run(_live, store, other.id))
    assert len(uids) >= 128
    via_digest = [r async for batch in store.messages.fetch_batches(
        other.id, uids, ["size", "internal_date"], ["env"]) for r in batch]
    direct = await store.messages.fetch(other.id, uids, ["size", "internal_date"], ["env"])
    assert via_digest == direct
    assert all(r.renderings and r.renderings["env"].startswith(b"E:s") for r in direct)
    # A UID the digest does not have is still fetched (from the message).
    await store.database.run(digest.remove, store.database, schema_id(other.id), [uids[5]])
    again = [r async for batch in store.messages.fetch_batches(
        other.id, uids, ["size", "internal_date"], ["env"]) for r in batch]
    assert sorted(r.uid for r in again) == uids

    await store.mailboxes.delete(user.id, "Other")
    assert await store.database.run(_entries, store, other.id) == {}


async def test_backfill_builds_what_delivery_built(store: Store, user: User) -> None:
    for i in range(70):
        await store.messages.append(user.id, "INBOX", simple_message(subject=f"b{i}"))
    coll = store.database.collection(digest.COLLECTION)
    boxes = store.database.collection(schema.MAILBOXES)

    def strip_and_backfill() -> tuple[list[Any], list[Any], int, int, int]:
        before = list(coll.find({}, {"_id": 0}).sort([("c", 1), ("k", 1)]))
        coll.delete_many({})
        boxes.update_many({}, {"$unset": {"dg": ""}})
        done = digest.backfill(store.database, batch=16)
        after = list(coll.find({}, {"_id": 0}).sort([("c", 1), ("k", 1)]))
        second = digest.backfill(store.database)
        # A digest of an older layout is rebuilt from scratch.
        boxes.update_many({}, {"$set": {"dg": digest.VERSION - 1}})
        mailbox = after[0]["mailbox"]
        coll.insert_one({"mailbox": mailbox, "k": "m", "c": 99, "m": {"6336": "old"}})
        digest.backfill(store.database)
        assert list(coll.find({}, {"_id": 0}).sort([("c", 1), ("k", 1)])) == before
        return before, after, done, second, boxes.count_documents({})

    before, after, done, second, folders = await store.database.run(strip_and_backfill)
    assert after == before and len(after) == 2 * 3  # two chunks: meta, headers, Bloom
    assert done == folders > 1 and second == 0  # every folder once, then nothing


@pytest.mark.parametrize("max_entry", [digest.MAX_ENTRY, 200])
async def test_search_through_the_digest_matches_the_oracle(
    store: Store, user: User, monkeypatch: pytest.MonkeyPatch, max_entry: int
) -> None:
    # A small MAX_ENTRY leaves many messages' headers out of the digest ("unknown":
    # decided from the message documents); then the exact checks also run in windows
    # of a few candidates each.
    monkeypatch.setattr(digest, "MAX_ENTRY", max_entry)
    if max_entry < digest.MAX_ENTRY:
        monkeypatch.setattr(fetch, "SEARCH_WINDOW", 7)
    rnd = random.Random(11)
    for i in range(80):
        await store.messages.append(user.id, "INBOX", _message(rnd, i == 9),
                                    ["\\Seen"] if i % 3 else [])
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.store_flags(inbox.id, range(1, 80, 5), "add", ["\\Deleted"])
    await store.messages.expunge(inbox.id)
    docs = await store.database.run(lambda: contents.load(store.database, list(
        store.database.collection(schema.MESSAGES).find(
            {}, {"uid": 1, "hdr": 1, "text": 1, "kw": 1, "cid": 1})), ("text",)))
    needles = ["meeting", "ALPHA", "a.*b", "(x)", "Bob", "example.org", "zzzqqq", "ΣΟΦΙΑ",
               "москва", "c++", "Blue sky", "", "sky", "ar", "delta bravo"]
    queries: list[q.Query] = []
    for n in needles:
        queries += [q.Body(n), q.Text(n), q.Subject(n), q.Address("from", n),
                    q.Address("cc", n), q.Header("x-tag", n), q.Header("To", n),
                    q.Not(q.Address("to", n)),
                    q.And((q.Subject(n), q.Flag("\\Seen"))),
                    q.Or((q.Body(n), q.Address("bcc", n)))]
    for query in queries:
        expected = sorted(d["uid"] for d in docs if oracle(d, query))
        assert await store.messages.search(inbox.id, query) == expected, query


async def test_flag_words_follow_store_and_expunge(store: Store, user: User) -> None:
    rnd = random.Random(5)
    pool = ["\\Seen", "\\Flagged", "\\Answered", "$Important", "$label.x"]
    for i in range(140):
        await store.messages.append(user.id, "INBOX", simple_message(subject=f"f{i}"),
                                    [f for f in pool if rnd.random() < 0.4])
    inbox = await store.mailboxes.get(user.id, "INBOX")
    for _ in range(12):
        uids = rnd.sample(range(1, 141), rnd.randrange(1, 90))
        mode = rnd.choice(["add", "remove", "replace"])
        await store.messages.store_flags(inbox.id, uids, mode,
                                         [f for f in pool if rnd.random() < 0.5])
    await store.messages.store_flags(inbox.id, range(1, 141, 9), "add", ["\\Deleted"])
    await store.messages.expunge(inbox.id)
    await store.messages.copy(inbox.id, range(1, 141), user.id, "Archive")
    archive = await store.mailboxes.get(user.id, "Archive")
    for box in (inbox, archive):
        docs = await store.database.run(lambda b=box: list(store.database.collection(
            schema.MESSAGES).find({"mailbox": schema_id(b.id)}, {"uid": 1, "kw": 1})))
        assert len(docs) > 100
        for flag in [*pool, "\\Deleted", "$never"]:
            for present in (True, False):
                query: q.Query = q.Flag(flag, present)
                expected = sorted(d["uid"] for d in docs
                                  if (flag.lower() in d["kw"]) == present)
                assert await store.messages.search(box.id, query) == expected, query
        combined = q.Or((q.And((q.Flag("\\Seen"), q.Not(q.Flag("$Important")))),
                         q.Uids(((1, 20),))))
        expected = sorted(d["uid"] for d in docs if d["uid"] <= 20 or (
            "\\seen" in d["kw"] and "$important" not in d["kw"]))
        assert await store.messages.search(box.id, combined) == expected


async def test_scans_split_replies_by_size(store: Store, user: User,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    store.messages.register_renderer("env", _env)
    try:
        for i in range(260):
            await store.messages.append(user.id, "INBOX", simple_message(subject=f"x{i}"),
                                        ["\\Seen"] if i % 2 else [])
    finally:
        store.messages.renderers.clear()
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.store_flags(inbox.id, range(60, 140), "add", ["\\Deleted"])
    await store.messages.expunge(inbox.id)  # chunk 1 (UIDs 64-127) is now empty
    uids = [u for u in range(1, 261) if not 60 <= u < 140]
    cache = store.messages.cache
    cache.max_bytes = 0  # the digest's replies are what is measured here
    cache.clear()
    whole = [r async for b in store.messages.fetch_batches(
        inbox.id, uids, ["size", "internal_date"], ["env"]) for r in b]
    # One chunk a query: four chunks, one of them without a message.
    monkeypatch.setattr(digest, "REPLY_TARGET", 1)
    replies = [len(b) async for b in store.messages.fetch_batches(
        inbox.id, uids, ["size", "internal_date"], ["env"])]
    # UIDs 1-59 (chunk 0 has no UID 0), none of 64-127, 140-191, 192-255, 256-260.
    assert replies == [59, 52, 64, 5]
    split = [r async for b in store.messages.fetch_batches(
        inbox.id, uids, ["size", "internal_date"], ["env"]) for r in b]
    assert split == whole and [r.uid for r in whole] == uids
    assert await store.messages.search(inbox.id, q.Flag("\\Seen", False)) == [
        u for u in uids if u % 2]  # appended i is UID i+1: even i unseen
    assert await store.messages.search(inbox.id, q.Subject("x19")) == [20, *range(191, 201)]


async def test_sizes_and_dates_from_the_digest_match_the_message_indexes(
        store: Store, user: User) -> None:
    import datetime as dt
    rnd = random.Random(9)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for i in range(90):
        when = start + dt.timedelta(hours=rnd.randrange(24 * 40), seconds=rnd.randrange(60))
        sent = (f"Date: {rnd.randrange(1, 28)} Feb 2024 {rnd.randrange(24):02d}:00:00 "
                f"{rnd.choice(['+0000', '-0800', '+1300'])}\r\n" if i % 4 else "")
        data = (f"From: a@example.com\r\nSubject: s{i}\r\n{sent}\r\n"
                + "x" * rnd.randrange(0, 3000) + "\r\n").encode()
        await store.messages.append(user.id, "INBOX", data,
                                    ["\\Seen"] if i % 3 else [], when)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    queries: list[q.Query] = []
    for day in (dt.date(2024, 1, 1), dt.date(2024, 1, 17), dt.date(2024, 2, 9),
                dt.date(2024, 3, 1)):
        for field in ("internal", "sent"):
            queries += [q.Date(field, op, day)  # type: ignore[arg-type]
                        for op in ("before", "on", "since")]
    queries += [q.Size("larger", n) for n in (0, 500, 1500, 2999)]
    queries += [q.Size("smaller", n) for n in (100, 1500, 4000)]
    queries += [q.Age("older", 3600), q.Age("younger", 10**9)]
    queries += [q.And((q.Date("internal", "since", dt.date(2024, 1, 10)),
                       q.Date("internal", "before", dt.date(2024, 1, 20)))),
                q.Not(q.Date("sent", "before", dt.date(2024, 2, 10))),
                q.Or((q.Size("larger", 2000), q.Flag("\\Seen", False))),
                q.And((q.Subject("s1"), q.Size("smaller", 1000)))]
    answered = 0
    for query in queries:
        local = await store.messages.search(inbox.id, query)
        # MODSEQ >= 0 holds for every message and sends the whole query to messages.
        indexed = await store.messages.search(inbox.id, q.And((query, q.ModSeq(0))))
        assert local == indexed, query
        answered += 0 < len(local) < 90
    assert answered > len(queries) // 2


@pytest.mark.no_database
def test_search_windows_cover_every_uid() -> None:
    windows = fetch.search_windows(q.UidSet(frozenset(range(10, 20000, 3))), 25000)
    assert windows[0][0] == 1 and windows[-1][1] == 25000
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(windows))
    assert len(windows) == 2  # 6,664 candidates, 4,000 a window
    assert fetch.search_windows(q.Body("x"), 9000) == [(1, 4000), (4001, 8000), (8001, 9000)]
    assert fetch.search_windows(q.Body("x"), 300) == [(1, 300)]


@pytest.mark.no_database
def test_a_window_keeps_the_candidate_union_as_its_first_stage() -> None:
    union = q.Or((q.UidSet(frozenset({3, 9})), q.And((q.UidSet(frozenset({5})), q.Body("x")))))
    first = q.compile_search(fetch.restrict(union, 1, 4000)).prefilter
    # The candidates, not the window's whole UID range (a scan of every message in it).
    assert first == {"uid": {"$in": [3, 9, 5]}}


async def test_the_view_from_the_digest_equals_the_view_from_the_messages(
        store: Store, user: User) -> None:
    """SELECT's view (uid, modseq, flags) read 64 messages a document from the digest
    is the one the message documents give, through deliveries, STORE (flags with
    their case, keywords, removals), COPY, EXPUNGE; a digest missing entries is
    noticed by the count and the messages are read instead."""
    from duck.store import metrics

    rnd = random.Random(5)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    for i in range(150):
        await store.messages.append(user.id, "INBOX", simple_message(subject=f"v{i}"),
                                    ["\\Seen"] if i % 3 == 0 else [])
    for _ in range(30):
        uids = rnd.sample(range(1, 151), rnd.randrange(1, 20))
        mode = rnd.choice(["add", "remove", "replace"])
        flags = rnd.sample(["\\Flagged", "\\Deleted", "$Work", "NotJunk", "\\Answered"],
                           rnd.randrange(0, 3))
        await store.messages.store_flags(inbox.id, uids, mode, flags)  # type: ignore[arg-type]
    await store.messages.copy(inbox.id, range(10, 40), user.id, "INBOX")
    await store.messages.expunge(inbox.id)

    async def both() -> tuple[list[Any], list[Any], int]:
        box = await store.mailboxes.get(user.id, "INBOX")
        with metrics.command_scope("digest") as scope:
            from_digest = await store.messages.view(box.id, box)
        return from_digest, await store.messages.view(box.id), scope.round_trips

    from_digest, from_messages, trips = await both()
    assert from_digest == from_messages and trips == 1
    assert len(from_messages) > 50 and any("$Work" in m.flags for m in from_messages)
    # An entry lost (as an older process's delivery would leave it): the count
    # disagrees, and the view comes from the messages.
    victim = from_messages[7].uid
    await store.database.run(lambda: store.database.collection(digest.COLLECTION).update_one(
        {"mailbox": fetch.parse_id(inbox.id),
         "k": digest.META, "c": digest.chunk_of(victim)},
        {"$unset": {f"f.{victim}": ""}}))
    from_digest, from_messages, trips = await both()
    assert from_digest == from_messages and victim in [m.uid for m in from_digest]
    assert trips >= 2  # the digest, then the messages (a find and its getMore)
