"""URLAUTH (RFC 4467): GENURLAUTH, RESETKEY, URLFETCH, with the INTERNAL mechanism.

A client asks GENURLAUTH for a token on a URL of its own mailbox ending in
``;URLAUTH=<access>`` (the "rump"); the token is an HMAC-SHA-256 of the rump with
the mailbox's access key (``store.urlauth``), so a URL cannot be changed without
losing its authorization, and RESETKEY revokes every URL of a mailbox at once
(the key is forgotten; the next GENURLAUTH makes a new one). URLFETCH answers
NIL for anything it will not serve, without saying why (RFC 4467 §5: no hint
of which part of a URL failed).

Access identifiers (§3): ``anonymous`` and ``authuser`` (any logged-in user),
``user+<name>`` (that user only). ``submit+<name>`` names a submission server
acting for that user; duck has none, so such URLs are issued but fetch NIL.

URLAUTH=BINARY (RFC 5524): a URL in parentheses with parameters is answered with
metadata: BODY (the data as stored), BINARY (its transfer encoding removed, NIL
when that cannot be done) and BODYPARTSTRUCTURE (the structure of the data
returned: with BINARY, the decoded data's encoding, size and lines, as RFC 5524
§4's examples show). What BINARY removes is the encoding of the part the URL
names, as FETCH BINARY does (RFC 3516): a multipart's or an encapsulated
message's content carries no encoding of its own (RFC 2045 §6.4) and is returned
as it is, its parts keeping theirs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import TYPE_CHECKING

import attrs

from duck.mime import body_structure, parse_message, transfer
from duck.mime import model as mime
from duck.mime.binary import binary_body, binary_entity
from duck.mime.bodystructure import BodyStructure
from duck.mime.sections import resolve_part
from duck.store import Mailbox, NotFound, User

from .. import convert
from ..context import Done
from ..errors import CommandError, no
from ..grammar.cmd_urlauth import (
    GenUrlAuth,
    GenUrlAuthData,
    ResetKey,
    UrlFetch,
    UrlFetchArg,
    UrlFetchData,
    UrlFetchValue,
    UrlMetaBinary,
    UrlMetaBody,
    UrlMetaBodyPartStructure,
    UrlMetadataEl,
)
from ..grammar.imap_url import ImapUrl, ImapUrlError, parse_imap_url
from .catenate import UrlPiece, badurl, locate
from .registry import command
from .states import AUTHENTICATED

if TYPE_CHECKING:
    from ..context import CommandContext

#: The mechanisms served (RFC 4467 §7: INTERNAL is the one every server has).
MECHANISMS = ("INTERNAL",)


def token(key: bytes, rump: str) -> str:
    """The INTERNAL mechanism's token of a rump URL."""
    return hmac.new(key, rump.encode("utf-8"), hashlib.sha256).hexdigest()


def _owner_names(parsed: ImapUrl) -> list[str]:
    """The user names a URL's authority may mean: its user as written, and for a
    user name without a domain, that name at the URL's host (users here are
    ``local@domain`` addresses, and a URL may well say ``imap://local@domain/``)."""
    if parsed.user is None:
        return []
    names = [parsed.user]
    if "@" not in parsed.user and parsed.host:
        names.append(f"{parsed.user}@{parsed.host}")
    return names


def _owner_matches(parsed: ImapUrl, user: User) -> bool:
    return user.username.lower() in (n.lower() for n in _owner_names(parsed))


async def _owner(s: CommandContext, parsed: ImapUrl) -> User:
    """The user whose mailbox the URL names (NotFound when none)."""
    assert s.user is not None
    if _owner_matches(parsed, s.user):
        return s.user
    for name in _owner_names(parsed):
        try:
            return await s.store.users.by_username(name)
        except NotFound:
            continue
    raise NotFound("no such user")


@command(GenUrlAuth, AUTHENTICATED)
async def genurlauth(s: CommandContext, cmd: GenUrlAuth) -> None:
    """Tokens for rump URLs of this user's mailboxes (RFC 4467 §4); all or none."""
    assert s.user is not None
    made: list[str] = []
    for rump, mechanism in cmd.requests:
        if mechanism not in MECHANISMS:
            raise no(f"URLAUTH mechanism {mechanism} is not supported")
        try:
            parsed = parse_imap_url(rump)
        except ImapUrlError as exc:
            raise badurl(rump, str(exc)) from None
        if parsed.access is None or parsed.token is not None or parsed.rump != rump:
            raise badurl(rump, "GENURLAUTH takes a URL ending in ;URLAUTH=<access>")
        # §3: an authorized URL is absolute and names its mailbox's owner.
        if parsed.host is None or parsed.mailbox is None:
            raise badurl(rump, "a URLAUTH URL is an absolute imap:// URL")
        if not _owner_matches(parsed, s.user):
            raise badurl(rump, "the URL names another user")
        if parsed.expire is not None and parsed.expire <= dt.datetime.now(dt.UTC):
            raise badurl(rump, "the URL has expired")
        try:
            mailbox = await s.store.mailboxes.get(s.user.id, parsed.mailbox)
        except NotFound:
            raise badurl(rump, "no such mailbox") from None
        if parsed.uidvalidity is not None and parsed.uidvalidity != mailbox.uid_validity:
            raise badurl(rump, "UIDVALIDITY does not match")
        key = await s.store.urlauth.key(s.user.id, mailbox.id)
        made.append(f"{rump}:{mechanism}:{token(key, rump)}")
    await s.send(GenUrlAuthData(tuple(made)))


@command(ResetKey, AUTHENTICATED)
async def resetkey(s: CommandContext, cmd: ResetKey) -> Done:
    """Forget the access key of one mailbox, or of all: their URLs stop working."""
    assert s.user is not None
    unknown = [m for m in cmd.mechanisms if m not in MECHANISMS]
    if unknown:
        raise no(f"URLAUTH mechanism {unknown[0]} is not supported")
    mailbox_id = None
    if cmd.mailbox is not None:
        mailbox_id = (await s.store.mailboxes.get(s.user.id, cmd.mailbox)).id
    await s.store.urlauth.reset(s.user.id, mailbox_id)
    return Done("RESETKEY completed")


async def _authorized(s: CommandContext, url: str) -> tuple[Mailbox, ImapUrl] | None:
    """The mailbox and parsed form of ``url`` if it is an authorized URL this user
    may fetch (None for anything else: RFC 4467 §5 gives no reason)."""
    assert s.user is not None
    try:
        parsed = parse_imap_url(url)
    except ImapUrlError:
        return None
    if (parsed.access is None or parsed.mechanism not in MECHANISMS or not parsed.token
            or parsed.rump is None or parsed.mailbox is None or parsed.user is None):
        return None
    if parsed.expire is not None and parsed.expire <= dt.datetime.now(dt.UTC):
        return None
    access = parsed.access
    if access.startswith("user+"):
        if access[5:].lower() != s.user.username.lower():
            return None
    elif access not in ("anonymous", "authuser"):
        return None  # submit+: no submission server here
    try:
        owner = await _owner(s, parsed)
        mailbox = await s.store.mailboxes.get(owner.id, parsed.mailbox)
    except NotFound:
        return None
    key = await s.store.urlauth.existing(mailbox.id)
    if key is None or not hmac.compare_digest(token(key, parsed.rump),
                                              parsed.token.lower()):
        return None
    return mailbox, parsed


async def _stored(s: CommandContext, piece: UrlPiece) -> bytes:
    """The octets a URL names, as stored."""
    if piece.data is not None:
        return piece.data
    return await s.store.messages.read(piece.record, piece.start, piece.end)


@attrs.frozen
class _Binary:
    """BINARY of a URL's target: ``data`` None when its encoding cannot be removed;
    ``shape`` the BODYPARTSTRUCTURE of what was sent when decoding changed it."""

    data: bytes | None
    shape: BodyStructure | None = None


async def _binary(s: CommandContext, piece: UrlPiece, target: mime.Part,
                  whole: bool) -> _Binary:
    """RFC 5524 §3.2 BINARY: "the content of the URL's target, with any
    content-transfer-encoding removed" (NIL when it is unknown or the data is not
    validly encoded). A whole message keeps its header; in a multipart or an
    encapsulated message every leaf is decoded where it is, as FETCH BINARY does
    (mime/binary.py)."""
    rec = piece.record
    messages = s.store.messages
    # One read: the part's header comes along (a container's BODYPARTSTRUCTURE
    # below is parsed from it).
    start = 0 if whole else target.header_start
    raw = await messages.read(rec, start, target.body_end)
    try:
        data = binary_entity(raw, target) if whole else binary_body(raw, target, start)
    except ValueError:  # UnknownEncoding too
        return _Binary(None)
    header = b"" if whole else raw[: target.body_start - start]
    if data == raw[len(header):]:
        return _Binary(data)
    if whole or target.is_multipart or target.message is not None:
        # What was sent, described: the message, or the part's header (a
        # container's is unchanged) over its decoded content, parsed again.
        shape = body_structure(parse_message(header + data))
    else:
        # RFC 5524 §4: the part labelled with the domain of the data sent (e.g.
        # "BINARY"), with that data's size.
        stored = body_structure(target)
        shape = attrs.evolve(
            stored, encoding=transfer.data_domain(data), size=len(data),
            lines=None if stored.lines is None else transfer.count_lines(data))
    return _Binary(data, shape)


async def _metadata(s: CommandContext, piece: UrlPiece, parsed: ImapUrl,
                    params: tuple[str, ...]) -> tuple[UrlMetadataEl, ...]:
    """RFC 5524 §3.2: what the parameters ask for, BODYPARTSTRUCTURE first (as the
    RFC's examples order it); () when it cannot be given (answered NIL)."""
    rec = piece.record
    assert rec.structure is not None
    section = parsed.section
    target: mime.Part | None = rec.structure
    whole = section is None or not section.part
    if section is not None and section.text is not None:
        # HEADER, TEXT, MIME and header fields are not body parts: they have no
        # BODYPARTSTRUCTURE, and BINARY (RFC 3516 §4.2: section-binary is part
        # numbers only) has no meaning for them.
        target = None
    elif not whole:
        assert section is not None
        target = resolve_part(rec.structure, section.part)
    if target is None and "BODYPARTSTRUCTURE" in params:
        return ()  # url-meta-bodystruct cannot be NIL: the URL gets NIL
    binary = _Binary(None)
    if "BINARY" in params and target is not None:
        binary = await _binary(s, piece, target, whole)
        if binary.data is not None and parsed.partial is not None:
            # RFC 5092 ;PARTIAL= on the data returned, as BINARY[]<partial> is
            # taken from the decoded data (RFC 3516 §4.2).
            start, length = parsed.partial
            end = len(binary.data) if length is None else start + length
            binary = attrs.evolve(binary, data=binary.data[start:end])
    items: list[UrlMetadataEl] = []
    if "BODYPARTSTRUCTURE" in params:
        assert target is not None
        items.append(UrlMetaBodyPartStructure(convert.structure(
            binary.shape or body_structure(target))))
    if "BINARY" in params:
        items.append(UrlMetaBinary(binary.data))
    if "BODY" in params:
        items.append(UrlMetaBody(await _stored(s, piece)))
    return tuple(items)


async def _fetch_one(s: CommandContext, arg: UrlFetchArg) -> UrlFetchValue:
    """What ``arg`` gives: the bytes its URL names (RFC 4467), or the metadata its
    parameters ask for (RFC 5524); None (NIL) for a URL this user may not fetch."""
    found = await _authorized(s, arg.url)
    if found is None:
        return None
    mailbox, parsed = found
    try:
        piece = await locate(s.store, mailbox, parsed, arg.url)
    except CommandError:
        return None
    if not arg.extended:
        return await _stored(s, piece)
    assert arg.params is not None
    return await _metadata(s, piece, parsed, arg.params) or None


@command(UrlFetch, AUTHENTICATED)
async def urlfetch(s: CommandContext, cmd: UrlFetch) -> None:
    """The data of each authorized URL, NIL for any other (RFC 4467 §5)."""
    results = [(arg.url, await _fetch_one(s, arg)) for arg in cmd.urls]
    await s.send(UrlFetchData(tuple(results)))
