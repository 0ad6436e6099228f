"""Parsing server responses back into typed values (for round-trip tests and for
test clients), plus a small framing reader for the response stream."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from .bodystructure import parse_address_list  # noqa: F401  (re-export for clients)
from .cmd_acl import parse_acl, parse_listrights, parse_myrights
from .cmd_mailbox import StatusItem, parse_status_att
from .cmd_search import parse_partial_range
from .errors import ImapProtocolError, LineTooLong, ParseError
from .fetch_items import parse_fetch_att
from .lexer import ATOM_RE, TAG_RE, Cursor, decode_text
from .reader import NEED_DATA, Sentinel
from .resp_codes import ResponseCode, parse_code
from .resp_fetch import FetchData, parse_fetch_value
from .responses import (
    CapabilityData,
    Continuation,
    EnabledData,
    ESearchData,
    ExistsData,
    ExpungeData,
    FlagsData,
    IdData,
    ListData,
    LsubData,
    MetadataChanged,
    MetadataData,
    NamespaceData,
    NamespaceDesc,
    QuotaData,
    QuotaResource,
    QuotaRootData,
    RecentData,
    SaslChallenge,
    SearchData,
    SortData,
    StatusData,
    TaggedStatus,
    ThreadData,
    ThreadNode,
    UntaggedStatus,
    VanishedData,
)
from .sequence import SequenceSet
from .serializer import Response

_STATUS_WORDS = ("OK", "NO", "BAD", "PREAUTH", "BYE")
_CAP_RE = ATOM_RE
_BASE64_RE = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def parse_response(data: bytes, *, utf8: bool = False, sasl: bool = False,
                   max_depth: int = 64) -> Response:
    """Parse one whole response (literals inline, final CRLF optional).

    ``sasl`` reads a ``+`` line as a base64 :class:`SaslChallenge` rather than text.
    Raises only :class:`ImapProtocolError` subclasses.
    """
    if data.endswith(b"\r\n"):
        data = data[:-2]
    c = Cursor(data, max_depth=max_depth, utf8=utf8)
    try:
        resp = _parse(c, sasl)
    except ImapProtocolError:
        raise
    except (ValueError, TypeError) as exc:
        raise ParseError(f"invalid response: {exc}") from None
    except RecursionError:
        raise ParseError("response nested too deeply") from None
    c.end()
    return resp


def _resp_text(c: Cursor) -> tuple[ResponseCode | None, str]:
    if c.at_end():
        return None, ""
    c.sp()
    code = None
    if c.peek() == 0x5B:
        code = parse_code(c)
        if c.at_end():
            return code, ""
        c.sp()
    text = decode_text(c.buf[c.pos :])
    c.pos = len(c.buf)
    return code, text


def _parse(c: Cursor, sasl: bool) -> Response:
    if c.accept(b"+"):
        if sasl:
            c.accept(b" ")
            raw = c.match(_BASE64_RE, "base64")
            try:
                return SaslChallenge(base64.b64decode(raw, validate=True))
            except binascii.Error:
                raise c.error("bad base64") from None
        code, text = _resp_text(c)
        return Continuation(text, code)
    if c.accept(b"* "):
        return _parse_untagged(c)
    tag = c.match(TAG_RE, "tag").decode("ascii")
    c.sp()
    status = c.keyword()
    if status not in ("OK", "NO", "BAD"):
        raise c.error("expected OK, NO or BAD")
    code, text = _resp_text(c)
    return TaggedStatus(tag, status, code, text)  # type: ignore[arg-type]


def _parse_untagged(c: Cursor) -> Response:
    if 0x30 <= c.peek() <= 0x39:
        n = c.number()
        c.sp()
        word = c.keyword()
        if word == "EXISTS":
            return ExistsData(n)
        if word == "RECENT":
            return RecentData(n)
        if word == "EXPUNGE":
            return ExpungeData(n)
        if word == "FETCH":
            c.sp()
            return _parse_fetch(c, n)
        raise c.error("unknown message data")
    word = c.keyword()
    if word in _STATUS_WORDS:
        code, text = _resp_text(c)
        return UntaggedStatus(word, code, text)  # type: ignore[arg-type]
    parser = _UNTAGGED.get(word)
    if parser is None:
        raise c.error("unknown untagged response")
    return parser(c)


def _parse_fetch(c: Cursor, seq: int) -> FetchData:
    def item() -> tuple[object, object]:
        key = parse_fetch_att(c, response=True)
        c.sp()
        return (key, parse_fetch_value(c, key))

    return FetchData(seq, tuple(c.paren_list(item)))


def _caps(c: Cursor) -> tuple[str, ...]:
    caps = []
    while c.accept(b" "):
        caps.append(c.match(_CAP_RE, "capability").decode("ascii"))
    return tuple(caps)


def _delimiter(c: Cursor) -> str | None:
    if c.nil():
        return None
    return c.quoted().decode("ascii", "surrogateescape")


def _parse_list(c: Cursor, cls: type[ListData] = ListData) -> ListData:
    c.sp()
    flags = c.flag_list()
    c.sp()
    delimiter = _delimiter(c)
    c.sp()
    name = c.decode_mailbox(c.astring())
    childinfo: tuple[str, ...] = ()
    oldname = None
    if c.accept(b" "):
        c.open()
        while True:
            tag = decode_text(c.astring()).upper()
            c.sp()
            if tag == "CHILDINFO":
                childinfo = tuple(c.paren_list(lambda: decode_text(c.string()), allow_empty=False))
            elif tag == "OLDNAME":
                c.open()
                oldname = c.decode_mailbox(c.astring())
                c.close()
            else:
                raise c.error("unknown LIST extended item")
            if c.accept(b")"):
                break
            c.sp()
        c.depth -= 1
    return cls(flags, delimiter, name, childinfo, oldname)


def _parse_status(c: Cursor) -> StatusData:
    c.sp()
    mailbox = c.decode_mailbox(c.astring())
    c.sp()

    def item() -> tuple[StatusItem, int | str]:
        att = parse_status_att(c)
        c.sp()
        if att is StatusItem.MAILBOXID:
            c.expect(b"(")
            value = c.atom().decode("ascii")
            c.expect(b")")
            return (att, value)
        return (att, c.number64())

    return StatusData(mailbox, tuple(c.paren_list(item)))


def _parse_search(c: Cursor, cls: type[SearchData] = SearchData) -> SearchData:
    nums = []
    modseq = None
    while c.accept(b" "):
        if c.accept(b"("):
            if not c.accept_word(b"MODSEQ"):
                raise c.error("expected MODSEQ")
            c.sp()
            modseq = c.number64()
            c.expect(b")")
            break
        nums.append(c.nz_number())
    return cls(tuple(nums), modseq)


def _context_item(c: Cursor) -> tuple[int, SequenceSet]:
    """``context-position SP sequence-set`` (RFC 5267 §4.3)."""
    position = c.number()
    c.sp()
    return position, c.sequence_set(allow_saved=False)


def _parse_esearch(c: Cursor) -> ESearchData:
    tag = None
    uid = False
    values: dict[str, object] = {}
    if c.peek_is(b" ("):
        c.sp()
        c.open()
        if not c.accept_word(b"TAG"):
            raise c.error("expected TAG")
        c.sp()
        tag = decode_text(c.string())
        c.close()
    if c.peek_is(b" ") and Cursor(c.buf, c.pos + 1).peek_word(b"UID"):
        c.pos += 4
        uid = True
    while c.accept(b" "):
        name = c.keyword()
        c.sp()
        if name == "ALL":
            values["all"] = c.sequence_set(allow_saved=False)
        elif name in ("MIN", "MAX", "COUNT"):
            values[name.lower()] = c.number()
        elif name == "MODSEQ":
            values["modseq"] = c.number64()
        elif name == "PARTIAL":
            c.open()
            window = parse_partial_range(c)
            c.sp()
            found = None if c.accept_word(b"NIL") else c.sequence_set(allow_saved=False)
            c.close()
            values["partial"] = (window, found)
        elif name in ("ADDTO", "REMOVEFROM"):
            values[name.lower()] = tuple(c.paren_list(lambda: _context_item(c),
                                                      allow_empty=False))
        else:
            raise c.error("unknown ESEARCH item")
    return ESearchData(tag, uid, **values)  # type: ignore[arg-type]


def _parse_flags(c: Cursor) -> FlagsData:
    c.sp()
    return FlagsData(c.flag_list())


def _parse_vanished(c: Cursor) -> VanishedData:
    c.sp()
    earlier = c.accept(b"(EARLIER) ")
    return VanishedData(c.sequence_set(allow_saved=False), earlier)


def _parse_thread_list(c: Cursor) -> ThreadNode:
    c.open()
    ids = []
    children = []
    while True:
        if c.peek() == 0x28:
            children.append(_parse_thread_list(c))
        else:
            if children:
                raise c.error("message number after nested threads")
            ids.append(c.nz_number())
        if c.accept(b")"):
            break
        if c.peek() != 0x28:
            c.sp()
    c.depth -= 1
    if len(children) == 1:
        # Deviation (RFC 5256 §4): "(1 (2))" is read as the chain "(1 2)".
        only = children[0]
        return ThreadNode((*ids, *only.ids), only.children)
    return ThreadNode(tuple(ids), tuple(children))


def _parse_thread(c: Cursor) -> ThreadData:
    threads = []
    if c.accept(b" "):
        while c.peek() == 0x28:
            threads.append(_parse_thread_list(c))
    return ThreadData(tuple(threads))


def _parse_quota(c: Cursor) -> QuotaData:
    c.sp()
    root = c.astring_text()
    c.sp()

    def resource() -> QuotaResource:
        name = c.keyword()
        c.sp()
        usage = c.number64()
        c.sp()
        return QuotaResource(name, usage, c.number64())

    return QuotaData(root, tuple(c.paren_list(resource)))


def _parse_quotaroot(c: Cursor) -> QuotaRootData:
    c.sp()
    mailbox = c.decode_mailbox(c.astring())
    roots = []
    while c.accept(b" "):
        roots.append(c.astring_text())
    return QuotaRootData(mailbox, tuple(roots))


def _parse_metadata(c: Cursor) -> MetadataData | MetadataChanged:
    c.sp()
    mailbox = c.decode_mailbox(c.astring())
    c.sp()
    if c.peek() == 0x28:

        def entry_value() -> tuple[str, bytes | None]:
            entry = c.astring_text()
            c.sp()
            if c.peek() == 0x7E:
                return (entry, c.literal(binary_ok=True))
            return (entry, c.nstring())

        return MetadataData(mailbox, tuple(c.paren_list(entry_value, allow_empty=False)))
    entries = [c.astring_text()]
    while c.accept(b" "):
        entries.append(c.astring_text())
    return MetadataChanged(mailbox, tuple(entries))


def _parse_namespace_group(c: Cursor) -> tuple[NamespaceDesc, ...] | None:
    if c.nil():
        return None

    def desc() -> NamespaceDesc:
        c.open()
        prefix = c.decode_mailbox(c.string())
        c.sp()
        delimiter = _delimiter(c)
        exts = []
        while c.accept(b" "):
            name = decode_text(c.string())
            c.sp()
            exts.append((name, tuple(c.paren_list(lambda: decode_text(c.string()),
                                                  allow_empty=False))))
        c.close()
        return NamespaceDesc(prefix, delimiter, tuple(exts))

    # RFC 2342 §5: namespace descriptions follow each other without SP.
    c.open()
    out = [desc()]
    while c.peek() == 0x28:
        out.append(desc())
    c.close()
    return tuple(out)


def _parse_namespace(c: Cursor) -> NamespaceData:
    groups = []
    for _ in range(3):
        c.sp()
        groups.append(_parse_namespace_group(c))
    return NamespaceData(*groups)


def _parse_id(c: Cursor) -> IdData:
    from .cmd_any import Id

    return IdData(Id.parse_args(c, "x", False).params)


_UNTAGGED: dict[str, Callable[[Cursor], Response]] = {
    "CAPABILITY": lambda c: CapabilityData(_caps(c)),
    "ENABLED": lambda c: EnabledData(_caps(c)),
    "LIST": _parse_list,
    "LSUB": lambda c: _parse_list(c, LsubData),
    "STATUS": _parse_status,
    "SEARCH": _parse_search,
    "SORT": lambda c: _parse_search(c, SortData),
    "ESEARCH": _parse_esearch,
    "FLAGS": _parse_flags,
    "VANISHED": _parse_vanished,
    "THREAD": _parse_thread,
    "QUOTA": _parse_quota,
    "QUOTAROOT": _parse_quotaroot,
    "METADATA": _parse_metadata,
    "NAMESPACE": _parse_namespace,
    "ID": _parse_id,
    "ACL": parse_acl,
    "LISTRIGHTS": parse_listrights,
    "MYRIGHTS": parse_myrights,
}

_LITERAL_TAIL_RE = re.compile(rb"~?\{(\d{1,20})\}\Z")


class ResponseReader:
    """Frames the server's byte stream into whole responses (for test clients).

    Feed with :meth:`receive_data`; :meth:`next_response` returns a parsed response
    or NEED_DATA. Server literals are never synchronizing, so no events are needed.
    """

    def __init__(self, *, max_line: int = 1 << 20, utf8: bool = False) -> None:
        self._buf = bytearray()
        self._scan = 0
        self._max_line = max_line
        self.utf8 = utf8
        self.sasl = False

    def receive_data(self, data: bytes) -> None:
        """Append bytes received from the server."""
        self._buf += data

    def next_raw(self) -> bytes | Sentinel:
        """The next whole response as bytes (literals inline, CRLF kept) or NEED_DATA."""
        buf = self._buf
        while True:
            idx = buf.find(b"\n", self._scan)
            if idx < 0:
                if len(buf) - self._scan > self._max_line:
                    raise LineTooLong("response line too long", fatal=True)
                return NEED_DATA
            line_end = idx - 1 if idx and buf[idx - 1] == 0x0D else idx
            m = _LITERAL_TAIL_RE.search(bytes(buf[max(self._scan, line_end - 24) : line_end]))
            if m is None:
                raw = bytes(buf[: idx + 1])
                del buf[: idx + 1]
                self._scan = 0
                return raw
            end = idx + 1 + int(m.group(1))
            if len(buf) < end:
                return NEED_DATA
            self._scan = end

    def next_response(self) -> Response | Sentinel:
        """The next parsed response, or NEED_DATA."""
        raw = self.next_raw()
        if raw is NEED_DATA:
            return NEED_DATA
        assert isinstance(raw, bytes)
        return parse_response(raw, utf8=self.utf8, sasl=self.sasl)
