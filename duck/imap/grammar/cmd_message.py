"""Message commands of the selected state: FETCH (CONDSTORE/QRESYNC modifiers,
RFC 7162), STORE (UNCHANGEDSINCE), COPY, MOVE (RFC 6851), EXPUNGE and UID EXPUNGE
(RFC 4315)."""

from __future__ import annotations

import enum
import re

import attrs

from .cmd_base import Command, to_flags, to_mailbox, to_tuple
from .encode import Encoder
from .fetch_items import MACROS, FetchItem, encode_fetch_att, parse_fetch_att
from .lexer import Cursor
from .sequence import SequenceSet

_MACRO_RE = re.compile(rb"(?i)(?:ALL|FAST|FULL)(?= |$)")
_CACHE_SIZE = 256
_CACHE_KEY_MAX = 2048
_ITEMS_CACHE: dict[tuple[bytes, int], tuple[tuple[FetchItem, ...], int | None, bool]] = {}


def _check_items(instance: object, attribute: object, value: tuple[FetchItem, ...]) -> None:
    if not value:
        raise ValueError("FETCH needs at least one item")


@attrs.frozen
class Fetch(Command):
    """``[UID] FETCH sequence-set items [(CHANGEDSINCE n [VANISHED])]``.

    The macros ALL, FAST and FULL are expanded into their items at parse time
    (RFC 3501 §6.4.5 defines them as exact equivalents), so ``items`` is always a
    list of :data:`FetchItem`.
    """

    VERB = "FETCH"
    UID_FORM = True

    sequence_set: SequenceSet
    items: tuple[FetchItem, ...] = attrs.field(converter=to_tuple, validator=_check_items)
    changedsince: int | None = None
    vanished: bool = False
    uid: bool = False

    def __attrs_post_init__(self) -> None:
        # RFC 7162 §3.2.6: VANISHED only with UID FETCH and CHANGEDSINCE.
        if self.vanished and (not self.uid or self.changedsince is None):
            raise ValueError("VANISHED needs UID FETCH and CHANGEDSINCE")
        if self.changedsince is not None and not 0 <= self.changedsince <= 2**63 - 1:
            raise ValueError("CHANGEDSINCE out of range")

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Fetch:
        c.sp()
        seqset = c.sequence_set()
        c.sp()
        # Clients repeat the same item list on every FETCH; the parsed items are
        # immutable, so they are memoised by the exact bytes (literals excluded).
        key = (c.buf[c.pos :], c.max_depth)
        cached = _ITEMS_CACHE.get(key)
        if cached is not None:
            c.pos = len(c.buf)
            try:
                return cls(tag, seqset, cached[0], cached[1], cached[2], uid)
            except ValueError as exc:
                raise c.error(str(exc)) from None
        fetch = cls._parse_items(c, tag, seqset, uid)
        if c.pos == len(c.buf) and len(key[0]) <= _CACHE_KEY_MAX and b"{" not in key[0]:
            if len(_ITEMS_CACHE) >= _CACHE_SIZE:
                _ITEMS_CACHE.clear()
            _ITEMS_CACHE[key] = (fetch.items, fetch.changedsince, fetch.vanished)
        return fetch

    @classmethod
    def _parse_items(cls, c: Cursor, tag: str, seqset: SequenceSet, uid: bool) -> Fetch:
        items: tuple[FetchItem, ...]
        if c.peek() == 0x28:
            c.open()
            found = [parse_fetch_att(c)]
            while c.accept(b" "):
                found.append(parse_fetch_att(c))
            c.close()
            items = tuple(found)
        else:
            m = _MACRO_RE.match(c.buf, c.pos)
            if m is not None:
                c.pos = m.end()
                items = MACROS[m.group().upper().decode()]
            else:
                items = (parse_fetch_att(c),)
        changedsince = None
        vanished = False
        if c.accept(b" "):
            c.open()
            while True:
                if c.accept_word(b"CHANGEDSINCE") and changedsince is None:
                    c.sp()
                    changedsince = c.number64()
                elif c.accept_word(b"VANISHED") and not vanished:
                    vanished = True
                else:
                    raise c.error("unknown fetch modifier")
                if c.accept(b")"):
                    break
                c.sp()
            c.depth -= 1
        try:
            return cls(tag, seqset, items, changedsince, vanished, uid)
        except ValueError as exc:
            raise c.error(str(exc)) from None

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.seq(self.sequence_set)
        e.raw(b" (")
        for i, item in enumerate(self.items):
            if i:
                e.sp()
            encode_fetch_att(e, item)
        e.raw(b")")
        mods = []
        if self.changedsince is not None:
            mods.append(f"CHANGEDSINCE {self.changedsince}")
        if self.vanished:
            mods.append("VANISHED")
        if mods:
            e.text(" (" + " ".join(mods) + ")")


class StoreMode(enum.Enum):
    """``FLAGS`` (replace), ``+FLAGS`` (add), ``-FLAGS`` (remove)."""

    REPLACE = ""
    ADD = "+"
    REMOVE = "-"


@attrs.frozen
class Store(Command):
    """``[UID] STORE sequence-set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags``."""

    VERB = "STORE"
    UID_FORM = True

    sequence_set: SequenceSet
    mode: StoreMode
    flags: tuple[str, ...] = attrs.field(converter=to_flags)
    silent: bool = False
    unchangedsince: int | None = None
    uid: bool = False

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Store:
        c.sp()
        seqset = c.sequence_set()
        c.sp()
        unchanged = None
        if c.accept(b"("):
            c.enter()
            if not c.accept_word(b"UNCHANGEDSINCE"):
                raise c.error("unknown store modifier")
            c.sp()
            unchanged = c.number64()
            c.close()
            c.sp()
        if c.accept(b"+"):
            mode = StoreMode.ADD
        elif c.accept(b"-"):
            mode = StoreMode.REMOVE
        else:
            mode = StoreMode.REPLACE
        word = c.keyword()
        if word not in ("FLAGS", "FLAGS.SILENT"):
            raise c.error("expected FLAGS")
        c.sp()
        if c.peek() == 0x28:
            flags = c.flag_list()
        else:
            flag_items = [c.flag()]
            while c.accept(b" "):
                flag_items.append(c.flag())
            flags = tuple(flag_items)
        return cls(tag, seqset, mode, flags, word == "FLAGS.SILENT", unchanged, uid)

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.seq(self.sequence_set)
        if self.unchangedsince is not None:
            e.text(f" (UNCHANGEDSINCE {self.unchangedsince})")
        e.text(f" {self.mode.value}FLAGS{'.SILENT' if self.silent else ''} ")
        e.flag_list(self.flags)


@attrs.frozen
class _Transfer(Command):
    UID_FORM = True

    sequence_set: SequenceSet
    mailbox: str = attrs.field(converter=to_mailbox)
    uid: bool = False

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> _Transfer:
        c.sp()
        seqset = c.sequence_set()
        c.sp()
        return cls(tag, seqset, c.mailbox(), uid)

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.seq(self.sequence_set)
        e.sp()
        e.mailbox(self.mailbox)


@attrs.frozen
class Copy(_Transfer):
    """``[UID] COPY sequence-set mailbox``."""

    VERB = "COPY"


@attrs.frozen
class Move(_Transfer):
    """``[UID] MOVE sequence-set mailbox`` (RFC 6851)."""

    VERB = "MOVE"


@attrs.frozen
class Expunge(Command):
    """``EXPUNGE``, or ``UID EXPUNGE sequence-set`` when ``uid_set`` is given (RFC 4315)."""

    VERB = "EXPUNGE"
    UID_FORM = True

    uid_set: SequenceSet | None = None

    @property
    def uid(self) -> bool:
        """Whether this is UID EXPUNGE."""
        return self.uid_set is not None

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Expunge:
        if not uid:
            return cls(tag)
        c.sp()
        return cls(tag, c.sequence_set())

    def encode_args(self, e: Encoder) -> None:
        if self.uid_set is not None:
            e.sp()
            e.seq(self.uid_set)
