"""The streaming MIME indexer: a sans-IO state machine fed chunks of a message.

It never holds the whole message. At any time its buffer holds at most the body
of the current leaf part up to the large-body threshold (until it knows whether
that body is large), the header line being read (capped), and a boundary-length
tail between chunks. Bodies are scanned for delimiter lines with ``bytes.find``;
there is no per-byte Python loop over body bytes.

Line ends: CRLF and bare LF both end a line (bare-LF mail is common); a bare CR
does not. Offsets are exact octet positions in the input whatever the line ends.
"""

from __future__ import annotations

import hashlib
import re

import attrs

from duck.mime.envelope import first_field, message_ids, parse_date
from duck.mime.events import Event, LargeBodyBytes, LargeBodyEnd, LargeBodyStart, SkeletonBytes
from duck.mime.headers import decode_header, split_field
from duck.mime.model import IndexedMessage, IndexerLimits, LargeBody
from duck.mime.nodes import ENCAPSULATING, LEAF, MESSAGE, MULTIPART, Node
from duck.mime.textextract import TextBudget, TextExtractor

_CR, _LF, _DASH = 13, 10, 45
_HEADER, _LEAF, _SCAN, _DONE = "HEADER", "LEAF", "SCAN", "DONE"
_MORE = object()  # "cannot decide yet, feed more"

#: RFC 2046 §5.1.1 allows transport padding (LWSP) after a delimiter; a delimiter
#: line with more padding than this is taken as body text so lookahead stays bounded.
_MAX_PADDING = 256
#: A header line longer than this is consumed piecewise (it cannot be a delimiter).
_LONG_HEADER_LINE = 8192
#: Encodings under which a message/rfc822 body is still a readable message.
_IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})

_FIELD, _CONTINUATION, _SKIP, _OTHER = "field", "continuation", "skip", "other"
# RFC 5322 §3.6.8 field-name: printable US-ASCII except ":" (empty names tolerated,
# as Python's email package does).
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]*:")


def _common_prefix(items: list[bytes]) -> bytes:
    first, last = min(items), max(items)
    size = 0
    for a, b in zip(first, last, strict=False):
        if a != b:
            break
        size += 1
    return first[:size]


def _classify(line: bytes, first_of_root: bool) -> str:
    """What a line inside a header block is (RFC 5322 §2.2, §3.6)."""
    if line[:1] in (b" ", b"\t"):
        return _CONTINUATION
    if _FIELD_NAME.match(line):
        return _FIELD
    if first_of_root and line.startswith(b"From "):
        return _SKIP  # an mbox "From " separator line
    return _OTHER


class _HeaderBlock:
    """Raw header fields of one block, capped; a field that does not fit is dropped."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.size = 0
        self.fields: list[bytearray] = []
        self.current: bytearray | None = None
        self.truncated = False

    def start_field(self, data: bytes) -> None:
        if self.size + len(data) > self.cap:
            self.current = None
            self.truncated = True
            return
        self.current = bytearray(data)
        self.fields.append(self.current)
        self.size += len(data)

    def extend(self, data: bytes) -> None:
        if self.current is None:
            return
        if self.size + len(data) > self.cap:
            self.fields.pop()
            self.size -= len(self.current)
            self.current = None
            self.truncated = True
            return
        self.current += data
        self.size += len(data)


@attrs.frozen
class IndexerStatistics:
    """A snapshot of a `MessageIndexer`'s state."""

    #: Octets fed so far.
    received: int
    #: Octets held in the indexer's buffer (the memory that grows with input).
    buffered: int
    #: Parts recorded so far.
    parts: int
    #: Large bodies completed so far.
    large_bodies: int
    #: Currently open (nested) parts.
    depth: int


class MessageIndexer:
    """Feed a message in chunks of any size; get events, then an `IndexedMessage`.

    ``feed`` and ``close`` never raise on message content. Concatenating the data of
    every SkeletonBytes and LargeBodyBytes event in order gives the input exactly.
    """

    def __init__(self, limits: IndexerLimits | None = None) -> None:
        self._limits = limits or IndexerLimits()
        self._buf = bytearray()
        self._base = 0  # absolute offset of buf[0]; everything before it is emitted
        self._received = 0
        self._events: list[Event] = []
        self._lf_flushed = 0  # LF count in [0, base)
        self._lf_mark = (0, 0)  # (offset, LF count before it): the last _lf_before answer
        self._last_flushed = -1  # the byte at base - 1
        self._pos = 0  # parse position: everything before it is classified
        self._hold: int | None = None  # never emit skeleton bytes past this offset
        self._closed = False
        self._state = _HEADER
        self._part_count = 1
        self._truncated = False
        self._header_budget = self._limits.max_total_header_bytes
        self._budget = TextBudget(self._limits.max_text_bytes)
        self._texts: list[str] = []
        self._large: list[LargeBody] = []
        # Active delimiters (b"--" + boundary) with their multipart, outermost first.
        self._bounds: list[tuple[bytes, Node]] = []
        self._max_delim_line = 0
        # b"\n" + the common prefix of all active delimiters: what the body scan finds.
        self._pattern = b"\n--"
        # Scanning state (LEAF and SCAN).
        self._scan_pos = 0
        self._check_at: int | None = None
        # Current leaf.
        self._leaf: Node | None = None
        self._body_done = 0
        self._large_sha: hashlib._Hash | None = None
        self._extractor: TextExtractor | None = None
        # Current header block.
        self._header: _HeaderBlock = _HeaderBlock(0)
        self._first_line = True
        self._long_line = False
        self._prev_eol = 0
        self._root_fields: list[tuple[str, bytes]] = []
        self._root = Node(0, depth=0, section=(), default_type=("text", "plain"), is_root=True)
        self._open: list[Node] = [self._root]
        self._start_header(self._root)

    # -- public API ---------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        """Add the next bytes of the message; return the events they complete."""
        if self._closed:
            raise RuntimeError("feed() after close()")
        if data:
            self._buf += data
            self._received += len(data)
            self._run(eof=False)
        return self._take_events()

    def close(self) -> tuple[list[Event], IndexedMessage]:
        """End of input: the remaining events and the indexed message."""
        if self._closed:
            raise RuntimeError("close() called twice")
        self._closed = True
        self._run(eof=True)
        end = self._received
        if self._leaf is not None:
            self._finish_leaf(end)
        while self._open:
            self._close_node(self._open.pop(), end)
        self._hold = None
        self._flush(end)
        return self._take_events(), self._result()

    def statistics(self) -> IndexerStatistics:
        """Counters for monitoring and for tests of the memory bound."""
        return IndexerStatistics(
            received=self._received,
            buffered=len(self._buf),
            parts=self._part_count,
            large_bodies=len(self._large),
            depth=len(self._open),
        )

    # -- driving ------------------------------------------------------------------

    def _take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def _run(self, eof: bool) -> None:
        while True:
            if self._state == _HEADER:
                progressed = self._step_header(eof)
            elif self._state in (_LEAF, _SCAN):
                progressed = self._step_body(eof)
            else:
                progressed = False
            if not progressed:
                break
        self._flush(self._pos)

    # -- buffer bookkeeping ---------------------------------------------------------

    def _drop(self, n: int) -> None:
        """Forget the first `n` buffered bytes (already emitted)."""
        if n <= 0:
            return
        buf = self._buf
        self._lf_flushed += buf.count(b"\n", 0, n)
        self._last_flushed = buf[n - 1]
        del buf[:n]
        self._base += n

    def _flush(self, upto: int) -> None:
        """Emit buffered bytes before `upto` as skeleton bytes."""
        if self._hold is not None:
            upto = min(upto, self._hold)
        n = upto - self._base
        if n > 0:
            self._events.append(SkeletonBytes(bytes(self._buf[:n])))
            self._drop(n)

    def _lf_before(self, pos: int) -> int:
        """Number of LF bytes in [0, pos); `pos` must not be before the buffer."""
        # Calls come in stream order, so count on from the previous answer instead of
        # from the buffer start (which made many small parts in one chunk quadratic).
        mark, count = self._lf_mark
        if mark < self._base or pos < mark:
            mark, count = self._base, self._lf_flushed
        count += self._buf.count(b"\n", mark - self._base, pos - self._base)
        self._lf_mark = (pos, count)
        return count

    def _byte_before(self, pos: int) -> int:
        """The byte at pos - 1 (pos >= base), or -1 at the start of the message."""
        if pos > self._base:
            return self._buf[pos - 1 - self._base]
        return self._last_flushed

    # -- header blocks ------------------------------------------------------------

    def _start_header(self, node: Node) -> None:
        self._state = _HEADER
        cap = min(self._limits.max_header_bytes, max(self._header_budget, 0))
        self._header = _HeaderBlock(cap)
        self._first_line = True
        self._long_line = False
        self._prev_eol = 0
        self._pos = node.header_start

    def _step_header(self, eof: bool) -> bool:
        buf = self._buf
        node = self._open[-1]
        while True:
            base = self._base
            p = self._pos - base
            if self._long_line:
                nl = buf.find(b"\n", p)
                end = len(buf) if nl < 0 else nl + 1
                self._header.extend(bytes(buf[p:end]))
                self._pos = base + end
                if nl < 0:
                    if eof:
                        self._begin_body(node, self._pos)
                        return True
                    return False
                self._long_line = False
                self._prev_eol = 2 if end >= 2 and buf[end - 2] == _CR else 1
                continue
            nl = buf.find(b"\n", p)
            if nl < 0:
                rest = len(buf) - p
                if eof:
                    if rest == 0:
                        self._begin_body(node, self._pos)
                        return True
                    line = bytes(buf[p:])
                elif rest > _LONG_HEADER_LINE:
                    line = bytes(buf[p:])
                    kind = _classify(line, self._first_line and node is self._root)
                    if kind == _OTHER:
                        self._begin_body(node, self._pos)
                        return True
                    self._add_header_line(line, kind)
                    self._pos = base + len(buf)
                    self._long_line = True
                    return False
                else:
                    return False
            else:
                line = bytes(buf[p : nl + 1])
            if self._bounds and line[:2] == b"--":
                match = self._match_delimiter(line)
                if match is not None:
                    start = self._pos
                    # The line end before a delimiter belongs to it (RFC 2046 §5.1.1).
                    eol_start = start - self._prev_eol if start > node.header_start else start
                    self._header_done(node, start)
                    node.body_end = start
                    self._on_delimiter(eol_start, start + len(line), *match)
                    return True
            if line == b"\r\n" or line == b"\n":
                self._pos += len(line)
                self._begin_body(node, self._pos)
                return True
            kind = _classify(line, self._first_line and node is self._root)
            if kind == _OTHER:
                # RFC 5322 §2.1 wants an empty line here; like Python's email package we
                # start the body at the first line that is not a header field.
                self._begin_body(node, self._pos)
                return True
            self._add_header_line(line, kind)
            self._pos += len(line)
            self._prev_eol = 2 if line.endswith(b"\r\n") else (1 if line.endswith(b"\n") else 0)
            if nl < 0:  # the last line of the input, without a line end
                self._begin_body(node, self._pos)
                return True

    def _add_header_line(self, line: bytes, kind: str) -> None:
        self._first_line = False
        if kind == _FIELD:
            self._header.start_field(line)
        elif kind == _CONTINUATION:
            self._header.extend(line)

    def _header_done(self, node: Node, header_end: int) -> None:
        """The header block of `node` ended at `header_end`: parse its fields."""
        node.header_end = header_end
        node.lf_body_start = self._lf_before(header_end)
        block = self._header
        self._header_budget -= block.size
        if block.truncated:
            self._truncated = True
        fields = [split_field(bytes(raw)) for raw in block.fields]
        self._header = _HeaderBlock(0)
        node.apply_fields(fields)
        if node is self._root:
            self._root_fields = fields

    # -- bodies ---------------------------------------------------------------------

    def _begin_body(self, node: Node, body_start: int) -> None:
        self._header_done(node, body_start)
        self._pos = body_start
        limits = self._limits
        if node.content_type == "multipart":
            boundary = node.param("boundary")
            if (
                boundary
                and len(boundary) <= limits.max_boundary_length
                and node.depth < limits.max_depth
            ):
                node.kind = MULTIPART
                if node.is_root:
                    node.section = node.parent_section
                delimiter = b"--" + boundary.encode("utf-8", errors="replace")
                self._bounds.append((delimiter, node))
                self._update_delimiter_limit()
                self._enter_scan(body_start)
                return
            node.opaque = True
            self._truncated = self._truncated or node.depth >= limits.max_depth
        elif node.content_type == "message" and node.content_subtype in ENCAPSULATING:
            if node.encoding not in _IDENTITY_ENCODINGS:
                node.opaque = True  # an encoded message is not parsed (RFC 2046 §5.2.1)
            elif node.depth >= limits.max_depth or self._part_count >= limits.max_parts:
                node.opaque = True
                self._truncated = True
            else:
                if node.is_root:
                    node.section = (*node.parent_section, 1)
                node.kind = MESSAGE
                inner = Node(
                    body_start,
                    depth=node.depth + 1,
                    section=node.section,
                    default_type=("text", "plain"),
                    is_root=True,
                )
                inner.section = (*node.section, 1)
                node.message = inner
                self._part_count += 1
                self._open.append(inner)
                self._start_header(inner)
                return
        if node.is_root:
            node.section = (*node.parent_section, 1)
        self._begin_leaf(node, body_start)

    def _begin_leaf(self, node: Node, body_start: int) -> None:
        self._leaf = node
        self._body_done = body_start
        self._large_sha = None
        self._hold = body_start
        self._extractor = None
        if node.content_type == "text" and self._budget.remaining > 0:
            html_markup = node.content_subtype in ("html", "xhtml+xml")
            charset = node.param("charset")
            self._extractor = TextExtractor(node.encoding, charset or "", html_markup, self._budget)
        self._enter_scan(body_start)
        self._state = _LEAF

    def _enter_scan(self, start: int) -> None:
        self._state = _SCAN
        self._scan_pos = start
        self._check_at = start
        self._pos = start

    def _consume_body(self, upto: int) -> None:
        """Bytes of the current leaf body before `upto` are final: process them."""
        start = self._body_done
        if upto <= start:
            return
        node = self._leaf
        assert node is not None
        base = self._base
        if self._extractor is not None:
            self._extractor.feed(bytes(self._buf[start - base : upto - base]))
        self._body_done = upto
        self._pos = upto
        if self._large_sha is not None:
            data = bytes(self._buf[: upto - base])
            self._large_sha.update(data)
            self._events.append(LargeBodyBytes(data))
            self._drop(upto - base)
        elif upto - node.header_end > self._limits.large_body_threshold:
            self._hold = None
            self._flush(node.header_end)
            self._events.append(LargeBodyStart(node.section, node.header_end))
            data = bytes(self._buf[: upto - self._base])
            self._large_sha = hashlib.sha256(data)
            self._events.append(LargeBodyBytes(data))
            self._drop(len(data))

    def _finish_leaf(self, end: int) -> None:
        node = self._leaf
        assert node is not None
        self._consume_body(end)
        node.body_end = max(end, node.header_end)
        if self._large_sha is not None:
            digest = self._large_sha.hexdigest()
            size = node.body_end - node.header_end
            node.sha256 = digest
            self._events.append(LargeBodyEnd(node.section, size, digest))
            self._large.append(LargeBody(node.section, node.header_end, size, digest))
            self._large_sha = None
        if self._extractor is not None:
            extracted = self._extractor.close()
            if extracted:
                self._texts.append(extracted)
            self._extractor = None
        self._hold = None
        self._leaf = None

    def _step_body(self, eof: bool) -> bool:
        found = self._scan(eof)
        if isinstance(found, tuple):
            eol_start, next_line, level, closing = found
            if self._leaf is not None:
                self._finish_leaf(eol_start)
            self._on_delimiter(eol_start, next_line, level, closing)
            return True
        safe = max(found, self._pos)
        if self._leaf is not None:
            self._consume_body(safe)
        self._pos = safe
        if eof:
            if self._leaf is not None:
                self._finish_leaf(self._received)
            self._pos = self._received
            self._state = _DONE
        return False

    # -- delimiters ---------------------------------------------------------------

    def _update_delimiter_limit(self) -> None:
        delimiters = [d for d, _ in self._bounds]
        longest = max((len(d) for d in delimiters), default=0)
        self._max_delim_line = longest + 2 + _MAX_PADDING + 2
        prefix = _common_prefix(delimiters) if delimiters else b"--"
        self._pattern = b"\n" + prefix

    def _match_delimiter(self, line: bytes) -> tuple[int, bool] | None:
        """(level, closing) if `line` is a delimiter line of an active boundary."""
        if line.endswith(b"\r\n"):
            line = line[:-2]
        elif line.endswith(b"\n"):
            line = line[:-1]
        line = line.rstrip(b" \t")
        bounds = self._bounds
        for level in range(len(bounds) - 1, -1, -1):
            delimiter = bounds[level][0]
            if line.startswith(delimiter):
                rest = line[len(delimiter) :]
                if not rest:
                    return level, False
                if rest == b"--":
                    return level, True
        return None

    def _match_at(self, p: int, eof: bool) -> object:
        """Match a delimiter line starting at buffer index `p`.

        Returns None (not a delimiter), _MORE (need more input), or
        (level, closing, index just after the line).
        """
        buf = self._buf
        avail = len(buf) - p
        if avail < 2:
            if eof or (avail == 1 and buf[p] != _DASH):
                return None
            return _MORE
        if buf[p] != _DASH or buf[p + 1] != _DASH:
            return None
        limit = self._max_delim_line
        nl = buf.find(b"\n", p, p + limit)
        if nl < 0:
            if avail >= limit:
                return None
            if not eof:
                head = bytes(buf[p:])
                for delimiter, _ in self._bounds:
                    if head[: len(delimiter)] == delimiter[: len(head)]:
                        return _MORE
                return None
            end = len(buf)
        else:
            end = nl + 1
        match = self._match_delimiter(bytes(buf[p:end]))
        if match is None:
            return None
        return match[0], match[1], end

    def _scan(self, eof: bool) -> tuple[int, int, int, bool] | int:
        """Find the next delimiter line from the scan position.

        Returns (eol_start, next_line_start, level, closing) as absolute offsets, or
        the absolute offset before which no byte can belong to a delimiter.
        """
        buf = self._buf
        base = self._base
        if not self._bounds:
            return base + len(buf)
        if self._check_at is not None:
            # A region starts at a line start: a delimiter may open it directly.
            p = self._check_at - base
            match = self._match_at(p, eof)
            if match is _MORE:
                return self._check_at
            self._check_at = None
            if isinstance(match, tuple):
                level, closing, end = match
                return base + p, base + end, level, closing
        i = max(self._scan_pos - base, 0)
        pattern = self._pattern
        while True:
            j = buf.find(pattern, i)
            if j < 0:
                if eof:
                    self._scan_pos = base + len(buf)
                    return base + len(buf)
                # A match not yet complete starts after len - len(pattern); its LF
                # may be preceded by a CR that belongs to the delimiter.
                self._scan_pos = base + max(i, len(buf) - len(pattern) + 1)
                return base + max(len(buf) - len(pattern), 0)
            eol_start = j - 1 if j > 0 and buf[j - 1] == _CR else j
            match = self._match_at(j + 1, eof)
            if match is _MORE:
                self._scan_pos = base + j
                return base + eol_start
            if isinstance(match, tuple):
                level, closing, end = match
                self._scan_pos = base + end
                return base + eol_start, base + end, level, closing
            i = j + 1

    def _on_delimiter(self, eol_start: int, next_line: int, level: int, closing: bool) -> None:
        target = self._bounds[level][1]
        # Everything open inside the target multipart ends here (a missing closing
        # delimiter of an inner multipart is implied by the outer one).
        while self._open and self._open[-1] is not target:
            self._close_node(self._open.pop(), eol_start)
        del self._bounds[level + 1 :]
        self._pos = next_line
        if closing:
            self._bounds.pop()
            self._update_delimiter_limit()
            self._enter_scan(next_line)  # the epilogue
            return
        if self._part_count >= self._limits.max_parts:
            self._truncated = True
            self._enter_scan(next_line)  # skip this part: not recorded
            return
        child = Node(
            next_line,
            depth=target.depth + 1,
            section=(*target.section, len(target.children) + 1),
            default_type=target.child_default_type(),
            is_root=False,
        )
        target.children.append(child)
        self._part_count += 1
        self._open.append(child)
        self._start_header(child)

    def _close_node(self, node: Node, end: int) -> None:
        """Fix the end of `node`'s body (if not already) and count its lines."""
        if node.header_end < 0:
            self._header_done(node, max(end, node.header_start))
        if node.body_end < 0:
            node.body_end = max(end, node.header_end)
        if node.kind == LEAF and (
            node.content_type == "multipart"
            or (node.content_type == "message" and node.content_subtype in ENCAPSULATING)
        ):
            node.opaque = True
        size = node.body_end - node.header_end
        lines = self._lf_before(node.body_end) - node.lf_body_start
        if size > 0 and self._byte_before(node.body_end) != _LF:
            lines += 1
        node.lines = lines

    # -- result ---------------------------------------------------------------------

    def _result(self) -> IndexedMessage:
        root = self._root.freeze()
        fields = self._root_fields
        envelope = self._root.envelope
        assert envelope is not None
        subject = first_field(fields, "subject")
        return IndexedMessage(
            size=self._received,
            root=root,
            envelope=envelope,
            headers=[(name, decode_header(value)) for name, value in fields],
            text="\n".join(self._texts),
            date=parse_date(first_field(fields, "date")),
            message_id=next(iter(message_ids(first_field(fields, "message-id"))), None),
            in_reply_to=message_ids(first_field(fields, "in-reply-to")),
            references=message_ids(first_field(fields, "references")),
            subject=decode_header(subject) if subject is not None else "",
            large_bodies=list(self._large),
            lines=root.lines,
            part_count=self._part_count,
            truncated=self._truncated or self._budget.exhausted,
        )


def parse_message(data: bytes, limits: IndexerLimits | None = None) -> IndexedMessage:
    """Index a whole message held in memory (feeds a `MessageIndexer`)."""
    indexer = MessageIndexer(limits)
    indexer.feed(data)
    _events, message = indexer.close()
    return message
