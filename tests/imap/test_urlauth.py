"""URLAUTH (RFC 4467): GENURLAUTH, URLFETCH, RESETKEY, over the wire."""

from __future__ import annotations

from typing import Any

import trio

from duck.imap.grammar.imap_url import ImapUrlError, parse_imap_url

from .conftest import PASSWORD, USER
from .raw import RawClient

_MESSAGE = (b"From: a@x.org\r\nSubject: shared\r\nContent-Type: multipart/mixed; boundary=b\r\n"
            b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--b\r\n"
            b"Content-Type: text/plain\r\n\r\nsecond part\r\n--b--\r\n")


def test_urlauth_url_parts() -> None:
    """RFC 4467 §3: ;EXPIRE= and ;URLAUTH=access[:mech:token]; the rump is the URL
    up to the access identifier; a user name may hold "@"."""
    url = ("imap://joe@x.org@example.com/INBOX/;uid=20/;section=1.2"
           ";EXPIRE=2030-01-01T00:00:00Z;URLAUTH=user+fred%40x.org:internal:91354a4")
    p = parse_imap_url(url)
    assert (p.user, p.host, p.mailbox, p.uid) == ("joe@x.org", "example.com", "INBOX", 20)
    assert p.access == "user+fred@x.org" and p.mechanism == "INTERNAL"
    assert p.token == "91354a4" and p.expire is not None and p.expire.year == 2030
    assert p.rump == url[: url.index(":internal")]
    assert parse_imap_url("imap://a@h/INBOX/;UID=1;URLAUTH=authuser").access == "authuser"
    for bad in ("imap://a@h/INBOX/;UID=1;URLAUTH=nobody",
                "imap://a@h/INBOX/;UID=1;EXPIRE=tomorrow;URLAUTH=anonymous"):
        try:
            parse_imap_url(bad)
        except ImapUrlError:
            continue
        raise AssertionError(bad)


async def _body(c: RawClient, mailbox: bytes = b"INBOX") -> None:
    await c.send(b"a APPEND " + mailbox + b" {%d+}\r\n" % len(_MESSAGE) + _MESSAGE + b"\r\n")
    assert (await c.until_tagged(b"a"))[-1].startswith(b"a OK")


def _urls(lines: list[bytes]) -> list[str]:
    """The URLs of ``* GENURLAUTH`` (astrings: atoms, or quoted)."""
    assert lines[0].startswith(b"* GENURLAUTH "), lines
    return [u.strip('"') for u in lines[0][13:].decode().split()]


async def test_genurlauth_urlfetch_resetkey(imap_server: Any) -> None:
    """A token made by GENURLAUTH lets URLFETCH read the message (or a section);
    a changed URL, another user's identifier or a RESETKEY gives NIL; GENURLAUTH
    refuses other users' URLs and unknown mechanisms."""
    port = imap_server.ports["imap"]
    await imap_server.store.users.create("other@example.com", "pw2")
    with trio.fail_after(30):
        c = await RawClient.open(port)
        lines = await c.command(b"c", b"CAPABILITY")
        await c.login(USER, PASSWORD)
        caps = await c.command(b"c", b"CAPABILITY")
        assert b" URLAUTH" in caps[0], caps
        await _body(c)
        lines = await c.command(b"s", b"SELECT INBOX")
        assert b"* OK [URLMECH INTERNAL]" in b"".join(lines), lines
        base = f"imap://{USER}@localhost/INBOX/;uid=1"
        lines = await c.command(b"g", f'GENURLAUTH "{base};urlauth=authuser" INTERNAL '
                                      f'"{base}/;section=2;urlauth=user+{USER}" INTERNAL'.encode())
        assert lines[-1].startswith(b"g OK"), lines
        whole_url, part_url = _urls(lines)
        assert whole_url.startswith(base + ";urlauth=authuser:INTERNAL:")
        lines = await c.command(b"f", f'URLFETCH "{whole_url}" "{part_url}"'.encode())
        text = b"".join(lines)
        assert f"* URLFETCH {whole_url} {{{len(_MESSAGE)}}}\r\n".encode() + _MESSAGE in text
        assert f" {part_url} {{11}}\r\nsecond part".encode() in text, lines
        # A URL changed after its token was made is not authorized.
        forged = whole_url.replace(";uid=1", ";uid=2")
        lines = await c.command(b"f", f'URLFETCH "{forged}" "not a url"'.encode())
        assert lines[0] == f'* URLFETCH {forged} NIL "not a url" NIL\r\n'.encode(), lines
        # Another logged-in user: authuser serves them, user+<USER> does not.
        d = await RawClient.open(port)
        await d.login("other@example.com", "pw2")
        lines = await d.command(b"f", f'URLFETCH "{whole_url}" "{part_url}"'.encode())
        assert lines[0].startswith(f"* URLFETCH {whole_url} {{".encode()), lines
        assert f" {part_url} NIL\r\n".encode() in b"".join(lines), lines
        # Not for another user's mailbox, nor an unknown mechanism.
        lines = await d.command(b"g", f'GENURLAUTH "{base};urlauth=authuser" INTERNAL'.encode())
        assert lines[-1].startswith(b"g NO [BADURL"), lines
        lines = await c.command(b"g", f'GENURLAUTH "{base};urlauth=authuser" XYZ'.encode())
        assert lines[-1].startswith(b"g NO"), lines
        # RESETKEY of the mailbox revokes every URL made for it.
        lines = await c.command(b"r", b"RESETKEY INBOX")
        assert lines[-1].startswith(b"r OK"), lines
        lines = await d.command(b"f", f'URLFETCH "{whole_url}"'.encode())
        assert lines[0] == f"* URLFETCH {whole_url} NIL\r\n".encode(), lines
        # The URL may name the user as local part at the domain (imap://local@domain/).
        local, domain = USER.split("@")
        lines = await c.command(b"g", f'GENURLAUTH "imap://{local}@{domain}/INBOX/;uid=1'
                                      f';urlauth=authuser" INTERNAL'.encode())
        (short,) = _urls(lines)
        lines = await d.command(b"f", f'URLFETCH "{short}"'.encode())
        assert lines[0].startswith(f"* URLFETCH {short} {{".encode()), lines
        # A new token works again, and RESETKEY without a mailbox revokes it too.
        lines = await c.command(b"g", f'GENURLAUTH "{base};urlauth=anonymous" INTERNAL'.encode())
        (again,) = _urls(lines)
        assert again != whole_url
        lines = await d.command(b"f", f'URLFETCH "{again}"'.encode())
        assert lines[0].startswith(f"* URLFETCH {again} {{".encode()), lines
        await c.command(b"r", b"RESETKEY")
        lines = await d.command(b"f", f'URLFETCH "{again}"'.encode())
        assert lines[0] == f"* URLFETCH {again} NIL\r\n".encode(), lines
        await c.aclose()
        await d.aclose()
