"""CATENATE (RFC 4469): an APPEND whose message is made of TEXT literals and IMAP
URLs (RFC 5092) naming messages, or parts of messages, of the same user.

Every URL of every message of the command is checked first (RFC 4469 §5: a bad
one fails the APPEND with NO [BADURL url], and nothing is appended); the message
is then streamed into the store's ingest piece by piece, URL data read from the
store in bounded chunks, so that a catenated message is never whole in memory
(unless a TEXT part sent as binary has NUL octets: see ``_needs_encoding``). Its
size is known before a byte is written and is held to the same limit as an
APPEND literal (RFC 4469 §5: NO [TOOBIG]).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import attrs
import trio

from duck.mime.binary import encode_binary_parts
from duck.mime.sections import SectionSpec, section_range
from duck.store import DeliveryTarget, Mailbox, MessageRecord, NotFound, Store, StoreError

from ..errors import CommandError, no
from ..grammar.cmd_append import Catenate, CatText
from ..grammar.fetch_items import BodySection
from ..grammar.imap_url import ImapUrl, ImapUrlError, parse_imap_url
from ..grammar.resp_codes import OtherCode
from ..namespaces import open_mailbox

if TYPE_CHECKING:
    from duck.store import Delivered

    from ..context import CommandContext


@attrs.frozen
class UrlPiece:
    """The bytes ``[start, end)`` of a stored message, or ``data`` already cut out
    (HEADER.FIELDS filters its header block: a few KB at most)."""

    record: MessageRecord
    start: int = 0
    end: int = 0
    data: bytes | None = None

    @property
    def size(self) -> int:
        """Octets this piece adds to the message."""
        return len(self.data) if self.data is not None else self.end - self.start


Piece = CatText | UrlPiece

#: URL parts one APPEND may hold: each costs a store read before anything is
#: written, and a client has no need for more than a few.
MAX_URLS = 100


def badurl(url: str, why: str) -> CommandError:
    """RFC 4469 §5: NO [BADURL url]; the code carries the URL as the client sent it
    (percent-encoding what a response code cannot hold)."""
    shown = "".join(ch if 0x20 < ord(ch) < 0x7F and ch != "]" else f"%{ord(ch):02X}"
                    for ch in url)[:1000]
    return CommandError(f"bad URL: {why}", code=OtherCode("BADURL", shown or "%20"))


def _spec(section: BodySection | None) -> SectionSpec:
    if section is None:
        return SectionSpec()
    return SectionSpec(part=section.part,
                       text=section.text.value if section.text is not None else None,
                       fields=tuple(f.upper() for f in section.fields))


class Resolver:
    """Resolves the URLs of one APPEND, with one look-up per mailbox named."""

    def __init__(self, s: CommandContext) -> None:
        self.s = s
        self._mailboxes: dict[str, Mailbox] = {}
        self._count = 0

    async def _mailbox(self, url: str, parsed: ImapUrl) -> Mailbox:
        s = self.s
        assert s.user is not None
        if not parsed.server:
            # A relative URL (";UID=n") names a message of the selected mailbox
            # (which may be another owner's: it is taken as it is, not by name).
            if s.view is None:
                raise badurl(url, "a relative URL needs a selected mailbox")
            if s.view.rights is not None and "r" not in s.view.rights:
                raise badurl(url, "no such mailbox")
            return s.view.mailbox
        assert parsed.mailbox is not None
        path = parsed.mailbox
        if path not in self._mailboxes:
            try:
                # RFC 4314 §4: reading another owner's message needs r.
                self._mailboxes[path] = (await open_mailbox(s, path, "r"))[0]
            except (NotFound, CommandError):
                raise badurl(url, "no such mailbox") from None
        return self._mailboxes[path]

    async def resolve(self, url: str) -> UrlPiece:
        """The stored bytes ``url`` names (BADURL when it names none of this user's)."""
        s = self.s
        assert s.user is not None
        self._count += 1
        if self._count > MAX_URLS:
            raise no(f"at most {MAX_URLS} URL parts per APPEND", "LIMIT")
        try:
            parsed = parse_imap_url(url)
        except ImapUrlError as exc:
            raise badurl(url, str(exc)) from None
        if parsed.urlauth:
            raise badurl(url, "URLAUTH is not supported")
        # RFC 5092 §3: a URL without a user name means anonymous access, which is
        # not this user's; another server's messages are not ours to read.
        if parsed.host is not None:
            if parsed.user is None or parsed.user.lower() != s.user.username.lower():
                raise badurl(url, "the URL names another user")
            if parsed.host.lower() != s.config.hostname.lower():
                raise badurl(url, "the URL names another server")
        mailbox = await self._mailbox(url, parsed)
        return await locate(s.store, mailbox, parsed, url)


async def locate(store: Store, mailbox: Mailbox, parsed: ImapUrl, url: str) -> UrlPiece:
    """The stored bytes a parsed URL names in ``mailbox`` (BADURL when none)."""
    if parsed.uidvalidity is not None and parsed.uidvalidity != mailbox.uid_validity:
        raise badurl(url, "UIDVALIDITY does not match")
    found = await store.messages.fetch(mailbox.id, [parsed.uid], ["structure", "content"])
    if not found or found[0].structure is None:
        raise badurl(url, "no such message")
    rec = found[0]
    spec = _spec(parsed.section)
    window = parsed.partial
    if spec.filters_fields:
        part = None if window is None else (window[0], window[1] or 2**32 - 1)
        data = await store.messages.read_section(rec, spec, part)
        if parsed.section is not None and parsed.section.part and not data:
            raise badurl(url, "no such section")
        return UrlPiece(rec, data=data)
    bounds = section_range(rec.structure, spec)  # type: ignore[arg-type]
    if bounds is None:
        raise badurl(url, "no such section")
    lo, hi = bounds
    if window is not None:
        # RFC 5092 §6 ";PARTIAL=": past the end is empty, not an error (as
        # BODY[]<start.length> is, RFC 3501 §6.4.5).
        start, length = window
        lo, hi = min(lo + start, hi), hi if length is None else min(lo + start + length, hi)
    return UrlPiece(rec, lo, hi)


async def resolve_all(s: CommandContext, catenate: Catenate, resolver: Resolver,
                      limit: int) -> list[Piece]:
    """The pieces of one catenated message, checked: BADURL, or TOOBIG past ``limit``."""
    pieces: list[Piece] = []
    total = 0
    for part in catenate.parts:
        piece: Piece = part if isinstance(part, CatText) else await resolver.resolve(part.url)
        total += len(piece.data) if isinstance(piece, CatText) else piece.size
        if total > limit:
            raise no(f"catenated message larger than {limit} octets", "TOOBIG")
        pieces.append(piece)
    return pieces


def _needs_encoding(pieces: list[Piece]) -> bool:
    """RFC 3516 §4.3 as APPEND applies it: NUL octets from a binary TEXT part are
    kept base64-encoded, which needs the whole message (bounded by the limit)."""
    return any(isinstance(p, CatText) and p.binary and b"\x00" in p.data for p in pieces)


async def _chunks(s: CommandContext, pieces: list[Piece]) -> AsyncIterator[bytes]:
    messages = s.store.messages
    for piece in pieces:
        data = piece.data
        if data is not None:
            yield data
        elif isinstance(piece, UrlPiece) and piece.end > piece.start:
            async for chunk in messages.stream(piece.record, piece.start, piece.end):
                yield chunk


async def store(s: CommandContext, pieces: list[Piece], target: DeliveryTarget,
                limit: int) -> Delivered:
    """Stream the catenated message into the store and deliver it to ``target``."""
    messages = s.store.messages
    ingest = messages.ingest(max_size=limit)
    try:
        if _needs_encoding(pieces):
            whole = b"".join([chunk async for chunk in _chunks(s, pieces)])
            await ingest.write(encode_binary_parts(whole))
        else:
            async for chunk in _chunks(s, pieces):
                await ingest.write(chunk)
        ingested = await ingest.finish()
    except BaseException:
        # Also when cancelled: the bodies already written must be given back.
        with trio.CancelScope(shield=True):
            await ingest.abort()
        raise
    result = (await messages.deliver(ingested, [target]))[0]
    if isinstance(result, StoreError):
        raise result
    return result
