"""The hot FETCH path: round trips per command, pre-rendered values, byte equality
with the general serializer."""

from __future__ import annotations

from typing import Any

import trio

from duck.store import metrics

from .conftest import MESSAGE, PASSWORD, USER
from .raw import RawClient


async def _loaded(server: Any, n: int) -> None:
    user = await server.store.users.by_username(USER)
    for i in range(n):
        await server.store.messages.append(user.id, "INBOX", MESSAGE.replace(
            b"hello there", b"hello %d" % i))


async def test_session_counts_round_trips_per_command(imap_server: Any) -> None:
    with trio.fail_after(60):
        await _loaded(imap_server, 30)
        client = await RawClient.open(imap_server.ports["imap"])
        await client.login(USER, PASSWORD)
        await client.command(b"a1", b"SELECT INBOX")
        await client.command(b"a0", b"NOOP")  # the journal read that follows SELECT
        metrics.reset()
        lines = await client.command(
            b"a2", b"UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)")
        assert lines[-1].startswith(b"a2 OK")
        assert sum(1 for line in lines if b" FETCH (" in line) == 30
        # The scope closes just after the tagged reply: the next command is read after.
        await client.command(b"a3", b"NOOP")
        stats = metrics.statistics()
        assert stats["UID FETCH"]["commands"] == 1
        # One query for the whole range (the view and the journal are in memory).
        assert stats["UID FETCH"]["round_trips"] <= 1, stats["UID FETCH"]
        await client.aclose()


def _fetch_lines(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if b" FETCH (" in line]


def _answers(lines: list[bytes]) -> list[bytes]:
    """The FETCH responses that answer a request for RFC822.SIZE (not flag updates)."""
    return [line for line in _fetch_lines(lines) if b" RFC822.SIZE " in line]


async def test_fast_path_matches_the_general_path_and_fills_renderings(
        imap_server: Any) -> None:
    with trio.fail_after(60):
        store = imap_server.store
        registered = dict(store.messages.renderers)
        store.messages.renderers.clear()  # messages stored before renderings existed
        try:
            await _loaded(imap_server, 5)
        finally:
            store.messages.renderers.update(registered)
        await _loaded(imap_server, 2)  # and two rendered at delivery
        client = await RawClient.open(imap_server.ports["imap"])
        await client.login(USER, PASSWORD)
        await client.command(b"a1", b"SELECT INBOX")
        items = b"UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODY BODYSTRUCTURE MODSEQ"
        fast = _fetch_lines(await client.command(b"a2", b"FETCH 1:* (" + items + b")"))
        # EMAILID is not on the fast path: the general serializer answers.
        slow = _fetch_lines(await client.command(b"a3", b"FETCH 1:* (" + items + b" EMAILID)"))
        assert len(fast) == len(slow) == 7
        for f, s_ in zip(fast, slow, strict=True):
            assert s_.startswith(f.rstrip(b"\r\n")[:-1] + b" EMAILID (M"), (f, s_)
        # The first FETCH saved the missing renderings; the next one reads them.
        user = await store.users.by_username(USER)
        box = await store.mailboxes.get(user.id, "INBOX")
        names = {"imap_env1", "imap_bs1", "imap_body1"}
        recs = await store.messages.fetch(box.id, range(1, 8), [], renderings=sorted(names))
        assert all(names <= set(r.renderings or ()) for r in recs)
        again = _fetch_lines(await client.command(b"a4", b"FETCH 1:* (" + items + b")"))
        assert again == fast
        assert b'"hello 3"' in fast[3]
        await client.aclose()


async def test_a_large_range_reads_the_digest_and_matches_the_general_path(
        imap_server: Any) -> None:
    with trio.fail_after(120):
        store = imap_server.store
        await _loaded(imap_server, 100)
        user = await store.users.by_username(USER)
        box = await store.mailboxes.get(user.id, "INBOX")
        await store.messages.copy(box.id, range(1, 101), user.id, "INBOX")  # 200
        client = await RawClient.open(imap_server.ports["imap"])
        await client.login(USER, PASSWORD)
        await client.command(b"a1", b"SELECT INBOX")
        await client.command(b"a0", b"NOOP")
        items = b"UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE"
        store.messages.cache.clear()  # (deliveries filled it; the digest is tested)
        metrics.reset()
        whole = _fetch_lines(await client.command(b"a2", b"FETCH 1:* (" + items + b")"))
        # The digest, 64 messages a document: one query for the 200 ENVELOPEs (with
        # sizes and dates), one for the BODYSTRUCTUREs of the same chunks.
        assert len(whole) == 200 and metrics.statistics()["FETCH"]["round_trips"] == 2
        # Another session expunges two: this session still has them in its view.
        await store.messages.store_flags(box.id, [5, 150], "add", ["\\Deleted"])
        await store.messages.expunge(box.id)
        # The other session's \Deleted may reach this one first as an unsolicited
        # FETCH (UID n FLAGS (...)) before the answer: RFC 3501 §7 allows it, and
        # only the answers are compared here.
        fast = _answers(await client.command(b"a2", b"FETCH 1:* (" + items + b")"))
        slow = _answers(await client.command(b"a3", b"FETCH 1:* (" + items + b" EMAILID)"))
        # RFC 2180 §4.1.2: a message expunged elsewhere is either left out or answered
        # with the data it had (the record cache keeps what never changes).
        gone = (b"(UID 5 ", b"(UID 150 ")
        kept = [line for line in whole if not any(g in line for g in gone)]
        assert len(kept) == 198
        assert [line for line in fast if not any(g in line for g in gone)] == kept
        assert all(line in whole for line in fast)  # sequence numbers stay
        by_uid = {f.split(b" (UID ")[1].split(b" ")[0]: f for f in fast}
        assert len([s_ for s_ in slow if not any(g in s_ for g in gone)]) == 198
        for s_ in slow:
            f = by_uid[s_.split(b" (UID ")[1].split(b" ")[0]]
            assert s_.startswith(f.rstrip(b"\r\n")[:-1] + b" EMAILID (M"), (f, s_)
        await client.aclose()


async def test_an_8bit_envelope_is_quoted_only_in_a_utf8_session(imap_server: Any) -> None:
    """The UTF-8 rendering is kept where it differs: an 8-bit Subject (RFC 6532) is a
    literal in a plain session and a quoted string after ENABLE UTF8=ACCEPT (RFC
    6855 §3); an ASCII one reads the same in both."""
    with trio.fail_after(60):
        user = await imap_server.store.users.by_username(USER)
        for subject in ("caf\u00e9 \u00fcber", "plain ascii"):
            await imap_server.store.messages.append(user.id, "INBOX", MESSAGE.replace(
                b"Subject: ", b"Subject: " + subject.encode() + b" ", 1))
        answers = {}
        for utf8 in (False, True):
            client = await RawClient.open(imap_server.ports["imap"])
            await client.login(USER, PASSWORD)
            if utf8:
                await client.command(b"e", b"ENABLE UTF8=ACCEPT")
            await client.command(b"s", b"SELECT INBOX")
            lines = await client.command(b"f", b"FETCH 1:2 (ENVELOPE BODYSTRUCTURE)")
            answers[utf8] = b"".join(lines[:-1])
            await client.aclose()
        word = "caf\u00e9 \u00fcber".encode()
        assert b'"' + word not in answers[False]
        assert b"{" in answers[False].split(b"ENVELOPE", 2)[1]  # (a literal)
        assert b'"' + word in answers[True]
        ascii_plain = answers[False].split(b"* 2 FETCH", 1)[1]
        assert ascii_plain == answers[True].split(b"* 2 FETCH", 1)[1]
