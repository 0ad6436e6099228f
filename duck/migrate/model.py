"""What every import source yields: folders of messages, each with a stable key."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from typing import Protocol

import attrs

#: RFC 3501 system flags an import may set (\\Recent is the server's own).
SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
#: A keyword is an IMAP atom (RFC 3501 §9 flag-keyword: atom-char minus "]").
_KEYWORD = re.compile(r'[^\x00-\x20\x7f(){%*"\\\]]+')


@attrs.frozen
class SourceMessage:
    """One message of a source: bytes as they are to be stored, flags, date."""

    #: Stable across runs within its folder: the import ledger's key.
    key: str
    data: bytes
    flags: tuple[str, ...] = ()
    internal_date: dt.datetime | None = None


class Folder(Protocol):
    """A folder of a source (blocking methods: callers use worker threads)."""

    #: The duck mailbox it goes to ("/"-separated).
    path: str
    #: Its name in the import ledger: which source and which folder of it.
    source: str

    def keys(self) -> list[str]:
        """The keys of every message, in the order to import them."""

    def read(self, keys: Sequence[str]) -> Iterator[SourceMessage]:
        """The messages with these keys, in this order (a missing one is skipped)."""


def clean_flags(flags: Sequence[str]) -> tuple[str, ...]:
    """Flags duck can store: system flags spelt as RFC 3501 does, keywords that are
    IMAP atoms; anything else (\\Recent, junk from a broken source) is dropped."""
    canonical = {f.lower(): f for f in SYSTEM_FLAGS}
    out: list[str] = []
    for flag in flags:
        if flag.startswith("\\"):
            if flag.lower() in canonical:
                out.append(canonical[flag.lower()])
        elif _KEYWORD.fullmatch(flag):
            out.append(flag)
    return tuple(dict.fromkeys(out))


def crlf(data: bytes) -> bytes:
    """Bare LF line ends as CRLF (Maildir and mbox files keep LF; IMAP servers,
    Dovecot included, serve CRLF, and that is what an IMAP client has seen)."""
    if b"\n" not in data:
        return data
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)
