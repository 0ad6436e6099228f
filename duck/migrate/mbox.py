"""An mbox file read for ``duck import``.

- A message starts at a ``From `` line at the start of the file or after an empty
  line (the From_ line is not part of the message; the empty line before the next
  one is the separator, not the message's).
- ``>From`` quoting is undone as the variant says: mboxrd (the default) removes one
  ``>`` from every line that is ``>``s then ``From ``; mboxo removes it from
  ``>From `` only (mboxo cannot tell an escaped line from a quoted one; mboxrd can).
- INTERNALDATE is the From_ line's date (asctime form, taken as UTC, which is how
  mail delivery agents write it), else the Date: header, else now.
- Flags come from the headers mail readers write (mutt, Thunderbird, Dovecot's
  mbox driver): ``Status:`` R \\Seen (O, "old", is not a flag); ``X-Status:`` A
  \\Answered, F \\Flagged, T \\Draft, D \\Deleted; ``X-Keywords:`` keywords, separated
  by spaces or commas. The headers stay in the message as they are: duck stores
  bytes as given, and the flags are duck's from then on.
- The import key is the message's position and the SHA-256 of its bytes, so mail
  appended to the file later is new, and an edited file does not skip a message
  that changed.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from .model import SourceMessage, clean_flags, crlf

_FROM_DATE = re.compile(
    rb"^From \S*\s+(?:\w{3} )?(\w{3}) +(\d{1,2}) (\d{1,2}):(\d\d)(?::(\d\d))? (?:\S+ )?(\d{4})")
_MONTHS = {m: i for i, m in enumerate(
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
     b"Nov", b"Dec"], start=1)}
_STATUS = {"R": "\\Seen"}
_X_STATUS = {"A": "\\Answered", "F": "\\Flagged", "T": "\\Draft", "D": "\\Deleted"}
_RD_QUOTED = re.compile(rb"^>+From ")


class MboxFolder:
    """An mbox file as one folder."""

    def __init__(self, file: Path, path: str, variant: str = "mboxrd") -> None:
        if variant not in ("mboxrd", "mboxo"):
            raise ValueError(f"unknown mbox variant {variant!r}")
        self.file = Path(file).resolve()
        self.path = path
        self.variant = variant
        self.source = f"mbox:{self.file}"
        self._messages: dict[str, SourceMessage] | None = None

    def _scan(self) -> dict[str, SourceMessage]:
        if self._messages is None:
            self._messages = {}
            for n, (from_line, lines) in enumerate(split(self.file.read_bytes())):
                message = self.message(n, from_line, lines)
                self._messages[message.key] = message
        return self._messages

    def keys(self) -> list[str]:
        """Keys of the messages, in file order."""
        return list(self._scan())

    def read(self, keys: Sequence[str]) -> Iterator[SourceMessage]:
        """The messages with these keys."""
        messages = self._scan()
        for key in keys:
            if key in messages:
                yield messages[key]

    def message(self, n: int, from_line: bytes, lines: list[bytes]) -> SourceMessage:
        """Message ``n`` of the file from its From_ line and its (quoted) lines."""
        body = b"".join(self._unquote(line) for line in lines)
        data = crlf(body)
        key = f"{n}:{hashlib.sha256(data).hexdigest()}"
        return SourceMessage(key, data, flags_of(data), from_date(from_line) or _header_date(data))

    def _unquote(self, line: bytes) -> bytes:
        if self.variant == "mboxrd":
            return line[1:] if _RD_QUOTED.match(line) else line
        return line[1:] if line.startswith(b">From ") else line


def split(data: bytes) -> Iterator[tuple[bytes, list[bytes]]]:
    """(From_ line, the message's lines with their line ends) of each message."""
    lines = data.splitlines(keepends=True)
    from_line: bytes | None = None
    current: list[bytes] = []
    previous_blank = True
    for line in lines:
        if line.startswith(b"From ") and previous_blank:
            if from_line is not None:
                yield from_line, _drop_separator(current)
            from_line, current = line, []
            previous_blank = False
            continue
        previous_blank = line in (b"\n", b"\r\n")
        if from_line is not None:
            current.append(line)
    if from_line is not None:
        yield from_line, _drop_separator(current)


def _drop_separator(lines: list[bytes]) -> list[bytes]:
    if lines and lines[-1] in (b"\n", b"\r\n"):
        return lines[:-1]
    return lines


def from_date(line: bytes) -> dt.datetime | None:
    """The date of a From_ line (``From sender Thu Nov 30 12:00:00 2023``), as UTC."""
    match = _FROM_DATE.match(line)
    if not match:
        return None
    month = _MONTHS.get(match.group(1))
    if month is None:
        return None
    try:
        return dt.datetime(int(match.group(6)), month, int(match.group(2)),
                           int(match.group(3)), int(match.group(4)),
                           int(match.group(5) or 0), tzinfo=dt.UTC)
    except ValueError:
        return None


def _headers(data: bytes) -> dict[str, str]:
    """The message's header fields (first of each name, unfolded), lower-case names."""
    end = data.find(b"\r\n\r\n")
    head = data if end < 0 else data[:end]
    fields: dict[str, str] = {}
    name = ""
    for line in head.decode("utf-8", "replace").split("\r\n"):
        if line[:1] in (" ", "\t") and name:
            fields[name] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            name = ""
            continue
        name = key.strip().lower()
        if name in fields:
            name = ""  # keep the first
            continue
        fields[name] = value.strip()
    return fields


def flags_of(data: bytes) -> tuple[str, ...]:
    """Flags from Status:, X-Status: and X-Keywords: (see the module docstring)."""
    fields = _headers(data)
    flags = [_STATUS[c] for c in fields.get("status", "") if c in _STATUS]
    flags += [_X_STATUS[c] for c in fields.get("x-status", "") if c in _X_STATUS]
    flags += [k for k in re.split(r"[\s,]+", fields.get("x-keywords", "")) if k]
    return clean_flags(flags)


def _header_date(data: bytes) -> dt.datetime | None:
    value = _headers(data).get("date")
    if not value:
        return None
    try:
        date = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return date if date.tzinfo is not None else date.replace(tzinfo=dt.UTC)
