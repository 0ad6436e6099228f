"""SORT, THREAD (RFC 5256) and ESEARCH (RFC 4731) driven by imapclient, the way a
client library sends and parses them. (SEARCHRES is in test_searchres.py;
COMPRESS is in test_compress.py, as imapclient cannot compress.)"""

from __future__ import annotations

from typing import Any

import trio
from imapclient import IMAPClient
from imapclient.response_parser import parse_response

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
