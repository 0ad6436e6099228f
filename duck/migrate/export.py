"""``duck export``: a user's mailboxes written out as mbox files or a Maildir tree.

- Maildir (Dovecot's layout, which ``duck import`` reads back): INBOX at the root,
  other mailboxes as ``.A.B`` (levels in modified UTF-7); one file per message in
  ``cur/``, bytes exactly as stored, named ``<date>.U<uidvalidity>_<uid>.duck:2,<flags>``
  with the flag letters of maildir.py and ``a``-``z`` for the first 26 keywords of the
  folder's ``dovecot-keywords`` (further keywords are left out, with a warning); the
  file's modification time is the INTERNALDATE. Names are stable, so exporting
  into the same tree again writes only what is new.
- mbox (mboxrd): one file per mailbox under the target directory (``A/B.mbox``
  for ``A/B``); each message after a From_ line with its sender and INTERNALDATE in
  UTC, line ends as LF, every line of ``>``s then ``From `` quoted with one more
  ``>``; its flags in ``Status:``/``X-Status:``/``X-Keywords:`` at the end of the
  header (fields of those names already there are replaced), which ``duck import``
  and mail readers take back.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

from duck.imap.grammar.mutf7 import encode_mailbox_name
from duck.store import Mailbox, MessageRecord, Store

from .maildir import FLAG_LETTERS
from .progress import Reporter

log = logging.getLogger(__name__)

#: Messages fetched per round trip.
BATCH = 100
_LETTERS = {flag: letter for letter, flag in FLAG_LETTERS.items()}
_QUOTE = re.compile(rb"^(>*From )", re.MULTILINE)
_STATUS_FIELDS = re.compile(rb"^(?:status|x-status|x-keywords):.*\n(?:[ \t].*\n)*",
                            re.IGNORECASE | re.MULTILINE)


async def messages(store: Store, box: Mailbox
                   ) -> AsyncIterator[tuple[MessageRecord, bytes]]:
    """Every message of the mailbox with its bytes, by UID."""
    view = await store.messages.view(box.id)
    uids = [m.uid for m in view]
    for i in range(0, len(uids), BATCH):
        records = await store.messages.fetch(
            box.id, uids[i:i + BATCH], ["flags", "internal_date", "content", "envelope"])
        for record in records:
            yield record, await store.messages.read(record)


async def to_maildir(store: Store, user_id: str, root: Path, reporter: Reporter) -> int:
    """Write the user's mailboxes as a Maildir++ tree; messages written."""
    boxes = await store.mailboxes.list(user_id)
    reporter.start(sum(b.message_count for b in boxes))
    written = 0
    for box in boxes:
        directory = root if box.path == "INBOX" else root / ("." + ".".join(
            encode_mailbox_name(level).decode("ascii") for level in box.path.split("/")))
        for sub in ("cur", "new", "tmp"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        keywords = _read_keywords(directory / "dovecot-keywords")
        have = {name.split(":", 1)[0] for name in os.listdir(directory / "cur")}
        async for record, data in messages(store, box):
            reporter.advance()
            date = record.internal_date or dt.datetime.now(dt.UTC)
            stamp = int(date.timestamp())
            unique = f"{stamp}.U{box.uid_validity}_{record.uid}.duck"
            if unique in have:
                continue
            name = f"{unique}:2,{_letters(record.flags or (), keywords, box.path)}"
            tmp = directory / "tmp" / unique
            tmp.write_bytes(data)
            os.utime(tmp, (stamp, stamp))
            tmp.replace(directory / "cur" / name)
            written += 1
        if keywords:
            (directory / "dovecot-keywords").write_text(
                "".join(f"{i} {k}\n" for i, k in enumerate(keywords)), encoding="utf-8")
    return written


def _read_keywords(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [line.partition(" ")[2] for line in lines if line.partition(" ")[2]]


def _letters(flags: tuple[str, ...], keywords: list[str], path: str) -> str:
    letters = []
    for flag in flags:
        if flag in _LETTERS:
            letters.append(_LETTERS[flag])
        elif not flag.startswith("\\"):
            if flag not in keywords and len(keywords) < 26:
                keywords.append(flag)
            if flag in keywords:
                letters.append(chr(ord("a") + keywords.index(flag)))
            else:
                log.warning("%s: keyword %s left out (Maildir has 26 letters)", path, flag)
    return "".join(sorted(set(letters)))


async def to_mbox(store: Store, user_id: str, root: Path, reporter: Reporter) -> int:
    """Write each of the user's mailboxes as an mboxrd file; messages written."""
    boxes = await store.mailboxes.list(user_id)
    reporter.start(sum(b.message_count for b in boxes))
    written = 0
    for box in boxes:
        target = root.joinpath(*box.path.split("/")).with_name(
            box.path.split("/")[-1] + ".mbox")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            async for record, data in messages(store, box):
                out.write(mbox_entry(record, data))
                written += 1
                reporter.advance()
    return written


def mbox_entry(record: MessageRecord, data: bytes) -> bytes:
    """One message as it goes into an mboxrd file (From_ line to separator)."""
    date = (record.internal_date or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    sender = b"MAILER-DAEMON"
    env = record.envelope
    if env is not None and env.from_ and env.from_[0].mailbox and env.from_[0].host:
        sender = env.from_[0].mailbox + b"@" + env.from_[0].host
    text = data.replace(b"\r\n", b"\n")
    end = text.find(b"\n\n")
    head, body = (text, b"") if end < 0 else (text[:end + 1], text[end + 1:])
    head = _STATUS_FIELDS.sub(b"", head) + _status_fields(record.flags or ())
    text = _QUOTE.sub(rb">\1", head + body)
    if not text.endswith(b"\n"):
        text += b"\n"
    from_line = b"From " + sender.replace(b" ", b"_") + b" " + \
        date.strftime("%a %b %d %H:%M:%S %Y").encode() + b"\n"
    return from_line + text + b"\n"


def _status_fields(flags: tuple[str, ...]) -> bytes:
    status = "R" if "\\Seen" in flags else ""
    marks = {"\\Answered": "A", "\\Flagged": "F", "\\Draft": "T", "\\Deleted": "D"}
    x_status = "".join(mark for flag, mark in marks.items() if flag in flags)
    keywords = [f for f in flags if not f.startswith("\\")]
    out = f"Status: {status}O\n"
    if x_status:
        out += f"X-Status: {x_status}\n"
    if keywords:
        out += f"X-Keywords: {' '.join(keywords)}\n"
    return out.encode()
