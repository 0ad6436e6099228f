"""SEARCH and UID SEARCH with the RFC 3501 keys; view-answered and store-answered."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import trio
from imapclient import IMAPClient

from .conftest import PASSWORD, USER, blocking


def _prepared(server: Any) -> IMAPClient:
    c = IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=20)
    c.login(USER, PASSWORD)
    when = dt.datetime(2021, 3, 4, 12, 0, 0, tzinfo=dt.UTC)
    messages = [
        (b"From: Carol <carol@example.org>\r\nTo: alice@example.com\r\nSubject: Lunch plans"
         b"\r\nDate: Thu, 4 Mar 2021 10:00:00 +0000\r\nX-Tag: food\r\n\r\nSoup or salad?\r\n",
         ("\\Seen",)),
        (b"From: Dave <dave@example.net>\r\nTo: bob@example.com\r\nCc: alice@example.com\r\n"
         b"Subject: Report\r\n\r\n" + b"quarterly numbers " * 200 + b"\r\n", ("\\Flagged",)),
        (b"From: carol@example.org\r\nSubject: Re: Lunch plans\r\n\r\nSalad.\r\n",
         ("\\Deleted", "$Important")),
    ]
    for data, flags in messages:
        c.append("INBOX", data, flags=flags, msg_time=when)
    c.select_folder("INBOX")
    return c


async def test_search_keys(imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await blocking(lambda: _prepared(imap_server))
        cases: list[tuple[Any, list[int]]] = [
            ("ALL", [1, 2, 3]),
            ("SEEN", [1]),
            ("UNSEEN", [2, 3]),
            ("FLAGGED", [2]),
            ("DELETED", [3]),
            ("UNDELETED", [1, 2]),
            (["KEYWORD", "$Important"], [3]),
            (["UNKEYWORD", "$Important"], [1, 2]),
            ("RECENT", [1, 2, 3]),
            ("NEW", [2, 3]),
            ("OLD", []),
            (["FROM", "carol"], [1, 3]),
            (["TO", "bob"], [2]),
            (["CC", "alice"], [2]),
            (["SUBJECT", "lunch"], [1, 3]),
            (["HEADER", "X-Tag", "food"], [1]),
            (["BODY", "salad"], [1, 3]),
            (["TEXT", "quarterly"], [2]),
            (["LARGER", "1000"], [2]),
            (["SMALLER", "1000"], [1, 3]),
            (["ON", "4-Mar-2021"], [1, 2, 3]),
            (["BEFORE", "4-Mar-2021"], []),
            (["SINCE", "5-Mar-2021"], []),
            (["SENTON", "4-Mar-2021"], [1]),
            (["UID", "2:*"], [2, 3]),
            (["2:3"], [2, 3]),
            (["NOT", "SEEN"], [2, 3]),
            (["OR", "FLAGGED", "DELETED"], [2, 3]),
            (["OR", "FROM", "dave", "SUBJECT", "re:"], [2, 3]),
            (["FLAGGED", "FROM", "dave"], [2]),
        ]
        for criteria, expected in cases:
            got = await blocking(functools.partial(c.search, criteria))
            assert sorted(got) == expected, (criteria, got)
        await blocking(c.logout)


async def test_search_returns_sequence_numbers_and_esearch(imap_server: Any) -> None:
    from .raw import RawClient

    with trio.fail_after(30):
        c = await blocking(lambda: _prepared(imap_server))
        await blocking(c.logout)
        r = await RawClient.open(imap_server.ports["imap"])
        await r.login(USER, PASSWORD)
        await r.command(b"s", b"SELECT INBOX")
        lines = await r.command(b"a", b"SEARCH UNSEEN")
        assert lines[0] == b"* SEARCH 2 3\r\n"
        lines = await r.command(b"b", b"SEARCH RETURN (MIN MAX COUNT) ALL")
        assert lines[0] == b'* ESEARCH (TAG "b") MIN 1 MAX 3 COUNT 3\r\n', lines
        lines = await r.command(b"c", b"UID SEARCH RETURN () FROM carol")
        assert lines[0] == b'* ESEARCH (TAG "c") UID ALL 1,3\r\n', lines
        lines = await r.command(b"d", b"SEARCH CHARSET KOI8-R ALL")
        assert lines[-1].startswith(b"d NO [BADCHARSET"), lines
        lines = await r.command(b"e", b"SEARCH CHARSET UTF-8 SUBJECT \"Lunch\"")
        assert lines[0] == b"* SEARCH 1 3\r\n", lines


async def test_condstore_enabled_by_a_command_and_min_max_modseq(imap_server: Any) -> None:
    """RFC 7162 §3.1: a CONDSTORE-enabling command with a mailbox selected gets the
    mailbox's HIGHESTMODSEQ at once; §3.1.5: ESEARCH RETURN (MIN) / (MAX) report
    the modseq of the message returned, with ALL the highest of all (imaptest's
    esearch-condstore group)."""
    import re

    from .conftest import MESSAGE
    from .raw import RawClient

    with trio.fail_after(30):
        user = await imap_server.store.users.by_username(USER)
        for _ in range(4):
            await imap_server.store.messages.append(user.id, "INBOX", MESSAGE)
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        await c.command(b"s", b"SELECT INBOX")
        lines = await c.command(b"f", b"FETCH 1 (MODSEQ)")
        assert lines[0].startswith(b"* OK [HIGHESTMODSEQ "), lines
        lines = await c.command(b"f2", b"FETCH 1 (MODSEQ)")  # told once
        assert not any(b"HIGHESTMODSEQ" in x for x in lines), lines
        mod = {}
        for n in (1, 3, 2, 4):
            lines = await c.command(b"t", b"STORE %d +FLAGS (\\Seen)" % n)
            mod[n] = int(re.search(rb"MODSEQ \((\d+)\)", lines[0]).group(1))  # type: ignore[union-attr]
        query = b' 1:3 MODSEQ "/flags/\\\\seen" all 1'
        for ret, expected in ((b"MIN", b"MIN 1 MODSEQ %d" % mod[1]),
                              (b"MAX", b"MAX 3 MODSEQ %d" % mod[3]),
                              (b"", b"ALL 1:3 MODSEQ %d" % mod[2]),
                              (b"MIN MAX", b"MIN 1 MAX 3 MODSEQ %d" % max(mod[1], mod[3]))):
            lines = await c.command(b"e", b"SEARCH RETURN (" + ret + b")" + query)
            assert lines[0] == b'* ESEARCH (TAG "e") ' + expected + b"\r\n", lines
        await c.aclose()


async def test_search_partial(imap_server: Any) -> None:
    """RFC 9394 §3: RETURN (PARTIAL first:last) gives the results at those positions
    (negative ones from the end), NIL when none is there; MIN/MAX/COUNT still see
    the whole result; a range that is not one is BAD, PARTIAL with ALL too."""
    from .conftest import simple_message
    from .raw import RawClient

    with trio.fail_after(30):
        user = await imap_server.store.users.by_username(USER)
        for n in range(1, 8):
            await imap_server.store.messages.append(
                user.id, "INBOX", simple_message(n), ["\\Seen"] if n % 2 else [])
        r = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        assert b" PARTIAL" in (await r.command(b"c", b"CAPABILITY"))[0]
        await r.command(b"s", b"SELECT INBOX")
        await r.command(b"x", b"STORE 2 +FLAGS (\\Deleted)")
        await r.command(b"x", b"EXPUNGE")  # UIDs 1,3..7 at sequence numbers 1..6
        cases = [
            (b"SEARCH RETURN (PARTIAL 2:4) ALL", b"PARTIAL (2:4 2:4)"),
            (b"SEARCH RETURN (PARTIAL 4:2) ALL", b"PARTIAL (2:4 2:4)"),
            (b"SEARCH RETURN (PARTIAL -1:-2) ALL", b"PARTIAL (-1:-2 5:6)"),
            (b"SEARCH RETURN (PARTIAL 6:9) ALL", b"PARTIAL (6:9 6)"),
            (b"SEARCH RETURN (PARTIAL 7:9) ALL", b"PARTIAL (7:9 NIL)"),
            (b"SEARCH RETURN (PARTIAL -3:-9) SEEN", b"PARTIAL (-3:-9 1:2)"),  # seen: 1,2,4,6
            (b"SEARCH RETURN (COUNT MIN PARTIAL 2:3) SEEN",
             b"MIN 1 COUNT 4 PARTIAL (2:3 2,4)"),
            (b"UID SEARCH RETURN (PARTIAL 1:2) ALL", b"UID PARTIAL (1:2 1,3)"),
            (b"UID SEARCH RETURN (PARTIAL -1:-1) UNSEEN", b"UID PARTIAL (-1:-1 6)"),
        ]
        for command, expected in cases:
            lines = await r.command(b"p", command)
            assert lines[0] == b'* ESEARCH (TAG "p") ' + expected + b"\r\n", (command, lines)
        for wrong in (b"(PARTIAL 1)", b"(PARTIAL 1:*)", b"(PARTIAL *:1)", b"(PARTIAL 0:3)",
                      b"(PARTIAL -1:2)", b"(PARTIAL 1:2 ALL)", b"(PARTIAL 1:2 PARTIAL 3:4)"):
            lines = await r.command(b"b", b"SEARCH RETURN " + wrong + b" ALL")
            assert lines[-1].startswith(b"b BAD"), (wrong, lines)
        await r.aclose()


async def test_an_overlong_search_string_is_refused_before_it_is_run(imap_server: Any) -> None:
    # Its pattern is compiled for every document tested (duck/store/index/query.py,
    # MAX_STRING): refused with a reason, the session goes on.
    from duck.store.index.query import MAX_STRING

    from .raw import RawClient

    with trio.fail_after(30):
        r = await RawClient.open(imap_server.ports["imap"])
        await r.login(USER, PASSWORD)
        await r.command(b"s", b"SELECT INBOX")
        needle = b"x" * (MAX_STRING + 1)
        lines = await r.command(b"a", b"SEARCH BODY {%d+}\r\n" % len(needle) + needle)
        assert lines[-1].startswith(b"a BAD") and b"longer than" in lines[-1], lines
        lines = await r.command(b"b", b"SEARCH BODY {%d+}\r\n" % MAX_STRING + b"x" * MAX_STRING)
        assert lines[-1].startswith(b"b OK"), lines
