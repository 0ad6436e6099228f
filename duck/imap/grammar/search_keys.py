"""The SEARCH key tree (RFC 3501 §6.4.4, RFC 9051 §6.4.4) as typed nodes, with
CONDSTORE MODSEQ (RFC 7162), WITHIN (RFC 5032), OBJECTID (RFC 8474) and SAVEDATE
(RFC 8514) keys."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Literal

import attrs

from .cmd_base import is_token, to_flags, to_tuple
from .encode import Encoder
from .lexer import Cursor, decode_text, normalize_flag
from .sequence import SequenceSet


@attrs.frozen
class SearchAll:
    """``ALL``."""


def _one_flag(value: str) -> str:
    return to_flags((value,))[0]


@attrs.frozen
class SearchFlag:
    """A flag test: ANSWERED/UNANSWERED, SEEN/UNSEEN, ..., RECENT/OLD, KEYWORD/UNKEYWORD.

    ``flag`` is a system flag (``\\Seen``) or a keyword; ``present`` False is the UN-
    form. ``NEW`` parses as ``SearchAnd((RECENT, UNSEEN))`` (RFC 3501 defines it so).
    """

    flag: str = attrs.field(converter=_one_flag)
    present: bool = True

    def __attrs_post_init__(self) -> None:
        if (self.flag, self.present) not in _FLAG_NAMES and not is_token(self.flag):
            raise ValueError(f"flag {self.flag!r} cannot be searched for")


#: Keys whose value is a header/envelope field: FROM, TO, CC, BCC, SUBJECT.
EnvelopeField = Literal["FROM", "TO", "CC", "BCC", "SUBJECT"]
_ENVELOPE_FIELDS = ("FROM", "TO", "CC", "BCC", "SUBJECT")


@attrs.frozen
class SearchEnvelope:
    """``FROM``/``TO``/``CC``/``BCC``/``SUBJECT`` string."""

    field: EnvelopeField = attrs.field(validator=attrs.validators.in_(_ENVELOPE_FIELDS))
    value: str


@attrs.frozen
class SearchHeader:
    """``HEADER header-fld-name astring``."""

    name: str
    value: str


@attrs.frozen
class SearchText:
    """``BODY string`` (``which="BODY"``) or ``TEXT string`` (``which="TEXT"``)."""

    which: Literal["BODY", "TEXT"] = attrs.field(validator=attrs.validators.in_(("BODY", "TEXT")))
    value: str


class DateField(enum.Enum):
    """Which date a date key compares: internal date, Date: header, or save date."""

    INTERNAL = ""
    SENT = "SENT"
    SAVED = "SAVED"


@attrs.frozen
class SearchDate:
    """``BEFORE``/``ON``/``SINCE`` and the ``SENT*``/``SAVED*`` forms."""

    kind: Literal["BEFORE", "ON", "SINCE"] = attrs.field(
        validator=attrs.validators.in_(("BEFORE", "ON", "SINCE"))
    )
    field: DateField
    date: dt.date


@attrs.frozen
class SearchSaveDateSupported:
    """``SAVEDATESUPPORTED`` (RFC 8514)."""


@attrs.frozen
class SearchSize:
    """``LARGER n`` (``larger=True``) or ``SMALLER n``."""

    larger: bool
    size: int = attrs.field(validator=[attrs.validators.ge(0), attrs.validators.le(2**63 - 1)])


@attrs.frozen
class SearchUid:
    """``UID sequence-set``."""

    set: SequenceSet


@attrs.frozen
class SearchSeq:
    """A bare ``sequence-set`` (message sequence numbers)."""

    set: SequenceSet


@attrs.frozen
class SearchModseq:
    """``MODSEQ [entry-name entry-type-req] mod-sequence-valzer`` (RFC 7162 §3.1.5).

    ``entry`` is ``(entry-name, "priv"|"shared"|"all")`` when given.
    """

    modseq: int = attrs.field(validator=[attrs.validators.ge(0), attrs.validators.le(2**63 - 1)])
    entry: tuple[str, str] | None = None


@attrs.frozen
class SearchWithin:
    """``OLDER n`` (``older=True``) or ``YOUNGER n`` seconds (RFC 5032)."""

    older: bool
    seconds: int = attrs.field(validator=[attrs.validators.ge(1), attrs.validators.le(2**32 - 1)])


@attrs.frozen
class SearchObjectId:
    """``EMAILID objectid`` or ``THREADID objectid`` (RFC 8474)."""

    kind: Literal["EMAILID", "THREADID"] = attrs.field(
        validator=attrs.validators.in_(("EMAILID", "THREADID"))
    )
    id: str = attrs.field()

    @id.validator
    def _check_id(self, attribute: object, value: str) -> None:
        # objectid = 1*255(ALPHA / DIGIT / "_" / "-")
        if not (1 <= len(value) <= 255 and value.isascii()
                and all(ch.isalnum() or ch in "_-" for ch in value)):
            raise ValueError(f"bad objectid {value!r}")


@attrs.frozen
class SearchNot:
    """``NOT search-key``."""

    key: SearchKey


@attrs.frozen
class SearchOr:
    """``OR search-key search-key``."""

    left: SearchKey
    right: SearchKey


def _nonempty(instance: object, attribute: object, value: tuple[object, ...]) -> None:
    if not value:
        raise ValueError("a parenthesised search list is never empty")


@attrs.frozen
class SearchAnd:
    """``"(" search-key *(SP search-key) ")"``."""

    keys: tuple[SearchKey, ...] = attrs.field(converter=to_tuple, validator=_nonempty)


SearchKey = (
    SearchAll | SearchFlag | SearchEnvelope | SearchHeader | SearchText | SearchDate
    | SearchSaveDateSupported | SearchSize | SearchUid | SearchSeq | SearchModseq
    | SearchWithin | SearchObjectId | SearchNot | SearchOr | SearchAnd
)

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True), "UNANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", True), "UNDELETED": ("\\Deleted", False),
    "FLAGGED": ("\\Flagged", True), "UNFLAGGED": ("\\Flagged", False),
    "SEEN": ("\\Seen", True), "UNSEEN": ("\\Seen", False),
    "DRAFT": ("\\Draft", True), "UNDRAFT": ("\\Draft", False),
    "RECENT": ("\\Recent", True), "OLD": ("\\Recent", False),
}
_FLAG_NAMES = {v: k for k, v in _FLAG_KEYS.items()}
_DATE_KEYS = {
    f"{field.value}{kind}": (kind, field)
    for field in DateField for kind in ("BEFORE", "ON", "SINCE")
}
_ENTRY_TYPES = ("PRIV", "SHARED", "ALL")


def parse_search_key(c: Cursor) -> SearchKey:
    """``search-key``."""
    ch = c.peek()
    if ch == 0x28:  # "("
        return SearchAnd(tuple(c.paren_list(lambda: parse_search_key(c), allow_empty=False)))
    if 0x31 <= ch <= 0x39 or ch == 0x2A or ch == 0x24:  # digit, "*", "$"
        return SearchSeq(c.sequence_set())
    word = c.keyword()
    flag = _FLAG_KEYS.get(word)
    if flag is not None:
        return SearchFlag(flag[0], flag[1])
    if word == "ALL":
        return SearchAll()
    if word in _ENVELOPE_FIELDS:
        c.sp()
        return SearchEnvelope(word, c.astring_text())  # type: ignore[arg-type]
    if word == "BODY" or word == "TEXT":
        c.sp()
        return SearchText(word, c.astring_text())  # type: ignore[arg-type]
    date_key = _DATE_KEYS.get(word)
    if date_key is not None:
        c.sp()
        return SearchDate(date_key[0], date_key[1], c.date())  # type: ignore[arg-type]
    if word in ("KEYWORD", "UNKEYWORD"):
        c.sp()
        keyword = c.atom().decode("ascii")
        return SearchFlag(normalize_flag(keyword), word == "KEYWORD")
    if word == "NEW":
        return SearchAnd((SearchFlag("\\Recent", True), SearchFlag("\\Seen", False)))
    if word == "HEADER":
        c.sp()
        name = c.astring_text()
        c.sp()
        return SearchHeader(name, c.astring_text())
    if word in ("LARGER", "SMALLER"):
        c.sp()
        return SearchSize(word == "LARGER", c.number64())
    if word == "UID":
        c.sp()
        return SearchUid(c.sequence_set())
    if word == "NOT":
        c.sp()
        c.enter()
        key = parse_search_key(c)
        c.depth -= 1
        return SearchNot(key)
    if word == "OR":
        c.sp()
        c.enter()
        left = parse_search_key(c)
        c.sp()
        right = parse_search_key(c)
        c.depth -= 1
        return SearchOr(left, right)
    if word == "MODSEQ":
        return _parse_modseq(c)
    if word in ("OLDER", "YOUNGER"):
        c.sp()
        return SearchWithin(word == "OLDER", c.nz_number())
    if word in ("EMAILID", "THREADID"):
        c.sp()
        raw = c.atom().decode("ascii")
        try:
            return SearchObjectId(word, raw)  # type: ignore[arg-type]
        except ValueError:
            raise c.error("bad objectid") from None
    if word == "SAVEDATESUPPORTED":
        return SearchSaveDateSupported()
    raise c.error("unknown search key")


def _parse_modseq(c: Cursor) -> SearchModseq:
    c.sp()
    entry = None
    if c.peek() == 0x22 or c.peek() == 0x7B:
        name = decode_text(c.string())
        c.sp()
        kind = c.keyword()
        if kind not in _ENTRY_TYPES:
            raise c.error("bad entry type")
        entry = (name, kind.lower())
        c.sp()
    return SearchModseq(c.number64(), entry)


def encode_search_key(e: Encoder, key: SearchKey) -> None:
    """Write one search key."""
    if isinstance(key, SearchFlag):
        name = _FLAG_NAMES.get((key.flag, key.present))
        if name is not None:
            e.text(name)
        elif is_token(key.flag):
            e.text(("KEYWORD " if key.present else "UNKEYWORD ") + key.flag)
        else:
            raise ValueError(f"flag {key.flag!r} cannot be searched for")
    elif isinstance(key, SearchSeq):
        e.seq(key.set)
    elif isinstance(key, SearchAnd):
        e.raw(b"(")
        for i, sub in enumerate(key.keys):
            if i:
                e.sp()
            encode_search_key(e, sub)
        e.raw(b")")
    elif isinstance(key, SearchAll):
        e.raw(b"ALL")
    elif isinstance(key, SearchEnvelope):
        e.text(key.field + " ")
        e.astring(key.value)
    elif isinstance(key, SearchText):
        e.text(key.which + " ")
        e.astring(key.value)
    elif isinstance(key, SearchDate):
        e.text(f"{key.field.value}{key.kind} ")
        e.date(key.date)
    elif isinstance(key, SearchHeader):
        e.raw(b"HEADER ")
        e.astring(key.name)
        e.sp()
        e.astring(key.value)
    elif isinstance(key, SearchSize):
        e.text(f"{'LARGER' if key.larger else 'SMALLER'} {key.size}")
    elif isinstance(key, SearchUid):
        e.raw(b"UID ")
        e.seq(key.set)
    elif isinstance(key, SearchNot):
        e.raw(b"NOT ")
        encode_search_key(e, key.key)
    elif isinstance(key, SearchOr):
        e.raw(b"OR ")
        encode_search_key(e, key.left)
        e.sp()
        encode_search_key(e, key.right)
    elif isinstance(key, SearchModseq):
        e.raw(b"MODSEQ ")
        if key.entry is not None:
            e.string(key.entry[0])
            e.text(f" {key.entry[1]} ")
        e.number(key.modseq)
    elif isinstance(key, SearchWithin):
        e.text(f"{'OLDER' if key.older else 'YOUNGER'} {key.seconds}")
    elif isinstance(key, SearchObjectId):
        e.text(f"{key.kind} {key.id}")
    elif isinstance(key, SearchSaveDateSupported):
        e.raw(b"SAVEDATESUPPORTED")
    else:  # pragma: no cover - exhaustive over SearchKey
        raise TypeError(f"not a search key: {key!r}")
