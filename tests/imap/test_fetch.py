"""FETCH with every data item, through imapclient and raw bytes; byte-identical
round trips of appended messages, large bodies streamed."""

from __future__ import annotations

import datetime as dt
import functools
import os
from typing import Any

import trio
from imapclient import IMAPClient

from .conftest import MESSAGE, PASSWORD, USER, blocking
from .raw import RawClient


def _client(server: Any) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=20)
    client.login(USER, PASSWORD)
    return client


async def test_fetch_items_imapclient(imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await blocking(lambda: _client(imap_server))
        when = dt.datetime(2020, 5, 17, 10, 11, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        await blocking(lambda: c.append("INBOX", MESSAGE, flags=("$Label",), msg_time=when))
        await blocking(lambda: c.select_folder("INBOX"))
        c.normalise_times = False
        data = await blocking(lambda: c.fetch([1], [
            "UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE",
            "BODY", "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]", "BODY.PEEK[1]",
            "BODY.PEEK[2.MIME]", "BODY.PEEK[TEXT]<0.8>", "RFC822.HEADER", "MODSEQ",
        ]))
        item = data[1]
        assert set(data) == {1}  # keyed by UID
        assert b"$Label" in item[b"FLAGS"] and b"\\Seen" not in item[b"FLAGS"]
        assert item[b"INTERNALDATE"] == when  # same instant (sent in UTC)
        assert item[b"RFC822.SIZE"] == len(MESSAGE)
        env = item[b"ENVELOPE"]
        assert env.subject == b"hello there"
        assert env.from_[0].mailbox == b"bob" and env.from_[0].host == b"example.com"
        assert env.sender[0].mailbox == b"bob"  # defaults to From (RFC 3501 §7.4.2)
        assert env.message_id == b"<1@example.com>"
        bs = item[b"BODYSTRUCTURE"]
        assert bs.is_multipart
        assert bs[0][0][0].lower() == b"text" and bs[0][1][0].lower() == b"application"
        assert bs[1].lower() == b"mixed"
        assert item[b"BODY[HEADER.FIELDS (SUBJECT FROM)]"] == (
            b"From: Bob <bob@example.com>\r\nSubject: hello there\r\n\r\n"
        )
        assert item[b"BODY[1]"] == b"first part body"
        assert item[b"BODY[2.MIME]"].startswith(b"Content-Type: application/octet-stream\r\n")
        assert item[b"BODY[TEXT]<0>"] == b"preamble"
        header_end = MESSAGE.index(b"\r\n\r\n") + 4
        assert item[b"RFC822.HEADER"] == MESSAGE[:header_end]
        assert item[b"MODSEQ"][0] >= 1
        # BODY (not PEEK) sets \Seen and reports FLAGS (RFC 3501 §6.4.5).
        data = await blocking(lambda: c.fetch([1], ["BODY[1]"]))
        assert b"\\Seen" in data[1][b"FLAGS"]
        await blocking(c.logout)
        # BINARY (RFC 3516): the decoded part, as literal8 because it holds NUL.
        r = await RawClient.open(imap_server.ports["imap"])
        await r.login(USER, PASSWORD)
        await r.command(b"s", b"SELECT INBOX")
        lines = await r.command(b"b", b"FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1])")
        assert lines[0] == (
            b"* 1 FETCH (BINARY[2] ~{10}\r\n" + bytes(range(10))
            + b" BINARY.SIZE[2] 10 BINARY[1] {15}\r\nfirst part body)\r\n"
        ), lines


async def test_rfc822_items_raw(imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        await c.send(b"a APPEND INBOX {%d+}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n")
        await c.until_tagged(b"a")
        await c.command(b"s", b"SELECT INBOX")
        lines = await c.command(b"f", b"FETCH 1 (RFC822)")
        assert lines[0] == (
            b"* 1 FETCH (RFC822 {%d}\r\n" % len(MESSAGE) + MESSAGE
            + b" FLAGS (\\Seen \\Recent))\r\n"
        ), lines
        lines = await c.command(b"g", b"UID FETCH 1 (RFC822.TEXT)")
        body = MESSAGE[MESSAGE.index(b"\r\n\r\n") + 4 :]
        assert lines[0] == b"* 1 FETCH (UID 1 RFC822.TEXT {%d}\r\n" % len(body) + body + b")\r\n"
        lines = await c.command(b"h", b"FETCH 1 (BODY.PEEK[9] BODY.PEEK[]<5000.10>)")
        assert lines[0] == b'* 1 FETCH (BODY[9] "" BODY[]<5000> "")\r\n', lines
        lines = await c.command(b"i", b"FETCH 1 FAST")
        assert lines[0].startswith(b"* 1 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE \"")
        lines = await c.command(b"j", b"UID FETCH 999 (FLAGS)")
        assert lines == [b"j OK FETCH completed\r\n"]


async def test_large_message_round_trip(imap_server: Any) -> None:
    """Bytes appended come back identical, also when streamed (over 256 KiB)."""
    with trio.fail_after(60):
        payload = os.urandom(3 * 1024 * 1024)
        import base64

        encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
        message = (
            b"Subject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
            b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            b"\r\n" + encoded + b"--b--\r\n"
        )
        c = await blocking(lambda: _client(imap_server))
        await blocking(lambda: c.append("INBOX", message))
        await blocking(lambda: c.select_folder("INBOX"))
        data = await blocking(lambda: c.fetch([1], ["BODY.PEEK[]", "RFC822.SIZE", "BODY.PEEK[2]"]))
        assert data[1][b"BODY[]"] == message
        assert data[1][b"RFC822.SIZE"] == len(message)
        assert data[1][b"BODY[2]"] == encoded[:-2]
        data = await blocking(lambda: c.fetch([1], ["BODY.PEEK[]<1000000.500000>"]))
        assert data[1][b"BODY[]<1000000>"] == message[1000000:1500000]
        await blocking(c.logout)
        r = await RawClient.open(imap_server.ports["imap"])
        await r.login(USER, PASSWORD)
        await r.command(b"s", b"SELECT INBOX")
        lines = await r.command(b"b", b"FETCH 1 (BINARY.PEEK[2])")
        assert lines[0] == b"* 1 FETCH (BINARY[2] ~{%d}\r\n" % len(payload) + payload + b")\r\n"


async def test_range_with_sections_keeps_order_and_bytes_around_a_streamed_literal(
        imap_server: Any) -> None:
    """A FETCH of a range with body sections: the message whose section is
    streamed (over 256 KiB) and those serialized by a template come back in
    sequence order, each exactly as FetchData writes it."""
    from duck.imap.grammar.commands import parse_command
    from duck.imap.grammar.encode import Encoder
    from duck.imap.grammar.fetch_items import FetchAttr
    from duck.imap.grammar.resp_fetch import FetchData

    items = b"(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[])"
    command = parse_command(b"t FETCH 1 " + items)
    fields_key, whole_key = (item.response_key()  # type: ignore[attr-defined]
                             for item in command.items[1:])  # type: ignore[attr-defined]
    messages = [b"Subject: s1\r\n\r\nbody 1\r\n",
                b"Subject: big\r\n\r\n" + b"x" * (300 * 1024) + b"\r\n",
                b"Subject: s3\r\n\r\nbody 3\r\n"]
    with trio.fail_after(60):
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        for m in messages:
            await c.send(b"a APPEND INBOX (\\Flagged) {%d+}\r\n" % len(m) + m + b"\r\n")
            await c.until_tagged(b"a")
        await c.command(b"s", b"SELECT INBOX")
        lines = await c.command(b"f", b"FETCH 1:3 " + items)
        assert len(lines) == 4 and lines[-1] == b"f OK FETCH completed\r\n", lines[-1:]
        for seq, (message, line) in enumerate(zip(messages, lines, strict=False), 1):
            e = Encoder()
            FetchData(seq, [
                (FetchAttr.FLAGS, ("\\Flagged", "\\Recent")),
                (fields_key, message[: message.index(b"\r\n") + 2] + b"\r\n"),
                (whole_key, message),
            ]).encode(e)
            assert line == e.join() + b"\r\n", (seq, line[:200])


async def test_fetch_range_of_many(imap_server: Any) -> None:
    with trio.fail_after(60):
        c = await blocking(lambda: _client(imap_server))
        from .conftest import simple_message

        msgs = [simple_message(n) for n in range(1, 31)]
        for m in msgs:
            await blocking(functools.partial(c.append, "INBOX", m))
        await blocking(lambda: c.select_folder("INBOX"))
        data = await blocking(lambda: c.fetch(c.search(), ["BODY.PEEK[]", "FLAGS"]))
        assert [data[u][b"BODY[]"] for u in sorted(data)] == msgs
        data = await blocking(lambda: c.fetch(c.search(), ["ENVELOPE"]))
        assert data[30][b"ENVELOPE"].subject == b"note 30"
        await blocking(c.logout)


NESTED = (
    b"From: a@example.com\r\nSubject: outer\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"o\"\r\n\r\n"
    b"--o\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nsee attached\r\n"
    b"--o\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
    b"From: inner@example.com\r\nSubject: inner\r\nContent-Type: text/html\r\n\r\n"
    b"<p>hi</p>\r\n"
    b"--o--\r\n"
)


async def test_nested_message_sections(imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await blocking(lambda: _client(imap_server))
        await blocking(lambda: c.append("INBOX", NESTED))
        await blocking(lambda: c.select_folder("INBOX", readonly=True))
        data = (await blocking(lambda: c.fetch([1], [
            "BODYSTRUCTURE", "BODY", "BODY.PEEK[2.HEADER]", "BODY.PEEK[2.TEXT]",
            "BODY.PEEK[2.1]", "BODY.PEEK[2.MIME]",
        ])))[1]
        bs = data[b"BODYSTRUCTURE"]
        inner = bs[0][1]
        assert inner[0].lower() == b"message" and inner[1].lower() == b"rfc822"
        assert inner[7][1] == b"inner"  # the encapsulated ENVELOPE's subject
        assert data[b"BODY[2.HEADER]"].startswith(b"From: inner@example.com\r\n")
        # The CRLF before the boundary belongs to the boundary (RFC 2046 §5.1.1).
        assert data[b"BODY[2.TEXT]"] == b"<p>hi</p>"
        assert data[b"BODY[2.1]"] == b"<p>hi</p>"
        assert data[b"BODY[2.MIME]"].startswith(b"Content-Type: message/rfc822\r\n")
        assert data[b"BODY"][0][0][0].lower() == b"text"
        await blocking(c.logout)


QP_PART = (b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\n"
           b"bar\r\nfoo =\r\n=62\r\nfoo  \r\nbar=\r\n\r\nfoo_bar\r\n")
BINARY_MESSAGE = (
    b"From: user@domain.org\r\nMime-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\nprologue\r\n'
    b"--b1\r\nContent-Type: text/x-myown\r\nContent-Transfer-Encoding: quoted-printable"
    b"\r\n\r\n" + QP_PART + b"\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n"
    b"\r\n--b1--\r\nepilogue\r\n")


async def test_binary_of_parts_and_of_the_whole(imap_server: Any) -> None:
    """RFC 3516 §4.2: BINARY removes the section's transfer encoding (RFC 2045 §6.7
    for quoted-printable: trailing whitespace dropped, soft breaks joined). A
    multipart or an encapsulated message has no encoding of its own (RFC 2045
    §6.4): its leaves are decoded where they are, each decoded leaf's header then
    saying ``Content-Transfer-Encoding: binary``, and everything else (boundaries,
    prologue, epilogue, other header fields) is kept; BINARY[] is the whole message
    so. Dovecot answers the same."""
    with trio.fail_after(30):
        user = await imap_server.store.users.by_username(USER)
        await imap_server.store.messages.append(user.id, "INBOX", BINARY_MESSAGE)
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        await c.command(b"s", b"SELECT INBOX")
        decoded = (b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\n"
                   b"bar\r\nfoo_bar\r\n")
        inner = b"Subject: inner\r\nContent-Transfer-Encoding: binary\r\n\r\nhi"
        binary = (BINARY_MESSAGE
                  .replace(b"Encoding: quoted-printable\r\n\r\n" + QP_PART,
                           b"Encoding: binary\r\n\r\n" + decoded)
                  .replace(b"Subject: inner\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                           b"aGk=\r\n", inner))
        assert binary.count(b"binary") == 2 and decoded in binary and inner in binary
        whole = b"BINARY[] {%d}\r\n" % len(binary) + binary
        lines = await c.command(b"a", b"FETCH 1 (BINARY.SIZE[] BINARY.PEEK[])")
        assert b"".join(lines[:-1]) == (b"* 1 FETCH (BINARY.SIZE[] %d " % len(binary)
                                        + whole + b")\r\n"), lines
        lines = await c.command(b"b", b"FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
        assert b"".join(lines[:-1]) == (b"* 1 FETCH (BINARY.SIZE[1] 65 BINARY[1] {65}\r\n"
                                        + decoded + b")\r\n"), lines
        lines = await c.command(b"c", b"FETCH 1 (BINARY.PEEK[1]<10.10>)")
        assert b"".join(lines[:-1]) == (b"* 1 FETCH (BINARY[1]<10> {10}\r\n" + decoded[10:20]
                                        + b")\r\n"), lines
        # The encapsulated message with its own body part decoded.
        lines = await c.command(b"d", b"FETCH 1 (BINARY.PEEK[2] BINARY.PEEK[2.1])")
        assert b"".join(lines[:-1]) == (b"* 1 FETCH (BINARY[2] {%d}\r\n" % len(inner) + inner
                                        + b" BINARY[2.1] {2}\r\nhi)\r\n"), lines
        await c.aclose()


async def _selected_with(imap_server: Any, message: bytes) -> RawClient:
    """A raw client with INBOX selected, ``message`` stored in it first."""
    user = await imap_server.store.users.by_username(USER)
    await imap_server.store.messages.append(user.id, "INBOX", message)
    c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
    await c.command(b"s", b"SELECT INBOX")
    return c


async def test_binary_of_a_multipart_with_an_unknown_encoding_inside(
        imap_server: Any) -> None:
    """RFC 3516 §4.2: a leaf whose encoding the server cannot remove makes BINARY of
    anything containing it NO [UNKNOWN-CTE]; BODY[] still gives the stored bytes."""
    message = (b"Subject: x\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"
               b"--zz\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n"
               b"--zz--\r\n")
    with trio.fail_after(30):
        c = await _selected_with(imap_server, message)
        lines = await c.command(b"a", b"FETCH 1 (BINARY.PEEK[])")
        assert lines[-1].startswith(b"a NO [UNKNOWN-CTE]"), lines
        lines = await c.command(b"b", b"FETCH 1 (BODY.PEEK[])")
        assert message in b"".join(lines), lines
        await c.aclose()


async def test_binary_of_an_encoding_named_with_control_characters(
        imap_server: Any) -> None:
    """A Content-Transfer-Encoding with a NUL, an ESC and 8-bit octets in its name:
    BINARY is NO [UNKNOWN-CTE] with a text fit for a response line (the raw name in
    it made the response invalid and ended the session), and the session goes on."""
    message = (b"Subject: x\r\nContent-Type: image/png\r\n"
               b"Content-Transfer-Encoding: =\x1b$B\x00*\xff\r\n\r\nxyz\r\n")
    with trio.fail_after(30):
        c = await _selected_with(imap_server, message)
        lines = await c.command(b"a", b"FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
        assert lines[-1].startswith(b"a NO [UNKNOWN-CTE] unknown transfer encoding"), lines
        assert b"\x00" not in lines[-1] and lines[-1].isascii(), lines
        lines = await c.command(b"b", b"NOOP")
        assert lines[-1].startswith(b"b OK"), lines
        await c.aclose()


async def test_fetch_preview(imap_server: Any) -> None:
    """RFC 8970 §3: FETCH PREVIEW (and PREVIEW (LAZY)) gives the first text part's
    preview, UTF-8 in a literal when it is not ASCII, "" without text; it does not
    set \\Seen; an unknown modifier is BAD."""
    with trio.fail_after(30):
        user = await imap_server.store.users.by_username(USER)
        text = (b"Subject: hi\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                b"Bonjour=C2=A0=E2=80=94  \r\n le  caf=C3=A9\r\n")
        for data in (MESSAGE, text, b"Subject: none\r\nContent-Type: image/gif\r\n\r\nGIF"):
            await imap_server.store.messages.append(user.id, "INBOX", data)
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        assert b" PREVIEW" in (await c.command(b"c", b"CAPABILITY"))[0]
        await c.command(b"s", b"SELECT INBOX")
        lines = await c.command(b"f", b"FETCH 1:3 (PREVIEW (LAZY) FLAGS)")
        assert lines[0] == b'* 1 FETCH (PREVIEW "first part body" FLAGS (\\Recent))\r\n', lines
        expected = "Bonjour \u2014 le café".encode()  # the no-break space is whitespace too
        assert lines[1] == (b"* 2 FETCH (PREVIEW {%d}\r\n" % len(expected) + expected
                            + b" FLAGS (\\Recent))\r\n"), lines
        assert lines[2] == b'* 3 FETCH (PREVIEW "" FLAGS (\\Recent))\r\n', lines
        lines = await c.command(b"u", b"UID FETCH 1 PREVIEW")
        assert lines[0] == b'* 1 FETCH (UID 1 PREVIEW "first part body")\r\n', lines
        lines = await c.command(b"b", b"FETCH 1 (PREVIEW (EAGER))")
        assert lines[-1].startswith(b"b BAD"), lines
        await c.aclose()
