"""Server responses (RFC 3501 §7, RFC 9051 §7 and extensions) as typed values.

Each class writes itself with ``encode``; :mod:`.serializer` adds CRLF and
chooses between whole bytes and streamed chunks. FETCH lives in :mod:`.resp_fetch`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Literal

import attrs

from .cmd_any import Id as _IdCommand
from .cmd_base import is_token, to_flags, to_pairs, to_tuple, to_upper
from .cmd_mailbox import StatusItem
from .cmd_search import check_partial, format_partial_range
from .encode import Encoder
from .lexer import TAG_RE
from .resp_codes import ResponseCode, encode_code
from .sequence import SequenceSet

_TEXT_RE = re.compile(r"[^\r\n\x00]*")


def _check_text(instance: object, attribute: object, value: str) -> None:
    if not _TEXT_RE.fullmatch(value) or value.startswith("["):
        raise ValueError(f"response text may not hold CR, LF, NUL or start with '[': {value!r}")


def _check_tag(instance: object, attribute: object, value: str) -> None:
    if not is_token(value, TAG_RE):
        raise ValueError(f"invalid tag {value!r}")


def _encode_resp_text(e: Encoder, code: ResponseCode | None, text: str) -> None:
    if code is not None:
        e.sp()
        encode_code(e, code)
    if text or code is None:
        e.sp()
        e.raw(text.encode("utf-8", "surrogateescape"))


@attrs.frozen
class TaggedStatus:
    """``tag SP ("OK" / "NO" / "BAD") SP resp-text``."""

    tag: str = attrs.field(validator=_check_tag)
    status: Literal["OK", "NO", "BAD"] = attrs.field(
        validator=attrs.validators.in_(("OK", "NO", "BAD")))
    code: ResponseCode | None = None
    text: str = attrs.field(default="", validator=_check_text)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.text(f"{self.tag} {self.status}")
        _encode_resp_text(e, self.code, self.text)


class Completed:
    """``tag SP "OK" SP verb " completed"``: the tagged OK most commands end with, as
    TaggedStatus would write it. Made without TaggedStatus's checks, which cost
    about as much as the rest of a NOOP's reply: the tag is one the command parser
    accepted (``tag`` of a parsed command only) and the text is fixed. ``line``:
    its bytes with CRLF (what the wire sends of it)."""

    __slots__ = ("line",)
    status = "OK"

    def __init__(self, tag: str, verb: str) -> None:
        self.line = f"{tag} OK {verb} completed\r\n".encode("ascii")

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(self.line[:-2])

    def __repr__(self) -> str:
        return f"Completed({self.line[:-2]!r})"


@attrs.frozen
class UntaggedStatus:
    """``"*" SP ("OK" / "NO" / "BAD" / "PREAUTH" / "BYE") SP resp-text``."""

    status: Literal["OK", "NO", "BAD", "PREAUTH", "BYE"] = attrs.field(
        validator=attrs.validators.in_(("OK", "NO", "BAD", "PREAUTH", "BYE")))
    code: ResponseCode | None = None
    text: str = attrs.field(default="", validator=_check_text)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.text(f"* {self.status}")
        _encode_resp_text(e, self.code, self.text)


@attrs.frozen
class Continuation:
    """``"+" SP resp-text``: a continuation request with human-readable text."""

    text: str = attrs.field(default="", validator=_check_text)
    code: ResponseCode | None = None

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"+")
        _encode_resp_text(e, self.code, self.text)


@attrs.frozen
class SaslChallenge:
    """``"+" SP base64``: a SASL challenge; ``data`` is the decoded octets."""

    data: bytes

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"+ " + base64.b64encode(self.data))


def _atoms(instance: object, attribute: object, value: tuple[str, ...]) -> None:
    for v in value:
        if not is_token(v):
            raise ValueError(f"not an atom: {v!r}")


@attrs.frozen
class CapabilityData:
    """``"CAPABILITY" *(SP capability)``."""

    capabilities: tuple[str, ...] = attrs.field(converter=to_tuple, validator=_atoms)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.text(" ".join(("* CAPABILITY", *self.capabilities)))


@attrs.frozen
class EnabledData:
    """``"ENABLED" *(SP capability)`` (RFC 5161)."""

    capabilities: tuple[str, ...] = attrs.field(converter=to_tuple, validator=_atoms)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.text(" ".join(("* ENABLED", *self.capabilities)))


def _check_delimiter(instance: object, attribute: object, value: str | None) -> None:
    if value is not None and (len(value) != 1 or value in "\r\n\0" or not value.isascii()):
        raise ValueError(f"bad hierarchy delimiter {value!r}")


@attrs.frozen
class ListData:
    """``"LIST" SP mailbox-list`` with RFC 5258 extended items CHILDINFO and OLDNAME."""

    flags: tuple[str, ...] = attrs.field(converter=to_flags)
    delimiter: str | None = attrs.field(validator=_check_delimiter)
    name: str
    childinfo: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    oldname: str | None = None

    NAME = "LIST"

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.text(f"* {self.NAME} ")
        e.flag_list(self.flags)
        e.sp()
        if self.delimiter is None:
            e.raw(b"NIL")
        else:
            e.string(self.delimiter)
        e.sp()
        e.mailbox(self.name)
        ext: list[tuple[str, str | None]] = []
        if self.childinfo:
            ext.append(("CHILDINFO", None))
        if self.oldname is not None:
            ext.append(("OLDNAME", self.oldname))
        if ext:
            e.raw(b" (")
            for i, (tag, value) in enumerate(ext):
                if i:
                    e.sp()
                if tag == "CHILDINFO":
                    e.raw(b'"CHILDINFO" (')
                    for j, info in enumerate(self.childinfo):
                        if j:
                            e.sp()
                        e.string(info)
                    e.raw(b")")
                else:
                    e.raw(b'"OLDNAME" (')
                    e.mailbox(value or "")
                    e.raw(b")")
            e.raw(b")")


@attrs.frozen
class LsubData(ListData):
    """``"LSUB" SP mailbox-list``."""

    NAME = "LSUB"


def _status_items(value: object) -> tuple[tuple[StatusItem, int | str], ...]:
    items = value.items() if isinstance(value, dict) else value
    return tuple((StatusItem(k) if isinstance(k, str) else k, v) for k, v in items)  # type: ignore[attr-defined]


@attrs.frozen
class StatusData:
    """``"STATUS" SP mailbox SP "(" [status-att-val *(SP status-att-val)] ")"``.

    ``items`` are (StatusItem, value) pairs (a dict is accepted); MAILBOXID's value
    is the objectid string, every other value a number.
    """

    mailbox: str
    items: tuple[tuple[StatusItem, int | str], ...] = attrs.field(converter=_status_items)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* STATUS ")
        e.mailbox(self.mailbox)
        parts = []
        for item, value in self.items:
            if item is StatusItem.MAILBOXID:
                parts.append(f"MAILBOXID ({value})")
            else:
                parts.append(f"{item.value} {value}")
        e.text(" (" + " ".join(parts) + ")")


@attrs.frozen
class SearchData:
    """``"SEARCH" *(SP nz-number) [SP "(" "MODSEQ" SP n ")"]`` (RFC 7162 §3.1.5)."""

    numbers: tuple[int, ...] = attrs.field(converter=to_tuple)
    modseq: int | None = None

    NAME = "SEARCH"

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.text(" ".join(("*", self.NAME, *map(str, self.numbers))))
        if self.modseq is not None:
            e.text(f" (MODSEQ {self.modseq})")


@attrs.frozen
class SortData(SearchData):
    """``"SORT" *(SP nz-number)`` (RFC 5256), with MODSEQ as for SEARCH."""

    NAME = "SORT"


def _check_partial_data(instance: object, attribute: object,
                        value: tuple[tuple[int, int], SequenceSet | None] | None) -> None:
    if value is not None:
        check_partial(_HasPartial(), attribute, value[0])


@attrs.frozen
class _HasPartial:
    return_options: tuple[str, ...] = ("PARTIAL",)


def _check_context_items(instance: object, attribute: object,
                         value: tuple[tuple[int, SequenceSet], ...]) -> None:
    for position, _ in value:
        if not 0 <= position <= 2**32 - 1:
            raise ValueError(f"bad context position {position}")


@attrs.frozen
class ESearchData:
    """``"ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)`` (RFC 4731),
    with ``PARTIAL (range set/NIL)`` (RFC 9394 §3) and the context updates ``ADDTO``
    and ``REMOVEFROM`` (``(position set)`` pairs, RFC 5267 §4.3)."""

    tag: str | None = None
    uid: bool = False
    min: int | None = None
    max: int | None = None
    all: SequenceSet | None = None
    count: int | None = None
    modseq: int | None = None
    partial: tuple[tuple[int, int], SequenceSet | None] | None = attrs.field(
        default=None, validator=_check_partial_data)
    addto: tuple[tuple[int, SequenceSet], ...] = attrs.field(
        default=(), converter=to_tuple, validator=_check_context_items)
    removefrom: tuple[tuple[int, SequenceSet], ...] = attrs.field(
        default=(), converter=to_tuple, validator=_check_context_items)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* ESEARCH")
        if self.tag is not None:
            e.raw(b" (TAG ")
            e.string(self.tag)
            e.raw(b")")
        if self.uid:
            e.raw(b" UID")
        for name, value in (("MIN", self.min), ("MAX", self.max), ("ALL", self.all),
                            ("COUNT", self.count), ("MODSEQ", self.modseq)):
            if value is not None:
                e.text(f" {name} {value}")
        if self.partial is not None:
            found = self.partial[1]
            e.text(f" PARTIAL ({format_partial_range(self.partial[0])} "
                   f"{'NIL' if found is None else found})")
        for name, items in (("ADDTO", self.addto), ("REMOVEFROM", self.removefrom)):
            if items:
                e.text(f" {name} (" + " ".join(f"{p} {s}" for p, s in items) + ")")


@attrs.frozen
class FlagsData:
    """``"FLAGS" SP flag-list``."""

    flags: tuple[str, ...] = attrs.field(converter=to_flags)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* FLAGS ")
        e.flag_list(self.flags)


@attrs.frozen
class ExistsData:
    """``number SP "EXISTS"``."""

    count: int = attrs.field(validator=attrs.validators.ge(0))

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.text(f"* {self.count} EXISTS")


@attrs.frozen
class RecentData:
    """``number SP "RECENT"``."""

    count: int = attrs.field(validator=attrs.validators.ge(0))

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.text(f"* {self.count} RECENT")


@attrs.frozen
class ExpungeData:
    """``nz-number SP "EXPUNGE"``."""

    seq: int = attrs.field(validator=attrs.validators.ge(1))

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.text(f"* {self.seq} EXPUNGE")


@attrs.frozen
class VanishedData:
    """``"VANISHED" [SP "(EARLIER)"] SP known-uids`` (RFC 7162 §3.2.10)."""

    uids: SequenceSet
    earlier: bool = False

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.text(f"* VANISHED {'(EARLIER) ' if self.earlier else ''}{self.uids}")


@attrs.frozen
class ThreadNode:
    """One ``thread-list``: a chain of message numbers, then 0 or ≥2 branches."""

    ids: tuple[int, ...] = attrs.field(converter=to_tuple)
    children: tuple[ThreadNode, ...] = attrs.field(default=(), converter=to_tuple)

    def __attrs_post_init__(self) -> None:
        if len(self.children) == 1:
            raise ValueError("a single branch continues the chain (put it in ids)")
        if not self.ids and not self.children:
            raise ValueError("an empty thread")


@attrs.frozen
class ThreadData:
    """``"THREAD" [SP 1*thread-list]`` (RFC 5256)."""

    threads: tuple[ThreadNode, ...] = attrs.field(converter=to_tuple)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* THREAD")
        if self.threads:
            e.sp()
            for t in self.threads:
                _encode_thread(e, t)


def _encode_thread(e: Encoder, node: ThreadNode) -> None:
    e.raw(b"(" + " ".join(map(str, node.ids)).encode("ascii"))
    if node.ids and node.children:
        e.sp()
    for child in node.children:
        _encode_thread(e, child)
    e.raw(b")")


@attrs.frozen
class QuotaResource:
    """``resource-name SP resource-usage SP resource-limit``."""

    name: str = attrs.field(converter=to_upper)
    usage: int
    limit: int


@attrs.frozen
class QuotaData:
    """``"QUOTA" SP quota-root-name SP "(" quota-resource *(SP quota-resource) ")"``."""

    root: str
    resources: tuple[QuotaResource, ...] = attrs.field(converter=to_tuple)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* QUOTA ")
        e.astring(self.root)
        e.text(" (" + " ".join(f"{r.name} {r.usage} {r.limit}" for r in self.resources) + ")")


@attrs.frozen
class QuotaRootData:
    """``"QUOTAROOT" SP mailbox *(SP quota-root-name)``."""

    mailbox: str
    roots: tuple[str, ...] = attrs.field(converter=to_tuple)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* QUOTAROOT ")
        e.mailbox(self.mailbox)
        for r in self.roots:
            e.sp()
            e.astring(r)


@attrs.frozen
class MetadataData:
    """``"METADATA" SP mailbox SP "(" entry SP value ... ")"`` (RFC 5464 §4.4.1)."""

    mailbox: str
    entries: tuple[tuple[str, bytes | None], ...] = attrs.field(
        converter=to_pairs)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* METADATA ")
        e.mailbox(self.mailbox)
        e.raw(b" (")
        for i, (entry, value) in enumerate(self.entries):
            if i:
                e.sp()
            e.astring(entry)
            e.sp()
            if value is not None and b"\0" in value:
                e.literal(value, binary=True)
            else:
                e.nstring(value)
        e.raw(b")")


@attrs.frozen
class MetadataChanged:
    """Unsolicited ``"METADATA" SP mailbox SP entry *(SP entry)`` (RFC 5464 §4.4.2)."""

    mailbox: str
    entries: tuple[str, ...] = attrs.field(converter=to_tuple)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* METADATA ")
        e.mailbox(self.mailbox)
        for entry in self.entries:
            e.sp()
            e.astring(entry)


def _to_ns_ext(
    value: Iterable[tuple[str, Iterable[str]]],
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((k, tuple(vals)) for k, vals in value)


@attrs.frozen
class NamespaceDesc:
    """``"(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) *(namespace-response-extension) ")"``."""

    prefix: str
    delimiter: str | None = attrs.field(validator=_check_delimiter)
    extensions: tuple[tuple[str, tuple[str, ...]], ...] = attrs.field(
        default=(), converter=_to_ns_ext)


def _namespaces(value: Iterable[NamespaceDesc] | None) -> tuple[NamespaceDesc, ...] | None:
    if value is None:
        return None
    out = tuple(value)
    return out or None


@attrs.frozen
class NamespaceData:
    """``"NAMESPACE" SP personal SP other SP shared``; None is NIL."""

    personal: tuple[NamespaceDesc, ...] | None = attrs.field(converter=_namespaces)
    other: tuple[NamespaceDesc, ...] | None = attrs.field(default=None, converter=_namespaces)
    shared: tuple[NamespaceDesc, ...] | None = attrs.field(default=None, converter=_namespaces)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* NAMESPACE")
        for group in (self.personal, self.other, self.shared):
            e.sp()
            if group is None:
                e.raw(b"NIL")
                continue
            e.raw(b"(")
            for d in group:
                e.raw(b"(")
                e.string(e.mailbox_bytes(d.prefix))
                e.sp()
                if d.delimiter is None:
                    e.raw(b"NIL")
                else:
                    e.string(d.delimiter)
                for name, values in d.extensions:
                    e.sp()
                    e.string(name)
                    e.raw(b" (")
                    for i, v in enumerate(values):
                        if i:
                            e.sp()
                        e.string(v)
                    e.raw(b")")
                e.raw(b")")
            e.raw(b")")


@attrs.frozen
class IdData:
    """``"ID" SP id-params-list`` (RFC 2971); ``params`` None is NIL."""

    params: tuple[tuple[str, str | None], ...] | None = attrs.field(
        converter=to_pairs)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* ID")
        _IdCommand("x", self.params).encode_args(e)
