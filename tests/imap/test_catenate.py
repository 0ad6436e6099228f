"""CATENATE (RFC 4469): messages made of TEXT literals and IMAP URLs (RFC 5092) of
the same user, all-or-nothing with MULTIAPPEND (RFC 3502), BADURL and TOOBIG."""

from __future__ import annotations

import re
from typing import Any

import trio

from duck.imap.commands.catenate import MAX_URLS

from .conftest import MESSAGE, PASSWORD, USER
from .raw import RawClient

HEADER = MESSAGE[: MESSAGE.index(b"\r\n\r\n") + 4]


def text(data: bytes) -> bytes:
    """``TEXT`` with a non-synchronizing literal (LITERAL+)."""
    return b"TEXT {%d+}\r\n" % len(data) + data


async def setup(port: int) -> tuple[RawClient, int, int]:
    """A logged-in client; MESSAGE appended to INBOX: (client, uidvalidity, uid)."""
    c = await RawClient.logged_in(port, USER, PASSWORD)
    lines = await c.command(b"a", b"APPEND INBOX {%d+}\r\n" % len(MESSAGE) + MESSAGE)
    m = re.search(rb"APPENDUID (\d+) (\d+)", lines[-1])
    assert m is not None, lines
    return c, int(m.group(1)), int(m.group(2))


async def body_of(c: RawClient, mailbox: bytes, uid: int) -> bytes:
    lines = await c.command(b"x", b"EXAMINE " + mailbox)
    assert lines[-1].startswith(b"x OK"), lines
    lines = await c.command(b"f", b"UID FETCH %d BODY.PEEK[]" % uid)
    assert lines[-1].startswith(b"f OK"), lines
    first = lines[0]
    return first[first.index(b"}\r\n") + 3 : first.rindex(b")")]


async def count(c: RawClient, mailbox: bytes) -> int:
    lines = await c.command(b"s", b"STATUS " + mailbox + b" (MESSAGES)")
    m = re.search(rb"MESSAGES (\d+)", lines[0])
    assert m is not None, lines
    return int(m.group(1))


def appended_uid(line: bytes) -> int:
    m = re.search(rb"APPENDUID \d+ (\d+)\]", line)
    assert m is not None, line
    return int(m.group(1))


async def test_catenate_text_and_urls(imap_server: Any) -> None:
    """RFC 4469 §3: the parts in order; URLs of RFC 5092 §6 with UIDVALIDITY,
    SECTION and PARTIAL, absolute (same user and server) and relative ones."""
    with trio.fail_after(30):
        c, uidv, uid = await setup(imap_server.ports["imap"])
        lines = await c.command(b"c", b"CAPABILITY")
        assert b" CATENATE" in lines[0], lines
        host = imap_server.config.hostname.encode()
        user = USER.replace("@", "%40").encode()
        cases = [
            (b'URL "/INBOX;UIDVALIDITY=%d/;UID=%d/;SECTION=HEADER" ' % (uidv, uid)
             + text(b"new body\r\n"), HEADER + b"new body\r\n"),
            (text(b"Subject: wrap\r\n\r\n")
             + b' URL "/INBOX/;UID=%d/;SECTION=1"' % uid, b"Subject: wrap\r\n\r\nfirst part body"),
            (b'URL "imap://%s@%s/INBOX/;UID=%d/;SECTION=HEADER.FIELDS%%20(SUBJECT%%20TO)"'
             % (user, host, uid) + b" " + text(b"\r\nx"),
             b"To: Alice <alice@example.com>\r\nSubject: hello there\r\n\r\n\r\nx"),
            # PARTIAL: a window of the whole message; past the end is empty.
            (b'URL "/INBOX/;UID=%d/;PARTIAL=6.3" URL "/INBOX/;UID=%d/;PARTIAL=99999.5"'
             % (uid, uid), MESSAGE[6:9]),
            (b'URL "/INBOX/;UID=%d"' % uid, MESSAGE),
        ]
        for parts, expected in cases:
            lines = await c.command(b"A", b"APPEND Drafts (\\Draft) CATENATE (" + parts + b")")
            assert lines[-1].startswith(b"A OK [APPENDUID"), (parts, lines)
            assert await body_of(c, b"Drafts", appended_uid(lines[-1])) == expected, parts
        # Relative to the selected mailbox (RFC 5092 §7.1), with MULTIAPPEND.
        await c.command(b"s", b"SELECT INBOX")
        lines = await c.command(
            b"A", b'APPEND Drafts CATENATE (URL ";UID=%d/;SECTION=TEXT") {5+}\r\nplain' % uid)
        assert lines[-1].startswith(b"A OK [APPENDUID"), lines
        first = int(re.search(rb"APPENDUID \d+ (\d+):", lines[-1]).group(1))  # type: ignore[union-attr]
        assert await body_of(c, b"Drafts", first) == MESSAGE[len(HEADER):]
        assert await body_of(c, b"Drafts", first + 1) == b"plain"
        # The source was read without \Seen (RFC 4469 §3 reads as BODY.PEEK does).
        lines = await c.command(b"f", b"UID FETCH %d FLAGS" % uid)
        assert b"\\Seen" not in lines[0], lines
        await c.aclose()


async def test_badurl_appends_nothing(imap_server: Any) -> None:
    """RFC 4469 §5: NO [BADURL url] for a URL naming nothing this user can read, and
    then nothing of the command is appended, MULTIAPPEND included."""
    with trio.fail_after(30):
        c, uidv, uid = await setup(imap_server.ports["imap"])
        before = await count(c, b"Drafts")
        bad = [
            b"/INBOX;UIDVALIDITY=%d/;UID=%d" % (uidv + 1, uid),  # stale UIDVALIDITY
            b"/INBOX/;UID=%d" % (uid + 50),  # no such message
            b"/Nowhere/;UID=%d" % uid,  # no such mailbox
            b"/INBOX/;UID=%d/;SECTION=7" % uid,  # no such part
            b"imap://someone@%s/INBOX/;UID=%d" % (imap_server.config.hostname.encode(), uid),
            b"imap://elsewhere.example/INBOX/;UID=%d" % uid,  # anonymous, elsewhere
            b"/INBOX/;UID=%d;URLAUTH=anonymous:internal:00" % uid,
            b";UID=%d" % uid,  # relative, but nothing is selected
            b"INBOX/;UID=%d" % uid,
        ]
        for url in bad:
            lines = await c.command(
                b"A", b"APPEND Drafts CATENATE (" + text(b"a: b\r\n\r\n") + b' URL "' + url
                + b'") ' + b"{3+}\r\nxyz")
            assert lines[-1].startswith(b"A NO [BADURL " + url + b"]"), (url, lines)
        # A bad URL in the second message: the first is not appended either.
        lines = await c.command(b"A", b'APPEND Drafts CATENATE (URL "/INBOX/;UID=%d") '
                                b'CATENATE (URL "/INBOX/;UID=%d")' % (uid, uid + 9))
        assert lines[-1].startswith(b"A NO [BADURL"), lines
        assert await count(c, b"Drafts") == before
        # Each URL costs a read before anything is written: their number is capped.
        many = b" ".join(b'URL "/INBOX/;UID=%d/;PARTIAL=0.1"' % uid
                         for _ in range(MAX_URLS + 1))
        lines = await c.command(b"A", b"APPEND Drafts CATENATE (" + many + b")")
        assert lines[-1].startswith(b"A NO [LIMIT]"), lines[-1]
        assert await count(c, b"Drafts") == before
        # TRYCREATE is told before the URLs are looked at (as for a plain APPEND).
        lines = await c.command(b"A", b'APPEND Nowhere CATENATE (URL "/INBOX/;UID=99")')
        assert lines[-1].startswith(b"A NO [TRYCREATE]"), lines
        await c.aclose()


async def test_catenate_limit_and_large_parts(imap_server: Any) -> None:
    """RFC 4469 §5: NO [TOOBIG] when the catenated message would exceed the APPEND
    limit (known before anything is stored); a large source is streamed whole."""
    with trio.fail_after(60):
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        big = b"Subject: big\r\n\r\n" + b"0123456789abcdef" * 40_000 + b"\r\n"  # ~640 KB
        lines = await c.command(b"a", b"APPEND INBOX {%d+}\r\n" % len(big) + big)
        uid = appended_uid(lines[-1])
        lines = await c.command(b"A", b'APPEND Drafts CATENATE (URL "/INBOX/;UID=%d" URL '
                                b'"/INBOX/;UID=%d/;SECTION=TEXT")' % (uid, uid))
        assert lines[-1].startswith(b"A OK"), lines
        body = big[big.index(b"\r\n\r\n") + 4:]
        assert await body_of(c, b"Drafts", appended_uid(lines[-1])) == big + body
        before = await count(c, b"Drafts")
        saved = imap_server.config.max_message_size
        imap_server.config.max_message_size = len(big) + 10
        try:
            lines = await c.command(
                b"A", b'APPEND Drafts CATENATE (URL "/INBOX/;UID=%d" ' % uid + text(b"x" * 11)
                + b")")
            assert lines[-1].startswith(b"A NO [TOOBIG]"), lines
        finally:
            imap_server.config.max_message_size = saved
        assert await count(c, b"Drafts") == before
        await c.aclose()
