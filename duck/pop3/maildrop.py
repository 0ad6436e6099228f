"""The maildrop as one POP3 session sees it: numbered messages and deletion marks.

RFC 1939 §5: messages are numbered from 1 when the session enters the
TRANSACTION state and keep their numbers for the whole session; DELE only marks
(RSET unmarks), and the marked messages are removed in the UPDATE state. A
message removed meanwhile by another client (an IMAP EXPUNGE: duck lets IMAP
work beside POP3) is learnt of when it is read, and from then on counts as
deleted for this session too, whatever RSET says.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import attrs


class NoSuchMessage(Exception):
    """A message number that names nothing this session can use; the text says why."""


@attrs.frozen
class Entry:
    """One message of the maildrop."""

    uid: int
    size: int
    #: RFC 1939 §7 unique-id: 1 to 70 characters of 0x21-0x7E, stable across sessions.
    unique_id: str


class Maildrop:
    """The session's numbered list."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = tuple(entries)
        self._deleted: set[int] = set()
        self._gone: set[int] = set()

    def get(self, number: int) -> Entry:
        """The message ``number`` (from 1), unless absent or deleted."""
        if not 1 <= number <= len(self.entries):
            raise NoSuchMessage(f"no message {number}")
        if number in self._gone:
            raise NoSuchMessage(f"message {number} was deleted by another session")
        if number in self._deleted:
            raise NoSuchMessage(f"message {number} is deleted")
        return self.entries[number - 1]

    def listing(self) -> Iterator[tuple[int, Entry]]:
        """(number, entry) of every message not deleted."""
        for number, entry in enumerate(self.entries, 1):
            if number not in self._deleted and number not in self._gone:
                yield number, entry

    def stat(self) -> tuple[int, int]:
        """(count, total octets) of the messages not deleted (STAT)."""
        count = size = 0
        for _, entry in self.listing():
            count += 1
            size += entry.size
        return count, size

    def delete(self, number: int) -> None:
        """Mark ``number`` deleted (DELE); NoSuchMessage if it cannot be."""
        self.get(number)
        self._deleted.add(number)

    def reset(self) -> None:
        """Unmark every message this session marked (RSET)."""
        self._deleted.clear()

    def gone(self, number: int) -> None:
        """Note that ``number`` was removed by someone else."""
        self._gone.add(number)

    def exists(self, number: int) -> bool:
        """Whether ``number`` names a message neither deleted nor gone."""
        try:
            self.get(number)
        except NoSuchMessage:
            return False
        return True

    def deleted_numbers(self) -> list[int]:
        """Numbers of the messages to remove at QUIT (marked, not gone), ascending."""
        return sorted(n for n in self._deleted if n not in self._gone)
