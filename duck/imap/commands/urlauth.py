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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import TYPE_CHECKING

from duck.store import NotFound, User

from ..context import Done
from ..errors import CommandError, no
from ..grammar.cmd_urlauth import GenUrlAuth, GenUrlAuthData, ResetKey, UrlFetch, UrlFetchData
from ..grammar.imap_url import ImapUrl, ImapUrlError, parse_imap_url
from .catenate import badurl, locate
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


async def _fetch_one(s: CommandContext, url: str) -> bytes | None:
    """The bytes ``url`` names if it is an authorized URL this user may fetch."""
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
    try:
        piece = await locate(s.store, mailbox, parsed, url)
    except CommandError:
        return None
    if piece.data is not None:
        return piece.data
    return await s.store.messages.read(piece.record, piece.start, piece.end)


@command(UrlFetch, AUTHENTICATED)
async def urlfetch(s: CommandContext, cmd: UrlFetch) -> None:
    """The data of each authorized URL, NIL for any other (RFC 4467 §5)."""
    results = [(url, await _fetch_one(s, url)) for url in cmd.urls]
    await s.send(UrlFetchData(tuple(results)))
