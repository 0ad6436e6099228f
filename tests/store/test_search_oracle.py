"""SEARCH against a brute-force oracle: every key, many needles, one generated corpus.

The oracle evaluates RFC 3501 §6.4.4 semantics in Python (substring, under RFC
5051's i;unicode-casemap, of the decoded header values / body text the store
keeps) over the very documents the store holds, so a prefilter that loses a
match, a regex that is not literal, or a case-folding gap shows up as a
difference. The corpus mixes
RFC 2047 encoded headers, quoted-printable/base64 bodies, Latin-1 and UTF-8,
HTML parts, messages without some headers, saturated messages (more grams than
the cap) and documents from before the index (no ``g``).
"""

from __future__ import annotations

import base64
import datetime as dt
import quopri
import random
from collections.abc import Callable
from email.header import Header as MimeHeader
from typing import Any

import pytest

from duck.store import Store, User
from duck.store import query as q
from duck.store.engine import schema
from duck.store.index import casemap, contents, textindex

pytestmark = [pytest.mark.store, pytest.mark.usefixtures("trigram_index")]

# Words in several scripts, with accents, regex metacharacters and letters where
# i;unicode-casemap is not case folding (sharp s, final sigma, dotted and dotless
# I, long s, an accent written apart).
WORDS = [
    "alpha", "Bravo", "CHARLIE", "delta", "écho", "Fjörd", "smørrebrød", "Ünïcode",
    "жёлтый", "Москва", "中文", "メール", "✓ok", "naïve", "quarterly", "Résumé",
    "meeting", "invoice", "a.*b", "(x)", "[y]", "50%", "c++", "foo-bar", "x_y",
    "über", "ÉTÉ", "Ωmega", "σίγμα", "ΣΟΦΙΑ", "Straße", "GROẞ", "İstanbul",
    "\u0131i", "\u017fun", "Re\u0301sume\u0301", "한국어",
]
NAMES = ["Alice Ärger", "Bob Brown", "Çelik Öz", "Dora", "Élodie Ünal", "Фёдор"]


def _phrase(rnd: random.Random, n: int) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def _address(rnd: random.Random) -> tuple[str, str]:
    """(header text as sent, decoded display form)."""
    name = rnd.choice(NAMES)
    addr = f"{name.split()[0].lower().encode('ascii', 'ignore').decode() or 'x'}"
    addr += f"{rnd.randrange(100)}@example.{rnd.choice(['com', 'org', 'net'])}"
    if name.isascii():
        return f'"{name}" <{addr}>', f'"{name}" <{addr}>'
    encoded = MimeHeader(name, "utf-8").encode()
    return f"{encoded} <{addr}>", f"{name} <{addr}>"


def _message(rnd: random.Random, long_body: bool) -> bytes:
    subject = _phrase(rnd, rnd.randrange(1, 6))
    subject_line = (MimeHeader(subject, "utf-8").encode()
                    if not subject.isascii() or rnd.random() < 0.3 else subject)
    lines = [f"From: {_address(rnd)[0]}", f"To: {_address(rnd)[0]}"]
    if rnd.random() < 0.5:
        lines.append(f"Cc: {_address(rnd)[0]}, {_address(rnd)[0]}")
    if rnd.random() < 0.2:
        lines.append(f"Bcc: {_address(rnd)[0]}")
    if rnd.random() < 0.8:
        lines.append(f"Subject: {subject_line}")
    if rnd.random() < 0.4:
        lines.append(f"X-Tag: {rnd.choice(['red', 'green', 'Blue sky', 'ΣΟΦΙΑ'])}")
    lines.append("Date: Tue, 8 Feb 1994 16:00:00 +0000")
    lines.append(f"Message-ID: <{rnd.randrange(10**9)}@example.com>")
    words = rnd.randrange(3, 40) if not long_body else 3000
    body = "\n".join(_phrase(rnd, rnd.randrange(1, 12)) for _ in range(words // 6 + 1))
    if long_body:
        body += "\n" + "".join(chr(rnd.randrange(0x4E00, 0x9FFF)) for _ in range(3000))
    kind = rnd.choice(["plain", "qp", "b64", "latin1", "alt"])
    head = "\r\n".join(lines) + "\r\nMIME-Version: 1.0\r\n"
    if kind == "latin1":
        body = body.encode("latin-1", "replace").decode("latin-1")
        encoded = quopri.encodestring(body.encode("latin-1")).decode("ascii")
        part = ("Content-Type: text/plain; charset=iso-8859-1\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded)
    elif kind == "qp":
        encoded = quopri.encodestring(body.encode()).decode("ascii")
        part = ("Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded)
    elif kind == "b64":
        encoded = base64.encodebytes(body.encode()).decode("ascii")
        part = ("Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n" + encoded)
    elif kind == "alt":
        html = "<p>" + _phrase(rnd, 5) + "</p>"
        part = ("Content-Type: multipart/alternative; boundary=zz\r\n\r\n"
                "--zz\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n" + body + "\r\n"
                "--zz\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n"
                "--zz--\r\n")
    else:
        part = "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    return (head + part).replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _has(hay: str, needle: str) -> bool:
    # i;unicode-casemap by its definition (RFC 5051), as Dovecot compares.
    return casemap.matches(needle, hay)


def oracle(doc: dict[str, Any], query: q.Query) -> bool:
    """RFC 3501 §6.4.4 over one stored document, in plain Python (strings compared
    by RFC 5051's i;unicode-casemap)."""
    hdr = [(h["k"], h["v"]) for h in doc["hdr"]]
    match query:
        case q.Header(name=name, value=value):
            return any(k == name.lower() and _has(v, value) for k, v in hdr)
        case q.Address(field=field, value=value):
            return oracle(doc, q.Header(field, value))
        case q.Subject(value=value):
            return oracle(doc, q.Header("subject", value))
        case q.Body(value=value):
            return _has(doc["text"], value)
        case q.Text(value=value):
            return _has(doc["text"], value) or any(_has(v, value) for _, v in hdr)
        case q.Flag(flag=flag, present=present):
            return (flag.lower() in doc["kw"]) == present
        case q.And(items=items):
            return all(oracle(doc, i) for i in items)
        case q.Or(items=items):
            return any(oracle(doc, i) for i in items)
        case q.Not(item=item):
            return not oracle(doc, item)
    raise AssertionError(query)


def _needles(rnd: random.Random, docs: list[dict[str, Any]], count: int) -> list[str]:
    """Substrings of real values (across word boundaries), case-swapped, short, absent,
    decomposed."""
    out: list[str] = ["", "a", "é", "Ж", "zzzqqq", "中", "\u00e9t\u00e9", "σΊΓΜΑ", "ΩMEGA",
                      "RE", "SUME", "\u0301", "\u0131", "ß", "ẞ", "i\u0307", "\u017f", "하"]
    while len(out) < count:
        doc = rnd.choice(docs)
        source = rnd.choice([doc["text"]] + [h["v"] for h in doc["hdr"]])
        if not source:
            continue
        length = rnd.choice([1, 2, 3, 4, 6, 9, 14])
        start = rnd.randrange(max(1, len(source) - length + 1))
        needle = source[start:start + length]
        style = rnd.random()
        if style < 0.3:
            needle = needle.swapcase()
        elif style < 0.45:
            needle = needle.upper()
        elif style < 0.5:
            needle += "#"  # almost certainly absent
        elif style < 0.6:
            # Cut from the value's map (decomposed: maybe between a letter and its
            # accent), as imaptest cuts its SEARCH needles.
            mapped = casemap.casemap(source)
            needle = mapped[start:start + length]
        if needle.strip():
            out.append(needle)
    return out


def _queries(rnd: random.Random, needles: list[str]) -> list[q.Query]:
    makers: list[Callable[[str], q.Query]] = [
        q.Body, q.Text, q.Subject,
        lambda n: q.Address("from", n), lambda n: q.Address("to", n),
        lambda n: q.Address("cc", n), lambda n: q.Address("bcc", n),
        lambda n: q.Header("x-tag", n), lambda n: q.Header("message-id", n),
        lambda n: q.Header("SUBJECT", n),
    ]
    out: list[q.Query] = [make(n) for n in needles for make in makers]
    out += [q.Flag("$todo"), q.Flag("\\Seen", present=False),
            q.Or((q.Flag("$todo"), q.Flag("\\Seen"))), q.And((q.Flag("$todo"),))]
    for _ in range(60):
        a, b = (rnd.choice(makers)(rnd.choice(needles)) for _ in range(2))
        out += [q.And((a, q.Flag("\\Seen"))), q.Or((a, b)), q.Not(a),
                q.And((a, q.Not(b))), q.Or((a, q.Flag("$todo")))]
    return out


async def test_every_key_matches_the_oracle(
    store: Store, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    rnd = random.Random(8)
    day = dt.datetime(2024, 3, 10, tzinfo=dt.UTC)
    for i in range(70):
        if i % 23 == 5:
            # A tiny cap: this message stores SATURATED and must still be found.
            monkeypatch.setattr(textindex, "MAX_GRAMS", 50)
        flags = [f for f in ("\\Seen", "$todo") if rnd.random() < 0.5]
        await store.messages.append(user.id, "INBOX", _message(rnd, i % 31 == 7), flags, day)
        monkeypatch.setattr(textindex, "MAX_GRAMS", 20000)
    mailbox_id = (await store.mailboxes.get(user.id, "INBOX")).id
    messages = store.database.collection(schema.MESSAGES)

    def load() -> list[dict[str, Any]]:
        # Documents from before the index: no g at all.
        messages.update_many({"uid": {"$in": [3, 40]}}, {"$unset": {"g": "", "gv": ""}})
        return contents.load(store.database, list(messages.find(
            {}, {"uid": 1, "hdr": 1, "text": 1, "kw": 1, "g": 1, "cid": 1})), ("text",))

    docs = await store.database.run(load)
    assert sum(d.get("g") == [textindex.SATURATED] for d in docs) >= 3
    assert sum("g" not in d for d in docs) == 2
    # Decoding is real: RFC 2047 display names and non-ASCII bodies are stored decoded.
    assert any("Ärger" in h["v"] for d in docs for h in d["hdr"] if h["k"] == "from")
    assert any("жёлтый" in d["text"] for d in docs)

    needles = _needles(rnd, docs, 120)
    queries = _queries(rnd, needles)
    nonempty = 0
    for query in queries:
        expected = sorted(d["uid"] for d in docs if oracle(d, query))
        got = await store.messages.search(mailbox_id, query)
        assert got == expected, query
        nonempty += bool(expected) and len(expected) < len(docs)
    assert nonempty > len(queries) // 4  # the needles are not all trivial


async def test_backfill_rebuilds_missing_grams(store: Store, user: User) -> None:
    rnd = random.Random(3)
    for _ in range(5):
        await store.messages.append(user.id, "INBOX", _message(rnd, False))
    messages = store.database.collection(schema.MESSAGES)

    def strip_and_backfill() -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
        before = list(messages.find({}, {"g": 1}).sort("uid", 1))
        messages.update_many({}, {"$unset": {"g": "", "gv": ""}})
        count = textindex.backfill_sync(store.database, batch=2)
        return count, before, list(messages.find({}, {"g": 1, "gv": 1}).sort("uid", 1))

    count, before, after = await store.database.run(strip_and_backfill)
    assert count == 5
    assert [d["g"] for d in after] == [d["g"] for d in before]
    assert all(d["gv"] == textindex.VERSION for d in after)


@pytest.mark.no_database
def test_fold_merges_what_regexes_merge() -> None:
    assert textindex.fold("ÉTÉ") == textindex.fold("été")
    assert textindex.fold("\u017f") == textindex.fold("s") == textindex.fold("S")
    assert textindex.fold("\u212a") == textindex.fold("k")  # KELVIN SIGN
    assert textindex.fold("\u03c2") == textindex.fold("\u03c3") == textindex.fold("\u03a3")
    assert textindex.fold("ẞ") == textindex.fold("ß")
    assert textindex.needle_grams("ab") == []
    assert set(textindex.needle_grams("HeLLo")) == set(textindex.needle_grams("hello"))
