"""A Maildir tree in Dovecot's layout (Maildir++), read for ``duck import``.

- The root's ``cur/`` and ``new/`` are INBOX; every ``.Name`` directory beside them
  with a ``cur/`` is a folder, ``.`` separating levels (``.Work.Projects`` is
  ``Work/Projects``), names in IMAP's modified UTF-7 as Dovecot writes them.
- A file's name is ``<unique>:2,<flags>``: ``D`` \\Draft, ``F`` \\Flagged, ``R``
  \\Answered, ``S`` \\Seen, ``T`` \\Deleted, ``P`` (passed: resent or forwarded) the
  keyword ``$Forwarded``, and ``a``-``z`` the keywords at lines 0-25 of that folder's
  ``dovecot-keywords`` file. Mail in ``new/`` has no flags yet.
- INTERNALDATE is the file's modification time, which Dovecot sets to the received
  date when it saves a message (and reads back as the received date); a file with
  no usable time falls back to the seconds that start its unique name.
- The import key is the unique name (the part before ``:2,``), which stays put
  when a client changes flags; the order is that of ``dovecot-uidlist`` when the
  folder has one (the old UIDs' order), else the unique names' (delivery time).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from duck.imap.grammar.mutf7 import decode_mailbox_name

from .model import SourceMessage, clean_flags, crlf

#: Maildir flag letters (the "info" after ``:2,``) and the IMAP flags they stand for.
FLAG_LETTERS = {"D": "\\Draft", "F": "\\Flagged", "P": "$Forwarded", "R": "\\Answered",
                "S": "\\Seen", "T": "\\Deleted"}
_UIDLIST_LINE = re.compile(r"^(\d+)\b.*?:(\S+)\s*$")


class MaildirFolder:
    """One Maildir (``cur/``, ``new/``) of the tree."""

    def __init__(self, directory: Path, path: str, source: str) -> None:
        self.directory = directory
        self.path = path
        self.source = source
        self._files: dict[str, Path] = {}
        self._keywords = _keywords(directory / "dovecot-keywords")

    def keys(self) -> list[str]:
        """Unique names of every message, oldest first."""
        self._files = {}
        for sub in ("cur", "new"):
            folder = self.directory / sub
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                if entry.is_file() and not entry.name.startswith("."):
                    self._files[unique_name(entry.name)] = Path(entry.path)
        order = _uidlist_order(self.directory / "dovecot-uidlist")
        return sorted(self._files, key=lambda k: (order.get(k, len(order)), k))

    def read(self, keys: Sequence[str]) -> Iterator[SourceMessage]:
        """The messages with these keys (a file gone meanwhile is skipped)."""
        if not self._files:
            self.keys()
        for key in keys:
            file = self._files.get(key)
            if file is None:
                continue
            try:
                data = file.read_bytes()
                mtime = file.stat().st_mtime
            except FileNotFoundError:
                continue  # moved by a client (new/ -> cur/, a flag change): next run
            flags = self.flags_of(file.name, in_new=file.parent.name == "new")
            yield SourceMessage(key, crlf(data), flags, _date(mtime, key))

    def flags_of(self, name: str, *, in_new: bool = False) -> tuple[str, ...]:
        """The IMAP flags a file name carries."""
        if in_new or ":2," not in name:
            return ()
        letters = name.rsplit(":2,", 1)[1]
        flags = []
        for letter in letters:
            if letter in FLAG_LETTERS:
                flags.append(FLAG_LETTERS[letter])
            elif "a" <= letter <= "z":
                keyword = self._keywords.get(ord(letter) - ord("a"))
                if keyword is not None:
                    flags.append(keyword)
        return clean_flags(flags)


def unique_name(file_name: str) -> str:
    """A Maildir file's unique name: its name without the ``:2,`` info."""
    return file_name.split(":", 1)[0]


def _keywords(path: Path) -> dict[int, str]:
    """Dovecot's ``dovecot-keywords``: lines of "<index> <keyword>"."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    out: dict[int, str] = {}
    for line in text.splitlines():
        index, _, keyword = line.strip().partition(" ")
        if index.isdigit() and keyword:
            out[int(index)] = keyword
    return out


def _uidlist_order(path: Path) -> dict[str, int]:
    """Unique name -> old UID from ``dovecot-uidlist`` (its first line is a header)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[1:]
    except FileNotFoundError:
        return {}
    order: dict[str, int] = {}
    for line in lines:
        match = _UIDLIST_LINE.match(line)
        if match:
            order[unique_name(match.group(2))] = int(match.group(1))
    return order


def _date(mtime: float, key: str) -> dt.datetime:
    if mtime > 0:
        return dt.datetime.fromtimestamp(int(mtime), dt.UTC)
    head = key.split(".", 1)[0]
    return dt.datetime.fromtimestamp(int(head) if head.isdigit() else 0, dt.UTC)


def _folder_name(part: str) -> str:
    """One level of a Maildir++ folder name (modified UTF-7; raw UTF-8 accepted)."""
    try:
        return decode_mailbox_name(part.encode("utf-8", "surrogateescape"))
    except (ValueError, UnicodeError):
        return part


def folders(root: Path) -> list[MaildirFolder]:
    """The folders of a Maildir++ tree, INBOX first, then by name."""
    root = Path(root).resolve()
    if not (root / "cur").is_dir():
        raise ValueError(f"{root}: not a Maildir (no cur/)")
    base = f"maildir:{root}"
    found = [MaildirFolder(root, "INBOX", f"{base}:INBOX")]
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not (entry.is_dir() and entry.name.startswith(".") and entry.name not in (".", "..")):
            continue
        if not (Path(entry.path) / "cur").is_dir():
            continue
        path = "/".join(_folder_name(p) for p in entry.name[1:].split("."))
        if path.upper() == "INBOX":
            continue
        found.append(MaildirFolder(Path(entry.path), path, f"{base}:{entry.name}"))
    return found
