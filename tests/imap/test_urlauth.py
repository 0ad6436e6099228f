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


#: A message/rfc822 part (1) whose message holds a base64 text part (1.1), a part
#: in an encoding nobody knows (1.2), a quoted-printable part (1.3) and base64 data
#: with NUL octets (1.4); then a base64 text part of the outer message (2).
_NESTED = (
    b"From: a@x.org\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=out\r\n\r\n"
    b"--out\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: b@x.org\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=in\r\n"
    b"\r\n"
    b"--in\r\nContent-Type: text/x-myown; charset=us-ascii\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8gd29y\r\nbGQ=\r\n"
    b"--in\r\nContent-Type: text/plain; charset=us-ascii\r\n"
    b"Content-Transfer-Encoding: x-unprintable\r\n\r\nnothing to see\r\n"
    b"--in\r\nContent-Type: text/plain; charset=us-ascii\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\nsoft=\r\nbreak =3D\r\n"
    b"--in\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n"
    b"--in--\r\nepilogue\r\n"
    b"--out\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"aGk=\r\n--out--\r\n"
)
_INNER_START = _NESTED.index(b"From: b@x.org")
_INNER = _NESTED[_INNER_START:_NESTED.index(b"\r\n--out\r\nContent-Type: text/plain")]


async def test_urlfetch_binary_and_bodypartstructure(imap_server: Any) -> None:
    """URLAUTH=BINARY (RFC 5524): parameters in parentheses get metadata, each in its
    own parentheses (§3.2, §5 url-metadata), BODYPARTSTRUCTURE first; BINARY removes
    the part's transfer encoding (literal8 when NUL octets result, NIL when the
    encoding is unknown) and BODYPARTSTRUCTURE then describes the data sent (§4's
    examples: its encoding and size); in a multipart or message part each leaf is
    decoded in place, as FETCH BINARY does."""
    port = imap_server.ports["imap"]
    with trio.fail_after(30):
        c = await RawClient.logged_in(port, USER, PASSWORD)
        caps = await c.command(b"c", b"CAPABILITY")
        assert b" URLAUTH=BINARY" in caps[0], caps
        await c.send(b"a APPEND INBOX {%d+}\r\n" % len(_NESTED) + _NESTED + b"\r\n")
        assert (await c.until_tagged(b"a"))[-1].startswith(b"a OK")
        base = f"imap://{USER}@localhost/INBOX/;uid=1"
        rumps = [f"{base}{s};urlauth=user+{USER}" for s in (
            "/;section=1.1", "/;section=1.2", "/;section=1.3", "/;section=1.4", "/;section=1",
            "/;section=2", "/;section=1.1/;partial=1.3", "/;section=1.HEADER", "")]
        lines = await c.command(b"g", b"GENURLAUTH " + " ".join(
            f'"{r}" INTERNAL' for r in rumps).encode())
        assert lines[-1].startswith(b"g OK"), lines
        b64, unknown, qp, nul, message, outer, partial, header, whole = _urls(lines)

        async def fetch(*args: str) -> bytes:
            lines = await c.command(b"f", b"URLFETCH " + " ".join(args).encode())
            assert lines[-1].startswith(b"f OK"), lines
            assert len(lines) == 2, lines
            return lines[0]

        async def appended(message: bytes, uid: int) -> str:
            """APPEND ``message`` (UID ``uid``): an authorized URL of all of it."""
            await c.send(b"a APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\n")
            assert (await c.until_tagged(b"a"))[-1].startswith(b"a OK")
            lines = await c.command(b"g", f'GENURLAUTH "{base[:-1]}{uid};urlauth=authuser" '
                                          f"INTERNAL".encode())
            (url,) = _urls(lines)
            return url

        def bps(encoding: str, size: int, lines: int) -> str:
            return (f'(BODYPARTSTRUCTURE ("TEXT" "X-MYOWN" ("CHARSET" "us-ascii") NIL NIL '
                    f'"{encoding}" {size} {lines} NIL NIL NIL NIL))')

        # BINARY alone; BODYPARTSTRUCTURE alone describes the part as stored.
        assert await fetch(f'("{b64}" BINARY)') == (
            f"* URLFETCH {b64} (BINARY {{11}}\r\nhello world)\r\n".encode())
        assert await fetch(f'("{b64}" BODYPARTSTRUCTURE)') == (
            f"* URLFETCH {b64} {bps('BASE64', 20, 3)}\r\n".encode())
        # Both: the structure of the decoded data, then the data.
        assert await fetch(f'("{b64}" BINARY BODYPARTSTRUCTURE)') == (
            f"* URLFETCH {b64} {bps('7BIT', 11, 1)} (BINARY {{11}}\r\nhello world)\r\n"
            .encode())
        # An unknown encoding: BINARY NIL, the structure as stored (RFC 5524 §4).
        got = await fetch(f'("{unknown}" BODYPARTSTRUCTURE BINARY)')
        assert got == (f'* URLFETCH {unknown} (BODYPARTSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" '
                       f'"us-ascii") NIL NIL "X-UNPRINTABLE" 14 1 NIL NIL NIL NIL)) '
                       f"(BINARY NIL)\r\n").encode(), got
        # Quoted-printable: soft line break and =3D undone.
        got = await fetch(f'("{qp}" BINARY)')
        assert got == f"* URLFETCH {qp} (BINARY {{11}}\r\nsoftbreak =)\r\n".encode(), got
        # NUL octets go as literal8 (RFC 5524 §5), labelled BINARY.
        got = await fetch(f'("{nul}" BINARY BODYPARTSTRUCTURE)')
        assert got == (f'* URLFETCH {nul} (BODYPARTSTRUCTURE ("APPLICATION" "OCTET-STREAM" NIL '
                       f'NIL NIL "BINARY" 4 NIL NIL NIL NIL)) (BINARY ~{{4}}\r\n'
                       f"\x00\x01\x02\x03)\r\n").encode(), got
        # The message part carries no encoding of its own: BINARY decodes the leaves
        # inside it, and one of them has an encoding no one can remove, so BINARY is
        # NIL; BODY and the plain URLFETCH are its content as stored.
        got = await fetch(f'("{message}" BINARY)', f'("{message}" BODY)', f'"{message}"')
        literal = b"{%d}\r\n" % len(_INNER) + _INNER
        assert got == (f"* URLFETCH {message} (BINARY NIL) {message} (BODY ".encode()
                       + literal + f") {message} ".encode() + literal + b"\r\n"), got
        # A URL in parentheses without parameters is a plain URLFETCH (RFC 5524 §3).
        got = await fetch(f'("{outer}")', f'("{outer}" BINARY)')
        assert got == f"* URLFETCH {outer} {{4}}\r\naGk= {outer} (BINARY {{2}}\r\nhi)\r\n".encode()
        # ;PARTIAL= cuts the decoded data.
        got = await fetch(f'("{partial}" BINARY)')
        assert got == f"* URLFETCH {partial} (BINARY {{3}}\r\nell)\r\n".encode(), got
        # A header section has no structure (NIL for the URL) and no encoding to
        # remove (BINARY NIL); BODY is still its bytes.
        got = await fetch(f'("{header}" BODYPARTSTRUCTURE)', f'("{header}" BINARY)')
        assert got == f"* URLFETCH {header} NIL {header} (BINARY NIL)\r\n".encode(), got
        # The whole message holds that leaf too.
        got = await fetch(f'("{whole}" BINARY)')
        assert got == f"* URLFETCH {whole} (BINARY NIL)\r\n".encode(), got
        # A whole single-part message: its header (saying binary), its body decoded.
        single = (b"Subject: s\r\nContent-Type: text/plain\r\n"
                  b"Content-Transfer-Encoding: base64\r\n\r\naGk=\r\n")
        whole2 = await appended(single, 2)
        got = await fetch(f'("{whole2}" BODYPARTSTRUCTURE BINARY)')
        head = single[: single.index(b"\r\n\r\n") + 4].replace(b"base64", b"binary")
        assert got == (f'* URLFETCH {whole2} (BODYPARTSTRUCTURE ("TEXT" "PLAIN" NIL NIL NIL '
                       f'"BINARY" 2 1 NIL NIL NIL NIL)) (BINARY '
                       f"{{{len(head) + 2}}}\r\n".encode() + head + b"hi)\r\n"), got
        # A multipart message whose leaves can be decoded: each is, in place, its
        # header then saying binary, and BODYPARTSTRUCTURE describes what was sent.
        mixed = (b"Subject: m\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"
                 b"--zz\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64"
                 b"\r\n\r\naGk=\r\n--zz--\r\n")
        whole3 = await appended(mixed, 3)
        got = await fetch(f'("{whole3}" BODYPARTSTRUCTURE BINARY)')
        sent = mixed.replace(b"base64\r\n\r\naGk=", b"binary\r\n\r\nhi")
        assert got == (f'* URLFETCH {whole3} (BODYPARTSTRUCTURE (("TEXT" "PLAIN" NIL NIL '
                       f'NIL "BINARY" 2 1 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "zz") NIL '
                       f'NIL NIL)) (BINARY {{{len(sent)}}}\r\n'.encode() + sent + b")\r\n"), got
        # A URL this user may not fetch is NIL whatever it asks for.
        forged = b64.replace("section=1.1", "section=1.3")
        got = await fetch(f'("{forged}" BINARY BODYPARTSTRUCTURE)')
        assert got == f"* URLFETCH {forged} NIL\r\n".encode(), got
        # §3.1: no parameter twice, never BINARY with BODY; unknown ones are refused.
        for bad in ("BINARY BODY", "BINARY BINARY", "X-SIZE"):
            lines = await c.command(b"f", f'URLFETCH ("{b64}" {bad})'.encode())
            assert lines[-1].startswith(b"f BAD"), (bad, lines)
        await c.aclose()
