"""SORT, THREAD (RFC 5256), ESEARCH (RFC 4731), SEARCHRES (RFC 5182) and
COMPRESS=DEFLATE (RFC 4978) driven by imapclient, the way a client library sends
and parses them. imapclient has no call for SEARCH RETURN (SAVE) nor for
COMPRESS: they go through its raw command path, and the compressed stream is a
zlib wrapper around its imaplib connection's socket (test_compress.py tests the
server's side of COMPRESS with a raw client, over TLS too)."""

from __future__ import annotations

import io
import socket
import zlib
from typing import Any

import trio
from imapclient import IMAPClient
from imapclient.response_parser import parse_fetch_response, parse_response

from .conftest import PASSWORD, USER, blocking


def _message(subject: str, date: str, msgid: str, refs: str = "") -> bytes:
    head = (
        f"From: Bob <bob@example.com>\r\nTo: alice@example.com\r\n"
        f"Subject: {subject}\r\nDate: {date}\r\nMessage-ID: <{msgid}@example.com>\r\n"
    )
    if refs:
        head += f"In-Reply-To: <{refs}@example.com>\r\nReferences: <{refs}@example.com>\r\n"
    return (head + "\r\nbody of " + subject + "\r\n").encode()


MESSAGES = [
    _message("banana", "Mon, 7 Feb 1994 21:52:25 -0800", "m1"),
    _message("apple", "Tue, 8 Feb 1994 21:52:25 -0800", "m2"),
    _message("Re: banana", "Wed, 9 Feb 1994 21:52:25 -0800", "m3", refs="m1"),
    _message("cherry", "Sun, 6 Feb 1994 21:52:25 -0800", "m4"),
]


def _tour(port: int) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=20)
    c.login(USER, PASSWORD)
    for body in MESSAGES:
        c.append("INBOX", body)
    c.select_folder("INBOX")
    seen["sort_subject"] = c.sort(["SUBJECT"])
    seen["sort_reverse_date"] = c.sort(["REVERSE", "DATE"])
    seen["sort_filtered"] = c.sort(["SUBJECT"], ["NOT", "SUBJECT", "apple"])
    seen["thread_refs"] = c.thread("REFERENCES")
    seen["thread_subject"] = c.thread("ORDEREDSUBJECT")
    raw = c._raw_command_untagged(
        b"SEARCH", [b"RETURN", b"(MIN MAX COUNT ALL)", b"SUBJECT", b"banana"],
        uid=True, response_name="ESEARCH", unpack=True,
    )
    seen["esearch"] = parse_response([raw])
    c.logout()
    return seen


async def test_sort_thread_esearch_through_imapclient(imap_server: Any) -> None:
    with trio.fail_after(30):
        seen = await blocking(lambda: _tour(imap_server.ports["imap"]))
    # Base subjects (RFC 5256 §2.1): "Re: banana" sorts as "banana", after message 1.
    assert seen["sort_subject"] == [2, 1, 3, 4]
    assert seen["sort_reverse_date"] == [3, 2, 1, 4]
    assert seen["sort_filtered"] == [1, 3, 4]
    threads = [list(t) for t in seen["thread_refs"]]
    # Message 3 replies to message 1; the others stand alone, ordered by date.
    assert sorted(threads) == sorted([[4], [1, 3], [2]])
    assert threads[0] == [4]
    subject_threads = sorted(list(t) for t in seen["thread_subject"])
    assert [1, 3] in subject_threads and [2] in subject_threads
    # ESEARCH: (TAG "x") UID MIN 1 MAX 3 COUNT 2 ALL 1,3
    esearch = list(seen["esearch"])
    assert b"UID" in esearch
    fields = {esearch[i]: esearch[i + 1] for i in range(esearch.index(b"UID") + 1,
                                                       len(esearch) - 1, 2)}
    assert fields[b"MIN"] == 1 and fields[b"MAX"] == 3 and fields[b"COUNT"] == 2
    assert fields[b"ALL"] == b"1,3"


def _saved_results(port: int) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=20)
    c.login(USER, PASSWORD)
    seen["caps"] = c.capabilities()
    for body in MESSAGES:
        c.append("INBOX", body)
    c.select_folder("INBOX")
    # RFC 5182 §2.1: SAVE alone answers no SEARCH or ESEARCH, only OK.
    typ, data = c._raw_command(b"SEARCH", [b"RETURN", b"(SAVE)", b"SUBJECT", b"banana"])
    seen["save"] = (typ, data, c._imap.untagged_responses.get("SEARCH"),
                    c._imap.untagged_responses.get("ESEARCH"))
    # "$" in UID FETCH (raw: imapclient's fetch() keeps only the numbers it was
    # given), then in its own UID STORE, SEARCH and UID COPY.
    seen["fetch"] = parse_fetch_response(c._raw_command_untagged(
        b"FETCH", [b"$", b"(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"]))
    c.add_flags("$", [b"\\Flagged"], silent=True)
    seen["flagged"] = c.search(["FLAGGED"])
    seen["narrowed"] = c.search(["$", "NOT", "SUBJECT", "Re:"])
    c.copy("$", "Archive")
    seen["archive"] = c.folder_status("Archive", ["MESSAGES"])
    # §2.4: SAVE with MIN saves the minimum only, and reports it.
    seen["min"] = parse_response([c._raw_command_untagged(
        b"SEARCH", [b"RETURN", b"(SAVE MIN)", b"SUBJECT", b"e"],
        response_name="ESEARCH", unpack=True)])
    seen["fetch_min"] = parse_fetch_response(c._raw_command_untagged(
        b"FETCH", [b"$", b"(FLAGS)"]))
    c.logout()
    return seen


async def test_searchres_through_imapclient(imap_server: Any) -> None:
    with trio.fail_after(30):
        seen = await blocking(lambda: _saved_results(imap_server.ports["imap"]))
    assert b"SEARCHRES" in seen["caps"]
    typ, _, search, esearch = seen["save"]
    assert typ == "OK" and search is None and esearch is None, seen["save"]
    # Messages 1 and 3 are "banana" and "Re: banana" (UIDs as imapclient uses them).
    subjects = {uid: v[b"BODY[HEADER.FIELDS (SUBJECT)]"].strip()
                for uid, v in seen["fetch"].items()}
    assert subjects == {1: b"Subject: banana", 3: b"Subject: Re: banana"}
    assert seen["flagged"] == [1, 3]
    assert seen["narrowed"] == [1]
    assert seen["archive"][b"MESSAGES"] == 2
    # "apple", "Re: banana", "banana", "cherry" all hold an "e" but "banana": MIN 2.
    esearch = list(seen["min"])
    assert esearch[esearch.index(b"MIN") + 1] == 2, esearch
    assert list(seen["fetch_min"]) == [2]


class _Inflating(io.RawIOBase):
    """What imaplib reads, inflated from the socket (RFC 4978 §4: raw DEFLATE);
    counts the octets that came over the wire."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.z = zlib.decompressobj(-15)
        self.pending = b""
        self.wire = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                return 0
            self.wire += len(data)
            self.pending = self.z.decompress(data)
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def _compressed_session(port: int, body: bytes) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=20)
    c.login(USER, PASSWORD)
    seen["caps"] = c.capabilities()
    typ, data = c._raw_command(b"COMPRESS", [b"DEFLATE"], uid=False)
    seen["compress"] = (typ, data)
    # From here on both directions are deflated (RFC 4978 §3): imaplib reads its
    # file and writes through send(), so those two are what is wrapped.
    imap = c._imap
    inflating = _Inflating(imap.sock)
    imap.file = io.BufferedReader(inflating)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)

    def send(data: bytes) -> None:
        imap.sock.sendall(deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH))

    imap.send = send
    seen["append"] = c.append("INBOX", body)
    c.select_folder("INBOX")
    before = inflating.wire
    uid = c.search(["SUBJECT", "squeeze"])[0]
    seen["fetched"] = c.fetch([uid], ["BODY.PEEK[]", "RFC822.SIZE"])[uid]
    seen["wire"] = inflating.wire - before
    typ, data = c._raw_command(b"COMPRESS", [b"DEFLATE"], uid=False)
    seen["again"] = (typ, data)
    seen["logout"] = c.logout()
    return seen


async def test_compress_deflate_through_imapclient(imap_server: Any) -> None:
    body = (b"From: Bob <bob@example.com>\r\nTo: alice@example.com\r\n"
            b"Subject: squeeze me\r\nMessage-ID: <z@example.com>\r\n\r\n"
            + b"a line that deflate shrinks to almost nothing at all\r\n" * 4000)
    with trio.fail_after(30):
        seen = await blocking(lambda: _compressed_session(imap_server.ports["imap"], body))
    assert b"COMPRESS=DEFLATE" in seen["caps"]
    assert seen["compress"][0] == "OK", seen["compress"]
    assert seen["append"].startswith(b"[APPENDUID "), seen["append"]
    # Byte-exact through both inflaters and deflaters, and compressed on the wire.
    assert seen["fetched"][b"BODY[]"] == body
    assert seen["fetched"][b"RFC822.SIZE"] == len(body)
    assert seen["wire"] < len(body) // 20, seen["wire"]
    # A second COMPRESS is refused inside the compressed stream (RFC 4978 §3).
    typ, data = seen["again"]
    assert typ == "NO" and b"[COMPRESSIONACTIVE]" in data[0], seen["again"]
    # imapclient's logout() raises unless the (compressed) answer is BYE; its text.
    assert seen["logout"], seen["logout"]
