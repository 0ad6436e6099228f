"""Search contexts (RFC 5267 §4): SEARCH and SORT RETURN (UPDATE) results kept
current with ADDTO/REMOVEFROM as this and other sessions change the mailbox;
CANCELUPDATE; NOUPDATE past the limit."""

from __future__ import annotations

from typing import Any

import trio

from duck.imap.searchcontext import MAX_CONTEXTS

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient


def esearch(lines: list[bytes], tag: bytes) -> list[bytes]:
    """The ESEARCH responses of a search tagged ``tag``, without CRLF."""
    head = b'* ESEARCH (TAG "' + tag + b'")'
    return [line.rstrip(b"\r\n") for line in lines if line.startswith(head)]


async def fill(server: Any, messages: list[bytes]) -> None:
    user = await server.store.users.by_username(USER)
    for data in messages:
        await server.store.messages.append(user.id, "INBOX", data)


async def test_search_context_follows_changes(imap_server: Any) -> None:
    """RFC 5267 §4.3: RETURN (UPDATE) alone answers with the tag only; then flag
    changes (own and another session's), new messages and expunges move messages
    in and out of the result, REMOVEFROM before the EXPUNGEs it concerns."""
    with trio.fail_after(30):
        await fill(imap_server, [simple_message(n, "apple" if n % 2 else "pear")
                                 for n in range(1, 6)])
        port = imap_server.ports["imap"]
        c = await RawClient.logged_in(port, USER, PASSWORD)
        other = await RawClient.logged_in(port, USER, PASSWORD)
        caps = (await c.command(b"c", b"CAPABILITY"))[0]
        assert b" CONTEXT=SEARCH" in caps and b" CONTEXT=SORT" in caps, caps
        await c.command(b"s", b"SELECT INBOX")
        await other.command(b"s", b"SELECT INBOX")
        # Subject apple: 1, 3, 5; the body search is the store's.
        lines = await c.command(b"S1", b'SEARCH RETURN (UPDATE) BODY "message" SUBJECT apple '
                                       b"FLAGGED")
        assert esearch(lines, b"S1") == [b'* ESEARCH (TAG "S1")'], lines
        lines = await c.command(b"t", b"STORE 1:4 +FLAGS (\\Flagged)")
        assert esearch(lines, b"S1") == [b'* ESEARCH (TAG "S1") ADDTO (0 1,3)'], lines
        await other.command(b"t", b"STORE 3 -FLAGS (\\Flagged)")
        await other.command(b"t", b"STORE 5 +FLAGS (\\Flagged)")
        lines = await c.command(b"n", b"NOOP")
        assert sorted(esearch(lines, b"S1")) == [b'* ESEARCH (TAG "S1") ADDTO (0 5)',
                                                 b'* ESEARCH (TAG "S1") REMOVEFROM (0 3)'], lines
        # An expunge: REMOVEFROM with the number the message had, before EXPUNGE.
        await c.command(b"t", b"STORE 1 +FLAGS (\\Deleted)")
        lines = await c.command(b"e", b"EXPUNGE")
        first = lines.index(b'* ESEARCH (TAG "S1") REMOVEFROM (0 1)\r\n')
        assert lines.index(b"* 1 EXPUNGE\r\n") > first, lines
        # A new message that matches (numbers as after the EXISTS).
        new = simple_message(9, "apple")
        await other.command(b"a", b"APPEND INBOX (\\Flagged) {%d+}\r\n" % len(new) + new)
        lines = await c.command(b"n", b"NOOP")
        assert b"* 5 EXISTS\r\n" in lines, lines
        hit = lines.index(b'* ESEARCH (TAG "S1") ADDTO (0 5)\r\n')
        assert hit > lines.index(b"* 5 EXISTS\r\n"), lines
        # CANCELUPDATE: nothing more; an unknown tag is BAD.
        lines = await c.command(b"x", b'CANCELUPDATE "S1"')
        assert lines[-1].startswith(b"x OK"), lines
        lines = await c.command(b"t", b"STORE 1:* -FLAGS (\\Flagged)")
        assert esearch(lines, b"S1") == [], lines
        lines = await c.command(b"x", b'CANCELUPDATE "S1"')
        assert lines[-1].startswith(b"x BAD"), lines
        await c.aclose()
        await other.aclose()


async def test_uid_search_context_with_all_and_limit(imap_server: Any) -> None:
    """UID SEARCH RETURN (UPDATE ALL): the result now, updates in UIDs; a view-answered
    search costs no store query. Past MAX_CONTEXTS: NO [NOUPDATE "tag"], the search is
    still answered. Leaving the mailbox ends the contexts."""
    with trio.fail_after(30):
        await fill(imap_server, [simple_message(n) for n in range(1, 5)])
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await c.command(b"s", b"SELECT INBOX")
        await c.command(b"t", b"STORE 1 +FLAGS (\\Deleted)")
        await c.command(b"t", b"EXPUNGE")  # UIDs 2, 3, 4 at 1, 2, 3
        lines = await c.command(b"U", b"UID SEARCH RETURN (UPDATE ALL) UNSEEN")
        assert esearch(lines, b"U") == [b'* ESEARCH (TAG "U") UID ALL 2:4'], lines
        lines = await c.command(b"t", b"STORE 1,3 +FLAGS (\\Seen)")
        assert esearch(lines, b"U") == [b'* ESEARCH (TAG "U") UID REMOVEFROM (0 2,4)'], lines
        lines = await c.command(b"t", b"UID STORE 4 -FLAGS (\\Seen)")
        assert esearch(lines, b"U") == [b'* ESEARCH (TAG "U") UID ADDTO (0 4)'], lines
        for i in range(MAX_CONTEXTS - 1):
            lines = await c.command(b"M%d" % i, b"SEARCH RETURN (UPDATE) SEEN")
            assert lines[-1].startswith(b"M%d OK" % i) and b"NOUPDATE" not in lines[0]
        lines = await c.command(b"X", b"SEARCH RETURN (UPDATE COUNT) SEEN")
        assert lines[0] == b'* ESEARCH (TAG "X") COUNT 1\r\n', lines
        assert lines[1].startswith(b'* NO [NOUPDATE "X"]'), lines
        await c.command(b"s", b"SELECT INBOX")  # a new selection: contexts end
        lines = await c.command(b"t", b"STORE 1:* -FLAGS (\\Seen)")
        assert not [line for line in lines if b"ESEARCH" in line], lines
        lines = await c.command(b"x", b'CANCELUPDATE "U"')
        assert lines[-1].startswith(b"x BAD"), lines
        await c.aclose()


async def test_sort_context_positions(imap_server: Any) -> None:
    """CONTEXT=SORT (RFC 5267 §4.3): ADDTO and REMOVEFROM carry positions in sort
    order (ascending for additions, descending for removals)."""
    with trio.fail_after(30):
        sized = [b"Subject: s%d\r\n\r\n" % n + b"x" * size + b"\r\n"
                 for n, size in enumerate((50, 10, 30), start=1)]
        await fill(imap_server, sized)
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await c.command(b"s", b"SELECT INBOX")
        lines = await c.command(b"R", b"SORT RETURN (UPDATE ALL) (REVERSE SIZE) US-ASCII "
                                      b"UNDELETED")
        assert esearch(lines, b"R") == [b'* ESEARCH (TAG "R") ALL 1,3,2'], lines
        for size in (40, 5):
            data = b"Subject: new\r\n\r\n" + b"y" * size + b"\r\n"
            lines = await c.command(b"a", b"APPEND INBOX {%d+}\r\n" % len(data) + data)
        # Order by size: 1 (50), 4 (40), 3 (30), 2 (10), 5 (5).
        found = esearch(lines, b"R")
        assert found == [b'* ESEARCH (TAG "R") ADDTO (5 5)'], lines
        lines = await c.command(b"n", b"NOOP")  # the first APPEND's was sent with it
        lines = await c.command(b"t", b"STORE 2,4 +FLAGS (\\Deleted)")
        assert esearch(lines, b"R") == [b'* ESEARCH (TAG "R") REMOVEFROM (4 2 2 4)'], lines
        lines = await c.command(b"t", b"STORE 4 -FLAGS (\\Deleted)")
        assert esearch(lines, b"R") == [b'* ESEARCH (TAG "R") ADDTO (2 4)'], lines
        await c.aclose()
