"""FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8; CONDSTORE RFC 7162 §3.1.4; BINARY
RFC 3516; OBJECTID RFC 8474; PREVIEW RFC 8970).

Flags, UIDs and modseqs come from the session's view; everything else from the
store in one query per batch of messages (docs/architecture.md), with only the fields asked
for. Section data is read by byte range; large ranges are streamed to the client
from the store, never held whole.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from duck.mime import transfer
from duck.mime.binary import binary_body, binary_entity
from duck.mime.preview import READ_MAX, make_preview, preview_part
from duck.mime.sections import SectionSpec, resolve_part, section_range
from duck.store import JournalEntry, MessageRecord, StoreError

from .. import convert, render
from ..errors import bad, no
from ..grammar.cmd_message import Fetch
from ..grammar.encode import LiteralBody
from ..grammar.fetch_items import BinarySize, BodySection, FetchAttr, FetchItem, SectionText
from ..grammar.resp_fetch import FetchRows, FetchTemplate, template_for
from ..grammar.responses import VanishedData
from ..view import InvalidSequence
from .registry import command
from .states import SELECTED

if TYPE_CHECKING:
    from ..context import CommandContext

log = logging.getLogger(__name__)

#: Items the fast path serves: from the view, plain fields, and renderings.
_FAST_ITEMS = frozenset({
    FetchAttr.UID, FetchAttr.FLAGS, FetchAttr.MODSEQ, FetchAttr.RFC822_SIZE,
    FetchAttr.INTERNALDATE, FetchAttr.ENVELOPE, FetchAttr.BODY, FetchAttr.BODYSTRUCTURE,
})
#: Most renderings made at FETCH time saved per command (the rest at the next one).
FILL_MAX = 2000
#: Most UIDs named in one store query (the store's limit).
MAX_FETCH = 100_000
#: FETCH responses sent per write.
FAST_SEND = 500

#: Messages per store query when message content is fetched (memory bound).
CONTENT_BATCH = 50
#: Messages per store query otherwise.
META_BATCH = 2000
#: Section data larger than this is streamed to the client instead of read whole.
STREAM_THRESHOLD = 256 * 1024

_FIELDS_OF: dict[FetchAttr, tuple[str, ...]] = {
    FetchAttr.INTERNALDATE: ("internal_date",),
    FetchAttr.RFC822_SIZE: ("size",),
    FetchAttr.ENVELOPE: ("envelope",),
    FetchAttr.BODY: ("structure",),
    FetchAttr.BODYSTRUCTURE: ("structure",),
    FetchAttr.RFC822: ("structure", "content"),
    FetchAttr.RFC822_HEADER: ("structure", "content"),
    FetchAttr.RFC822_TEXT: ("structure", "content"),
    FetchAttr.EMAILID: ("emailid",),
    FetchAttr.THREADID: ("threadid",),
    FetchAttr.SAVEDATE: ("savedate",),
    FetchAttr.PREVIEW: ("structure", "content"),
}
#: RFC822.* are the old names of BODY sections (RFC 3501 §6.4.5).
_RFC822_SECTION = {
    FetchAttr.RFC822: BodySection(),
    FetchAttr.RFC822_HEADER: BodySection(text=SectionText.HEADER, peek=True),
    FetchAttr.RFC822_TEXT: BodySection(text=SectionText.TEXT),
}


def _fields(items: Iterable[FetchItem]) -> set[str]:
    fields: set[str] = set()
    for item in items:
        if isinstance(item, BodySection | BinarySize):
            fields.update(("structure", "content"))
        elif isinstance(item, FetchAttr):
            fields.update(_FIELDS_OF.get(item, ()))
    return fields


@attrs.frozen
class _Static:
    """What depends only on a FETCH's list of items (and UTF8=ACCEPT): worked out
    once per process for each list, as clients repeat a few (working it out was
    ~10% of a one-message FETCH's CPU). Items are frozen values."""

    #: The record fields they read.
    fields: frozenset[str]
    #: Whether one sets \Seen; whether the fast path serves them all (each once).
    sets_seen: bool
    fast: bool
    #: The finders of the items rendered at delivery (render.py), their renderings'
    #: names, and each body section's response key.
    finders: dict[FetchAttr, Any]
    renderings: tuple[str, ...]
    response_keys: dict[BodySection, Any]


@functools.lru_cache(maxsize=1024)
def _static(items: tuple[FetchItem, ...], utf8: bool) -> _Static:
    finders = {k: render.lookup_for(k, utf8=utf8)
               for k in items if isinstance(k, FetchAttr) and k in render.NAMES}
    return _Static(
        fields=frozenset(_fields(items)),
        sets_seen=any(_sets_seen(i) for i in items),
        fast=_FAST_ITEMS.issuperset(items) and len(set(items)) == len(items),
        finders=finders,
        renderings=tuple(sorted({n for k in finders
                                 for n in render.NAMES[k][: 2 if utf8 else 1]})),
        response_keys={k: k.response_key() for k in items if isinstance(k, BodySection)})


def _sets_seen(item: FetchItem) -> bool:
    if isinstance(item, BodySection):
        return not item.peek
    return item in (FetchAttr.RFC822, FetchAttr.RFC822_TEXT)


@functools.lru_cache(maxsize=1024)
def _spec(section: BodySection) -> SectionSpec:
    return SectionSpec(
        part=section.part,
        text=section.text.value if section.text is not None else None,
        fields=tuple(f.upper() for f in section.fields),
    )


def _aware(value: dt.datetime | None) -> dt.datetime:
    # RFC 3501 §2.3.3 lets the server pick the zone; the store keeps UTC instants,
    # so the zone the client gave at APPEND is not repeated back.
    if value is None:
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _narrowed(found: tuple[int, int], partial: tuple[int, int | None] | None
              ) -> tuple[int, int]:
    """A section's octets ``found`` narrowed to its ``<start.length>``."""
    lo, hi = found
    if partial is not None:
        lo, hi = min(lo + partial[0], hi), min(lo + partial[0] + (partial[1] or 0), hi)
    return lo, hi


#: What a getter gives when its value needs an await (``_Plan.build``).
_LATER = object()

#: One item's way to its value: (response key, the value from (uid, record) at
#: once, or ``_LATER``, or None (always later), whether it needs the record, and the
#: coroutine function that makes it when it cannot be made at once (None: never)).
_Getter = tuple[Any, Callable[[int, Any], Any] | None, bool,
                Callable[[int, Any], Awaitable[Any]] | None]


class _Plan:
    """One FETCH's way to each item's value (``_Builder.plan``).

    Its makers are closures over the builder, so the builder does not keep its
    plan: a builder holding it was a reference cycle per FETCH (~20 objects) left
    to the cyclic collector, and under imaptest most of what the collector's
    young-generation passes found."""

    __slots__ = ("bare_keys", "getters", "keys")

    def __init__(self, getters: list[_Getter]) -> None:
        self.getters = getters
        #: The response's keys, in order, for a message with its record and without.
        self.keys = tuple(key for key, _, _, _ in getters)
        self.bare_keys = tuple(key for key, _, needs, _ in getters if not needs)

    async def build(self, uid: int, rec: MessageRecord | None) -> list[Any]:
        """One message's values, in the order of ``keys`` (``bare_keys`` when there
        is no record: those that need it left out)."""
        out: list[Any] = []
        for _, get, needs_record, later in self.getters:
            if rec is None and needs_record:
                continue
            value = _LATER if get is None else get(uid, rec)
            if value is _LATER:
                assert later is not None
                value = await later(uid, rec)
            out.append(value)
        return out


class _Builder:
    """Builds one message's FETCH items."""

    def __init__(self, s: CommandContext, items: list[FetchItem],
                 static: _Static | None = None) -> None:
        self.s = s
        self.items = items
        static = static or _static(tuple(items), s.utf8)
        #: ENVELOPE/BODY/BODYSTRUCTURE as stored at delivery (render.py), when asked;
        #: the names of those renderings; the body sections' response keys.
        self.finders = static.finders
        self.renderings = static.renderings
        self.response_keys = static.response_keys

    def plan(self) -> _Plan:
        """A maker per item, chosen once: choosing it for every message of a range
        was a chain of comparisons per item, a good part of a FETCH's CPU."""
        return _Plan([self._getter(item) for item in self.items])

    def _rendered(self, item: FetchAttr, rec: MessageRecord) -> Any:
        """The stored rendering of ``item``, or None (older messages: made here)."""
        return self.finders[item](rec.renderings)

    def _getter(self, item: FetchItem) -> _Getter:
        """How ``item``'s value is made for each message: decided once per command."""
        view = self.s.view
        assert view is not None
        if item is FetchAttr.UID:
            return item, lambda uid, rec: uid, False, None
        if item is FetchAttr.FLAGS:
            return item, lambda uid, rec: view.flags_with_recent(uid), False, None
        if item is FetchAttr.MODSEQ:
            return item, lambda uid, rec: view.modseqs.get(uid, 1), False, None
        if item is FetchAttr.INTERNALDATE:
            return item, lambda uid, rec: _aware(rec.internal_date), True, None
        if item is FetchAttr.SAVEDATE:
            return item, lambda uid, rec: _aware(rec.savedate) if rec.savedate else None, \
                True, None
        if item is FetchAttr.RFC822_SIZE:
            return item, lambda uid, rec: int(rec.size or 0), True, None
        if item is FetchAttr.ENVELOPE:
            return item, lambda uid, rec: self._envelope(rec), True, None
        if item in (FetchAttr.BODY, FetchAttr.BODYSTRUCTURE):
            assert isinstance(item, FetchAttr)
            return item, lambda uid, rec: self._body(item, rec), True, None
        if item is FetchAttr.EMAILID:
            return item, lambda uid, rec: rec.emailid or f"M{rec.id}", True, None
        if item is FetchAttr.THREADID:
            return item, lambda uid, rec: rec.threadid, True, None
        if item is FetchAttr.PREVIEW:
            return item, None, True, lambda uid, rec: self.preview(rec)
        if item in _RFC822_SECTION or (isinstance(item, BodySection) and not item.binary):
            key: FetchItem = item
            if isinstance(item, BodySection):
                key, section = self.response_keys[item], item
            else:
                section = _RFC822_SECTION[item]
            spec = _spec(section)  # (once per command: the closures keep it)
            return (key, lambda uid, rec: self.section_now(rec, section, spec), True,
                    lambda uid, rec: self.section(rec, section, spec))
        if isinstance(item, BodySection):
            return self.response_keys[item], None, True, lambda uid, rec: self.binary(rec, item)
        assert isinstance(item, BinarySize)
        whole = BodySection(item.part, binary=True)

        async def size(uid: int, rec: MessageRecord) -> int:
            data = await self.binary(rec, whole)
            return data.size if isinstance(data, LiteralBody) else len(data or b"")

        return item, None, True, size

    def _envelope(self, rec: MessageRecord) -> Any:
        done = self._rendered(FetchAttr.ENVELOPE, rec)
        if done is None:
            assert rec.envelope is not None
            done = convert.envelope(rec.envelope)
        return done

    def _body(self, item: FetchAttr, rec: MessageRecord) -> Any:
        done = self._rendered(item, rec)
        if done is None:
            assert rec.structure is not None
            done = convert.body(rec.structure, extensible=item is FetchAttr.BODYSTRUCTURE)
        return done

    def _locate(self, rec: MessageRecord, section: BodySection, spec: SectionSpec
                ) -> tuple[Any, tuple[int, int] | None]:
        """Where ``section`` is: (its value, None) when that needs no read (absent,
        or a large range streamed later), else (None, the octets to read) for a
        range, or (None, None) for header fields (``section.partial`` then applies)."""
        if not spec.filters_fields and rec.structure is not None:
            found = section_range(rec.structure, spec)
            if found is None:
                return b"", None
            lo, hi = _narrowed(found, section.partial)
            if hi - lo > STREAM_THRESHOLD:
                return self._streamed(rec, lo, hi), None
            return None, (lo, hi)
        return None, None

    @staticmethod
    def _window(section: BodySection) -> tuple[int, int] | None:
        partial = section.partial
        return None if partial is None else (partial[0], partial[1] or 0)

    def section_now(self, rec: MessageRecord, section: BodySection, spec: SectionSpec) -> Any:
        """``section`` (whose spec is ``spec``) when it needs no await (its bytes in the
        message's inline skeleton, or a large range streamed later), else ``_LATER``."""
        done, span = self._locate(rec, section, spec)
        if done is not None:
            return done
        messages = self.s.store.messages
        data = (messages.read_now(rec, *span) if span is not None
                else messages.read_section_now(rec, spec, self._window(section)))
        return _LATER if data is None else data

    async def section(self, rec: MessageRecord, section: BodySection,
                      spec: SectionSpec) -> bytes | LiteralBody:
        """BODY[section]<partial> (whose spec is ``spec``): read, or streamed when
        large and unfiltered."""
        done, span = self._locate(rec, section, spec)
        if done is not None:
            result: bytes | LiteralBody = done
            return result
        messages = self.s.store.messages
        if span is not None:
            return await messages.read(rec, *span)
        return await messages.read_section(rec, spec, self._window(section))

    def _streamed(self, rec: MessageRecord, start: int, end: int) -> LiteralBody:
        messages = self.s.store.messages

        def source() -> AsyncIterator[bytes]:
            return messages.stream(rec, start, end)

        return LiteralBody(end - start, source)

    async def preview(self, rec: MessageRecord) -> str:
        """RFC 8970 §2: the preview, from the start of the first text part (read up
        to READ_MAX octets); "" for a message without one. It never sets \\Seen."""
        assert rec.structure is not None
        part = preview_part(rec.structure)
        if part is None:
            return ""
        end = min(part.body_end, part.body_start + READ_MAX)
        return make_preview(part, await self.s.store.messages.read(rec, part.body_start, end))

    async def binary(self, rec: MessageRecord, section: BodySection) -> bytes:
        """BINARY[section]<partial> (RFC 3516 §4.2): the section with its transfer
        encoding removed. A leaf's body is decoded; a multipart's or an
        encapsulated message's content keeps its structure with each leaf inside
        decoded (its header then says ``Content-Transfer-Encoding: binary``:
        mime/binary.py); BINARY[] is the whole message so. Decoded in memory:
        BINARY is for parts, not whole mailboxes."""
        assert rec.structure is not None
        root = rec.structure
        messages = self.s.store.messages
        if section.part:
            part = resolve_part(root, section.part)
            if part is None:
                return b""
            raw = await messages.read(rec, part.body_start, part.body_end)
            data = _decoded(binary_body, raw, part, part.body_start)
        else:
            whole = await messages.read(rec, 0, root.body_end)
            data = _decoded(binary_entity, whole, root)
        if section.partial is not None:
            start, length = section.partial
            data = data[start : start + (length or 0)]
        return data


def _decoded(decode: Callable[..., bytes], *args: Any) -> bytes:
    try:
        return decode(*args)
    except transfer.UnknownEncoding as exc:
        # (The name is the message's own bytes: shown in ASCII.)
        name = str(exc).encode("ascii", "backslashreplace").decode("ascii")
        raise no(f"unknown transfer encoding {name}", "UNKNOWN-CTE") from None
    except ValueError:
        raise no("cannot decode the part", "UNKNOWN-CTE") from None


@command(Fetch, SELECTED, expunge_unless_seq=True, needs="r")
async def fetch(s: CommandContext, cmd: Fetch) -> None:
    """FETCH: data from the view and one store query per batch; \\Seen set in one STORE."""
    view = s.view
    assert view is not None
    items = list(cmd.items)
    if cmd.uid:
        # UID FETCH may carry expunges (RFC 3501 §7.4.1): bring the view current first
        # so that the UIDs resolve against the freshest state.
        await s.flush_updates(allow_expunge=True)
        if FetchAttr.UID not in items:
            items.insert(0, FetchAttr.UID)
    if cmd.changedsince is not None or FetchAttr.MODSEQ in items:
        await s.enable_condstore()  # RFC 7162 §3.1
        if FetchAttr.MODSEQ not in items:
            items.append(FetchAttr.MODSEQ)
    try:
        uids = view.resolve(cmd.sequence_set, uid=cmd.uid)
    except InvalidSequence as exc:
        raise bad(str(exc)) from None
    if cmd.vanished:
        # RFC 7162 §3.2.6: UIDs of the set that no longer exist, before the FETCHes.
        if not s.qresync:
            raise bad("VANISHED needs ENABLE QRESYNC")
        top = max(view.uid_max, view.mailbox.uid_next - 1)
        missing = view.missing_uids(cmd.sequence_set.ranges(top))
        if missing is not None:
            await s.send(VanishedData(missing, earlier=True))
    if cmd.changedsince is not None:
        uids = [u for u in uids if view.modseqs.get(u, 0) > cmd.changedsince]
    if not uids:
        return
    seen_now: set[int] = set()
    # RFC 4314 §4: reading a body sets \Seen only for a user with s; on another
    # owner's mailbox it is this reader's own \Seen.
    may_seen = view.rights is None or "s" in view.rights
    static = _static(tuple(items), s.utf8)
    if not view.readonly and may_seen and static.sets_seen:
        unseen = [u for u in uids if "\\Seen" not in view.flags.get(u, ())]
        if unseen and view.seen is not None:
            assert s.user is not None
            await s.store.acl.set_seen(view.mailbox.id, s.user.id, add=unseen)
            seen_now.update(view.set_seen(unseen, True))
        elif unseen:
            result = await s.store.messages.store_flags(view.mailbox.id, unseen, "add",
                                                        ["\\Seen"])
            for change in result.changed:
                view.set_flags(change.uid, change.flags, change.modseq)
                seen_now.add(change.uid)
            s.wrote(view.mailbox.id, [JournalEntry(view.mailbox.id, c.modseq, "flags",
                                                   uid=c.uid, flags=c.flags)
                                      for c in result.changed])
    if not seen_now and static.fast:
        await _fetch_fast(s, items, uids, static)
        return
    fields = static.fields
    builder = _Builder(s, items, static)
    plan = builder.plan()
    with_flags = [*items, FetchAttr.FLAGS] if FetchAttr.FLAGS not in items else items
    flag_plan = _Builder(s, with_flags).plan() if seen_now else plan
    batch = CONTENT_BATCH if "content" in fields else META_BATCH
    flags_asked = FetchAttr.FLAGS in items
    rows = FetchRows(utf8=s.utf8)
    for i in range(0, len(uids), batch):
        chunk = uids[i : i + batch]
        records: dict[int, MessageRecord] = {}
        if fields:
            for found in await s.store.messages.fetch(view.mailbox.id, chunk, sorted(fields),
                                                      builder.renderings):
                records[found.uid] = found
        shown: list[int] = []
        for uid in chunk:
            rec = records.get(uid)
            if fields and rec is None:
                # Expunged by another session since the view last moved: RFC 2180
                # §4.1.2 leaves the choice; its data is gone, so nothing is sent.
                continue
            seq = view.seq_of(uid)
            if seq is None:
                continue
            p = flag_plan if uid in seen_now else plan
            rows.add_values(seq, p.keys if rec is not None else p.bare_keys,
                            await p.build(uid, rec))
            if flags_asked or uid in seen_now:
                shown.append(uid)
        responses = rows.take()
        if responses:
            # Keywords the session was not told of go out in FLAGS first (RFC 3501
            # §7.2.6): one from a message another session added, say.
            flags = view.flags
            await s.send(*view.announce([flags.get(u, ()) for u in shown]), *responses)


async def _fetch_fast(s: CommandContext, items: list[FetchItem], uids: list[int],
                      static: _Static) -> None:
    """FETCH of view data, sizes, dates and rendered ENVELOPE/BODY/BODYSTRUCTURE:
    one query for the whole set, responses serialized by a template and sent as
    the database's batches arrive. Messages without a rendering (stored before
    renderings existed) get one more query per batch, and the renderings made
    then are saved with one bulk write at the end."""
    view = s.view
    assert view is not None
    utf8 = s.utf8
    # (The items' renderings, their names and finders: worked out once per list of
    # items, ``_static``.)
    pre: list[FetchAttr] = list(static.finders)
    finders = list(static.finders.items())
    names = static.renderings
    fields = {f for k, f in ((FetchAttr.RFC822_SIZE, "size"),
                             (FetchAttr.INTERNALDATE, "internal_date")) if k in items}
    # (The process's shared template of these keys, as the general path's rows use.)
    template = template_for(tuple(items), utf8=utf8)  # type: ignore[arg-type]
    flags, modseqs, recent = view.flags, view.modseqs, view.recent
    flags_asked = FetchAttr.FLAGS in items
    getters: list[Any] = []
    for key in items:
        if key is FetchAttr.UID:
            getters.append(lambda uid, rec, got: uid)
        elif key is FetchAttr.FLAGS:
            getters.append(lambda uid, rec, got: (*flags.get(uid, ()), "\\Recent")
                           if uid in recent else flags.get(uid, ()))
        elif key is FetchAttr.MODSEQ:
            getters.append(lambda uid, rec, got: modseqs.get(uid, 1))
        elif key is FetchAttr.RFC822_SIZE:
            getters.append(lambda uid, rec, got: int(rec.size or 0))
        elif key is FetchAttr.INTERNALDATE:
            getters.append(lambda uid, rec, got: _aware(rec.internal_date))
        else:
            getters.append(lambda uid, rec, got, key=key: got[key])
    if not fields and not names:
        # UID, FLAGS and MODSEQ only: the view has them all, the store is not asked.
        if flags_asked:
            defined = view.announce([flags.get(uid, ()) for uid in uids])
            if defined:
                await s.send(*defined)
        seq_of = view.seq_of
        await _send_rows(s, template, (
            template.row(seq, [g(uid, None, None) for g in getters])
            for uid in uids if (seq := seq_of(uid)) is not None))
        return
    fill: dict[int, dict[str, bytes]] = {}
    for start in range(0, len(uids), MAX_FETCH):
        chunk = uids[start : start + MAX_FETCH]
        async for batch in s.store.messages.fetch_batches(view.mailbox.id, chunk,
                                                          sorted(fields), names):
            values: list[dict[Any, Any]] = []
            missing: list[int] = []
            for rec in batch:
                got = {}
                for key, find in finders:
                    value = find(rec.renderings)
                    if value is None:
                        missing.append(rec.uid)
                        break
                    got[key] = value
                values.append(got)
            if missing:
                await _render_missing(s, pre, batch, values, missing, fill)
            if flags_asked:
                # RFC 3501 §7.2.6: keywords not yet in a FLAGS response first.
                defined = view.announce([flags.get(rec.uid, ()) for rec in batch])
                if defined:
                    await s.send(*defined)
            seq_of = view.seq_of
            # A message expunged since the view moved is skipped (RFC 2180 §4.1.2).
            await _send_rows(s, template, (
                template.row(seq, [g(rec.uid, rec, got) for g in getters])
                for rec, got in zip(batch, values, strict=True)
                if (seq := seq_of(rec.uid)) is not None))
    if fill:
        try:
            await s.store.messages.save_renderings(view.mailbox.id, fill)
        except StoreError as exc:  # a cache: the next FETCH renders again
            log.warning("saving renderings failed: %r", exc)


async def _send_rows(s: CommandContext, template: FetchTemplate, rows: Iterable[bytes]) -> None:
    """Send FETCH rows made by ``template``, FAST_SEND of them per write."""
    block: list[bytes] = []
    for row in rows:
        block.append(row)
        if len(block) >= FAST_SEND:
            await s.send(template.block(block))
            block = []
    if block:
        await s.send(template.block(block))


async def _render_missing(s: CommandContext, pre: list[FetchAttr], batch: list[MessageRecord],
                          values: list[dict[Any, Any]], missing: list[int],
                          fill: dict[int, dict[str, bytes]]) -> None:
    """Render the ``pre`` items of the ``missing`` messages from their MIME model (one
    query), into ``values``; keep the renderings for saving (up to FILL_MAX)."""
    view = s.view
    assert view is not None
    sources = sorted({render.SOURCE_FIELD[k] for k in pre})
    found = {r.uid: r for r in await s.store.messages.fetch(view.mailbox.id, missing,
                                                            sources)}
    for rec, got in zip(batch, values, strict=True):
        src = found.get(rec.uid)
        if src is None or len(got) == len(pre):
            continue
        made: dict[str, bytes] = {}
        for key in pre:
            made.update(render.renderings(key, src.envelope, src.structure))
            value = render.lookup(key, made, utf8=s.utf8)
            assert value is not None
            got[key] = value
        if len(fill) < FILL_MAX:
            fill[rec.uid] = made
