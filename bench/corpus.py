"""A deterministic, realistic generated mail corpus for the benchmark.

Seeded ``random.Random`` only (no Hypothesis): the same seed and count give the same
bytes on every machine, so figures from different runs are comparable.

The mix (by count): plain text 1-10 KB in varied charsets and transfer encodings;
text+HTML alternatives; messages with one or two base64 attachments (10-400 KB);
a few large ones (1 MB to several MB, so their bodies go to GridFS); a few forwarded
messages (message/rfc822). About a third are replies in threads (In-Reply-To,
References, "Re:" subjects). Headers vary: encoded-word names and subjects,
Cc, List-Id, Received chains, X-Mailer.

Search *needles* are planted at known rates so that SEARCH scenarios have
selective and unselective criteria: see ``NEEDLES``.
"""

from __future__ import annotations

import base64
import datetime as dt
import quopri
import random
from collections.abc import Iterator, Sequence
from email.header import Header

import attrs

#: Words planted at known rates: (where, word, fraction of messages).
NEEDLES = {
    "subject": ("quarterly", 0.05),  # in the Subject
    "from": ("zephyr", 0.02),  # in the From address
    "body": ("quokka", 0.01),  # in the text body only
    "header": ("bench-list", 0.10),  # List-Id value
}

WORDS = [
    "mail", "store", "server", "message", "thread", "folder", "meeting", "report", "budget",
    "project", "review", "draft", "schedule", "release", "update", "invoice", "travel", "lunch",
    "notes", "agenda", "design", "query", "index", "cluster", "replica", "backup", "restore",
    "network", "latency", "throughput", "memory", "figure", "tomorrow", "yesterday", "please",
    "thanks", "regards", "attached", "below", "above", "again", "soon"
]
LATIN_WORDS = [
    "café", "naïve", "déjà", "façade", "Grüße", "Straße", "über", "crème", "señor", "año",
    "coöperate"
]
CYRILLIC_WORDS = ["привет", "отчёт", "встреча", "проект", "письмо", "сервер", "почта", "завтра"]
FIRST = [
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
    "Mallory", "Niaj", "Olivia", "Peggy"
]
LAST = [
    "Smith", "Jones", "Müller", "Dubois", "Rossi", "Novak", "Ivanov", "García", "Kowalski",
    "Larsen"
]
DOMAINS = ["example.com", "example.org", "mail.example.net", "corp.example"]
#: (charset, Content-Transfer-Encoding, extra words in the body)
CHARSETS = [
    ("us-ascii", "7bit", ()),
    ("utf-8", "8bit", LATIN_WORDS + CYRILLIC_WORDS),
    ("utf-8", "quoted-printable", LATIN_WORDS),
    ("utf-8", "base64", CYRILLIC_WORDS),
    ("iso-8859-1", "quoted-printable", LATIN_WORDS),
    ("windows-1252", "8bit", LATIN_WORDS),
    ("koi8-r", "base64", CYRILLIC_WORDS),
]
ATTACHMENT_TYPES = [
    ("application/pdf", "report.pdf"),
    ("image/png", "photo.png"),
    ("application/zip", "archive.zip"),
    ("application/octet-stream", "data.bin"),
]
START = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
SPAN_DAYS = 730


@attrs.frozen
class Message:
    """One generated message and how it is to be delivered."""

    data: bytes
    kind: str
    flags: tuple[str, ...]
    internal_date: dt.datetime


@attrs.define
class _State:
    rng: random.Random
    threads: list[tuple[str, str, str]] = attrs.Factory(list)  # (msgid, refs, subject)


def _person(rng: random.Random, force_needle: bool = False) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = f"{first}.{last}".lower().encode("ascii", "ignore").decode()
    if force_needle:
        local = f"{local}.{NEEDLES['from'][0]}"
    return f"{first} {last}", f"{local}@{rng.choice(DOMAINS)}"


def _address(rng: random.Random, force_needle: bool = False) -> str:
    name, addr = _person(rng, force_needle)
    if name.isascii():
        return f'"{name}" <{addr}>'
    return f"{Header(name, 'utf-8').encode()} <{addr}>"


def _words(rng: random.Random, count: int, extra: Sequence[str] = ()) -> str:
    pool = [*WORDS, *extra]
    return " ".join(rng.choice(pool) for _ in range(count))


def _paragraphs(rng: random.Random, size: int, extra: Sequence[str],
                needle: bool) -> str:
    lines: list[str] = []
    total = 0
    while total < size:
        line = _words(rng, rng.randint(6, 12), extra)
        lines.append(line)
        total += len(line) + 2
    if needle:
        lines.insert(rng.randrange(len(lines) + 1), f"we saw a {NEEDLES['body'][0]} today")
    return "\r\n".join(lines) + "\r\n"


def _encode_text(text: str, charset: str, cte: str) -> bytes:
    raw = text.encode(charset, "replace") if charset != "us-ascii" else text.encode(
        "ascii", "replace")
    if cte == "base64":
        b = base64.encodebytes(raw).replace(b"\n", b"\r\n")
        return b
    if cte == "quoted-printable":
        return quopri.encodestring(raw.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    return raw


def _text_part(rng: random.Random, size: int, needle: bool, subtype: str = "plain") -> bytes:
    charset, cte, extra = rng.choice(CHARSETS)
    text = _paragraphs(rng, size, extra, needle)
    if subtype == "html":
        text = "<html><body>\r\n" + "".join(
            f"<p>{line}</p>\r\n" for line in text.split("\r\n") if line) + "</body></html>\r\n"
    head = (f"Content-Type: text/{subtype}; charset={charset}\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode()
    return head + _encode_text(text, charset, cte)


def _attachment(rng: random.Random, size: int) -> bytes:
    ctype, name = rng.choice(ATTACHMENT_TYPES)
    # Random bytes: every attachment distinct, so GridFS dedup does not flatter us.
    body = base64.encodebytes(rng.randbytes(size)).replace(b"\n", b"\r\n")
    return (f"Content-Type: {ctype}; name=\"{name}\"\r\n"
            f"Content-Disposition: attachment; filename=\"{name}\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode() + body


def _multipart(rng: random.Random, subtype: str, parts: list[bytes]) -> bytes:
    boundary = f"=_bench_{rng.getrandbits(64):016x}"
    out = [f"Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\r\n\r\n"
           "This is a multi-part message in MIME format.\r\n".encode()]
    for part in parts:
        out.append(f"--{boundary}\r\n".encode() + part + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def _headers(state: _State, index: int, date: dt.datetime, kind: str) -> tuple[bytes, str]:
    rng = state.rng
    msgid = f"<{index}.{rng.getrandbits(40):x}@bench.example>"
    lines = [
        f"Received: from mx{rng.randint(1, 9)}.example.net by mail.example.com; "
        f"{date.strftime('%a, %d %b %Y %H:%M:%S +0000')}"
        for _ in range(rng.randint(1, 3))
    ]
    from_needle = rng.random() < NEEDLES["from"][1]
    lines.append(f"From: {_address(rng, from_needle)}")
    lines.append("To: " + ", ".join(_address(rng) for _ in range(rng.randint(1, 3))))
    if rng.random() < 0.3:
        lines.append("Cc: " + _address(rng))
    if state.threads and rng.random() < 0.33:
        parent, refs, subject = rng.choice(state.threads)
        subject = subject if subject.startswith("Re: ") else f"Re: {subject}"
        refs = f"{refs} {parent}".strip()[-900:]
        lines.append(f"In-Reply-To: {parent}")
        lines.append(f"References: {refs}")
    else:
        subject = _words(rng, rng.randint(2, 6)).capitalize()
        if rng.random() < NEEDLES["subject"][1]:
            subject += f" {NEEDLES['subject'][0]} figures"
        refs = ""
    state.threads.append((msgid, refs, subject))
    if len(state.threads) > 200:
        state.threads.pop(0)
    if rng.random() < 0.15:
        encoded = str(Header(subject + " " + rng.choice(LATIN_WORDS), "utf-8").encode())
        lines.append(f"Subject: {encoded}")
    else:
        lines.append(f"Subject: {subject}")
    lines.append(f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S +0000')}")
    lines.append(f"Message-ID: {msgid}")
    if rng.random() < NEEDLES["header"][1]:
        lines.append(f"List-Id: Bench discussion <{NEEDLES['header'][0]}.example.com>")
    if rng.random() < 0.5:
        lines.append(f"X-Mailer: BenchMailer {rng.randint(1, 9)}.{rng.randint(0, 9)}")
    lines.append("MIME-Version: 1.0")
    return ("\r\n".join(lines) + "\r\n").encode(), kind


def _kind(rng: random.Random, max_large: int) -> str:
    roll = rng.random()
    if roll < 0.55:
        return "plain"
    if roll < 0.80:
        return "alternative"
    if roll < 0.95:
        return "attachment"
    if roll < 0.97 or max_large <= 0:
        return "forward"
    return "large"


def _body(state: _State, kind: str, max_large: int) -> bytes:
    rng = state.rng
    needle = rng.random() < NEEDLES["body"][1]
    if kind == "plain":
        return _text_part(rng, rng.randint(500, 10_000), needle)
    if kind == "alternative":
        size = rng.randint(1_000, 12_000)
        return _multipart(rng, "alternative", [
            _text_part(rng, size, needle), _text_part(rng, size, needle, "html")])
    if kind == "attachment":
        parts = [_text_part(rng, rng.randint(300, 3_000), needle)]
        parts += [_attachment(rng, rng.randint(10_000, 300_000))
                  for _ in range(rng.randint(1, 2))]
        return _multipart(rng, "mixed", parts)
    if kind == "large":
        return _multipart(rng, "mixed", [
            _text_part(rng, 800, needle),
            _attachment(rng, rng.randint(max_large // 3, max_large)),
        ])
    inner_head, _ = _headers(state, -1, START, "plain")
    inner = inner_head + _text_part(rng, rng.randint(500, 4_000), needle)
    return _multipart(rng, "mixed", [
        _text_part(rng, 400, False),
        b"Content-Type: message/rfc822\r\n\r\n" + inner,
    ])


def _flags(rng: random.Random) -> tuple[str, ...]:
    flags: list[str] = []
    if rng.random() < 0.7:
        flags.append("\\Seen")
    if rng.random() < 0.05:
        flags.append("\\Flagged")
    if rng.random() < 0.1:
        flags.append("\\Answered")
    if rng.random() < 0.03:
        flags.append("$Important")
    return tuple(flags)


def generate(count: int, *, seed: int = 8, max_large: int = 4 * 1024 * 1024) -> Iterator[Message]:
    """``count`` messages, deterministic for a given seed, oldest first.

    ``max_large`` caps the raw size of the attachment of "large" messages (the quick
    mode lowers it); 0 leaves large messages out.
    """
    state = _State(random.Random(seed))
    rng = state.rng
    step = SPAN_DAYS * 86400 / max(count, 1)
    for i in range(count):
        date = (START + dt.timedelta(seconds=i * step + rng.uniform(0, step))).replace(
            microsecond=0)
        kind = _kind(rng, max_large)
        head, _ = _headers(state, i, date, kind)
        body = _body(state, kind, max_large)
        # The body starts with its own Content-Type header: it completes the header.
        yield Message(data=head + body, kind=kind, flags=_flags(rng), internal_date=date)
