"""The store's own typed values: what the protocols get back from the store.

Ids are 24-hex strings (the protocols never see bson). Everything is frozen attrs
so that a session can keep it in memory and share it between tasks safely.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import attrs

from duck.mime.model import Envelope, IndexedMessage, Part

#: The flags RFC 3501 §2.3.2 defines, in their canonical spelling. ``\Recent`` is
#: not stored: it is session state, handed out by ``claim_recent``.
SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")

#: SPECIAL-USE attributes (RFC 6154) a mailbox may carry.
SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")

FlagMode = Literal["add", "remove", "replace"]

JournalKind = Literal[
    "exists", "expunge", "flags", "mailbox-create", "mailbox-rename", "mailbox-delete",
    # An access control list changed (RFC 4314): readers re-read their rights.
    "acl",
]

#: Fields that ``fetch`` can be asked for (``uid`` always comes back).
FetchField = Literal[
    "flags", "modseq", "internal_date", "size", "envelope", "structure",
    "emailid", "threadid", "savedate", "content", "headers",
]
FETCH_FIELDS: frozenset[str] = frozenset(FetchField.__args__)  # type: ignore[attr-defined]


@attrs.frozen
class Mailbox:
    """A mailbox (folder) and its IMAP state (RFC 3501 §6.3.1, RFC 7162)."""

    id: str
    user_id: str
    path: str
    special_use: str | None
    uid_validity: int
    uid_next: int
    highest_modseq: int
    message_count: int
    unseen_count: int
    size: int
    #: The highest UID a session has taken as \\Recent (RFC 3501 §2.3.2): the
    #: messages above it are \\Recent for the next session that selects.
    recent_mark: int = 0
    #: Access control list (RFC 4314): (identifier, rights) pairs; the owner's
    #: rights are implicit and never listed (duck/store/rights.py).
    acl: tuple[tuple[str, str], ...] = ()
    #: Whether its digest (store/index/digest.py) was built when it was read: only
    #: then do readers answer from it (a small mailbox has none).
    digest: bool = False


@attrs.frozen
class MessageSummary:
    """One line of a selected mailbox's in-memory view."""

    uid: int
    modseq: int
    flags: tuple[str, ...]


@attrs.frozen
class Segment:
    """A run of the stored message bytes at ``offset``.

    Either ``data`` is the bytes themselves (the skeleton), or the run lives in the
    content-addressed body ``sha256`` (GridFS file ``file_id``) of ``length`` bytes.
    """

    offset: int
    length: int
    data: bytes | None = None
    sha256: str | None = None
    file_id: str | None = None


@attrs.frozen
class MessageRecord:
    """A message as FETCH needs it: the fields asked for are filled in (a record
    from the record cache may carry more)."""

    id: str
    mailbox_id: str
    uid: int
    modseq: int | None = None
    flags: tuple[str, ...] | None = None
    internal_date: dt.datetime | None = None
    savedate: dt.datetime | None = None
    size: int | None = None
    envelope: Envelope | None = None
    #: The MIME part tree with byte offsets into the stored message (BODYSTRUCTURE).
    structure: Part | None = None
    emailid: str | None = None
    threadid: str | None = None
    #: The stored bytes as segments (asked for with the ``content`` field).
    segments: tuple[Segment, ...] | None = None
    #: Top-level header fields, (lowercased name, decoded value).
    headers: tuple[tuple[str, str], ...] | None = None
    #: Renderings asked for that the message has (name -> opaque bytes; see
    #: ``Messages.renderers``).
    renderings: dict[str, bytes] | None = None


@attrs.frozen
class JournalEntry:
    """One change of a mailbox, in modseq order (IDLE, QRESYNC, the SSE stream)."""

    mailbox_id: str
    modseq: int
    kind: JournalKind
    uid: int | None = None
    flags: tuple[str, ...] | None = None
    path: str | None = None
    at: dt.datetime | None = None


@attrs.frozen
class DeliveryTarget:
    """Where one copy of an ingested message goes.

    ``prepend`` is header lines (CRLF-terminated) put in front of this copy only:
    LMTP's per-recipient ``Delivered-To``/``Return-Path``.
    """

    user_id: str
    mailbox_path: str = "INBOX"
    flags: tuple[str, ...] = ()
    internal_date: dt.datetime | None = None
    prepend: bytes = b""
    #: (mailbox id, modseq) of a session that has the mailbox selected: the copy is
    #: \\Recent for that session when the mailbox is still at that modseq
    #: (mailboxes.allocate); ``Delivered.recent_from`` then says from which UID.
    claim_recent: tuple[str, int] | None = None
    #: (source, key) of an imported message: its import-ledger record is written in
    #: the same transaction (mail/imports.py); AlreadyExists when it is there.
    ledger: tuple[str, str] | None = None


@attrs.frozen
class Delivered:
    """A copy that was stored (durably) by ``deliver``."""

    user_id: str
    mailbox_id: str
    uid_validity: int
    uid: int
    modseq: int
    size: int
    #: The flags stored (normalized), as the journal has them.
    flags: tuple[str, ...] = ()
    #: With ``DeliveryTarget.claim_recent`` granted: the first UID that is \\Recent
    #: for the claimant (up to and including ``uid``); else None.
    recent_from: int | None = None
    #: What never changes of the stored copy, as a FETCH would read it back (the
    #: store's record cache takes it: a FETCH right after delivery asks nothing).
    record: MessageRecord | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class AppendResult:
    """APPENDUID data (RFC 4315), and the mailbox the message went into; with its
    modseq and flags, a session can apply its own APPEND to its view (the journal
    entry the delivery wrote says the same)."""

    uid_validity: int
    uid: int
    mailbox_id: str = ""
    modseq: int = 0
    flags: tuple[str, ...] = ()
    #: See ``Delivered.recent_from``.
    recent_from: int | None = None


@attrs.frozen
class CopyResult:
    """COPYUID data (RFC 4315): the destination's uidValidity and uid pairs; and the
    destination's id."""

    uid_validity: int
    uids: list[tuple[int, int]]
    mailbox_id: str = ""


@attrs.frozen
class FlagChange:
    """A message whose flags a STORE changed."""

    uid: int
    flags: tuple[str, ...]
    modseq: int


@attrs.frozen
class FlagsSnapshot:
    """A caller's picture of a mailbox's messages, complete up to the mailbox's
    ``modseq``: each message's (flags, modseq) by UID. STORE trusts it instead of
    reading the messages when, in its transaction, the mailbox's modseq shows that
    nothing changed since (an IMAP session's selected view is such a picture)."""

    modseq: int
    messages: dict[int, tuple[tuple[str, ...], int]]
    #: The caller knows the mailbox is at ``modseq`` now, every change of it by any
    #: process had (an IMAP session's complete view, session.py ``view_complete``):
    #: a STORE that changes nothing by the snapshot is answered without a read.
    complete: bool = False


@attrs.frozen
class StoreFlagsResult:
    """What a STORE did: changed messages, and UIDs that failed UNCHANGEDSINCE."""

    changed: list[FlagChange]
    modified: list[int]


@attrs.frozen
class Ingested:
    """A message streamed in and indexed, ready to be delivered (once).

    The bodies it references are held (a reference each) until ``deliver`` or
    ``discard`` hands the hold over or drops it.
    """

    message: IndexedMessage
    segments: tuple[Segment, ...]
    size: int
    sha256: str
    #: Cleared when deliver/discard hands over the hold (an Ingested is used once).
    held: list[bool] = attrs.field(factory=lambda: [True], eq=False, repr=False)
    #: What the parse worker that indexed it made of it: the result of each extra
    #: function, by its import path (mail/ingest.py; the store's renderings).
    made: dict[str, dict[str, bytes]] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def bodies(self) -> list[str]:
        """SHA-256 of every body the segments reference, with repetitions."""
        return [s.sha256 for s in self.segments if s.sha256 is not None]


@attrs.frozen
class ArchivedMessage:
    """A deleted message kept in the archive (mail/archive.py): where it was, with
    the flags a restore gives it back."""

    id: str
    user_id: str
    #: The mailbox it was deleted from (which may be gone) and its path then.
    mailbox_id: str
    path: str
    uid: int
    flags: tuple[str, ...]
    size: int
    internal_date: dt.datetime
    archived: dt.datetime
    subject: str | None
    #: The first From: address, ``mailbox@host``.
    sender: str | None
    emailid: str | None


@attrs.frozen
class Restored:
    """An archived message put back: its archive id and where it is now."""

    archive_id: str
    mailbox_id: str
    path: str
    uid_validity: int
    uid: int


__all__ = [
    "FETCH_FIELDS",
    "SPECIAL_USES",
    "SYSTEM_FLAGS",
    "AppendResult",
    "ArchivedMessage",
    "CopyResult",
    "Delivered",
    "DeliveryTarget",
    "FetchField",
    "FlagChange",
    "FlagMode",
    "Ingested",
    "JournalEntry",
    "JournalKind",
    "Mailbox",
    "MessageRecord",
    "MessageSummary",
    "Restored",
    "Segment",
    "StoreFlagsResult",
]
