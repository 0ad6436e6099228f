"""Two sessions on one mailbox: the untagged updates each sees, and when (RFC 3501 §7.4.1)."""

from __future__ import annotations

from typing import Any

import trio

from .conftest import PASSWORD, USER, KeywordChecker, simple_message
from .raw import RawClient


async def _selected(server: Any, checker: KeywordChecker | None = None) -> RawClient:
    c = await RawClient.open(server.ports["imap"])
    await c.login(USER, PASSWORD)
    lines = await c.command(b"S", b"SELECT INBOX")
    assert lines[-1].startswith(b"S OK [READ-WRITE]"), lines
    if checker is not None:
        checker.absorb(lines)
    return c


async def _two_with_messages(
    server: Any, ca: KeywordChecker, cb: KeywordChecker
) -> tuple[RawClient, RawClient]:
    """Session A with two messages appended and seen, then session B on the same INBOX."""
    a = await _selected(server, ca)
    await _append(a, 1)
    await _append(a, 2)
    ca.absorb(await a.command(b"N", b"NOOP"))
    return a, await _selected(server, cb)


def _first(lines: list[bytes], start: bytes, has: bytes = b"") -> int:
    """Index of the first line starting with ``start`` that contains ``has``."""
    return next(i for i, x in enumerate(lines) if x.startswith(start) and has in x)


async def _append(c: RawClient, n: int) -> list[bytes]:
    msg = simple_message(n)
    await c.send(b"A APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    lines = await c.until_tagged(b"A")
    assert lines[-1].startswith(b"A OK [APPENDUID "), lines
    return lines


async def test_exists_after_other_append(imap_server: Any) -> None:
    with trio.fail_after(30):
        a = await _selected(imap_server)
        b = await _selected(imap_server)
        # The appending session has the mailbox selected: it learns first, and so
        # is the one session that sees the message as \Recent (RFC 3501 §2.3.2).
        lines_b = await _append(b, 1)
        assert b"* 1 EXISTS\r\n" in lines_b and b"* 1 RECENT\r\n" in lines_b
        lines = await a.command(b"N", b"NOOP")
        assert b"* 1 EXISTS\r\n" in lines
        assert b"* 0 RECENT\r\n" in lines
        flags_a = await a.command(b"F", b"FETCH 1 (FLAGS)")
        flags_b = await b.command(b"F", b"FETCH 1 (FLAGS)")
        assert b"\\Recent" not in flags_a[0] and b"\\Recent" in flags_b[0]
        await a.aclose()
        await b.aclose()


async def test_flags_from_other_session(imap_server: Any) -> None:
    with trio.fail_after(30):
        a = await _selected(imap_server)
        await _append(a, 1)
        await a.command(b"N", b"NOOP")
        b = await _selected(imap_server)
        lines = await b.command(b"T", b"STORE 1 +FLAGS (\\Flagged $Work)")
        assert any(b"FETCH (FLAGS (" in x and b"\\Flagged" in x for x in lines), lines
        lines = await a.command(b"N", b"NOOP")
        fetch = [x for x in lines if b" FETCH " in x]
        assert len(fetch) == 1 and b"\\Flagged" in fetch[0] and b"$Work" in fetch[0], lines
        # The session that made the change is not told twice.
        lines = await b.command(b"N", b"NOOP")
        assert not [x for x in lines if b" FETCH " in x], lines


async def test_new_keyword_announced_in_every_session(imap_server: Any) -> None:
    """RFC 3501 §7.2.6: a keyword is in an untagged FLAGS (and PERMANENTFLAGS) before
    the first FETCH that shows it, in the session that made it and in the others."""
    with trio.fail_after(30):
        ca, cb = KeywordChecker(), KeywordChecker()
        a, b = await _two_with_messages(imap_server, ca, cb)
        lines = await a.command(b"T", b"STORE 1 +FLAGS ($Label2)")
        ca.absorb(lines)
        flags = _first(lines, b"* FLAGS", b"$Label2")
        perm = _first(lines, b"* OK [PERMANENTFLAGS", b"$Label2")
        assert b"\\*)" in lines[perm], lines
        assert flags < perm < _first(lines, b"* 1 FETCH"), lines
        # Said once: a second STORE with it announces nothing.
        lines = await a.command(b"T", b"STORE 2 +FLAGS ($label2)")
        ca.absorb(lines)
        assert not [x for x in lines if x.startswith(b"* FLAGS")], lines
        lines = await b.command(b"N", b"NOOP")
        cb.absorb(lines)
        assert _first(lines, b"* FLAGS", b"$Label2") < _first(lines, b"* 1 FETCH"), lines
        assert _first(lines, b"* OK [PERMANENTFLAGS", b"$Label2") < _first(lines, b"* 1 FETCH")
        lines = await b.command(b"F", b"FETCH 1:2 (FLAGS)")
        cb.absorb(lines)
        assert not [x for x in lines if x.startswith(b"* FLAGS")], lines
        assert cb.flags_responses == 2 and ca.flags_responses == 2


async def test_store_shows_keyword_from_elsewhere(imap_server: Any) -> None:
    """imaptest's case: B's STORE answers with the message's flags as they are in the
    store, keywords set by A included, before B's view has heard of them."""
    with trio.fail_after(30):
        ca, cb = KeywordChecker(), KeywordChecker()
        a, b = await _two_with_messages(imap_server, ca, cb)
        ca.absorb(await a.command(b"T", b"STORE 1:2 +FLAGS.SILENT ($Label2 $Other)"))
        lines = await b.command(b"T", b"STORE 1 +FLAGS (\\Answered)")
        cb.absorb(lines)
        fetch = _first(lines, b"* 1 FETCH")
        assert b"$Label2" in lines[fetch] and _first(lines, b"* FLAGS") < fetch, lines
        # FETCH BODY[] sets \Seen, and the FLAGS it adds carry A's keywords.
        ca.absorb(await a.command(b"T", b"STORE 2 +FLAGS.SILENT ($Third)"))
        lines = await b.command(b"F", b"FETCH 2 (BODY[TEXT])")
        cb.absorb(lines)
        fetch = _first(lines, b"* 2 FETCH")
        assert b"$Third" in lines[fetch] and _first(lines, b"* FLAGS", b"$Third") < fetch


async def test_appended_keyword_announced(imap_server: Any) -> None:
    """A message that arrives with a keyword new to the mailbox: the FLAGS naming it
    comes with the EXISTS, before any FETCH of the message."""
    with trio.fail_after(30):
        ca, cb = KeywordChecker(), KeywordChecker()
        a = await _selected(imap_server, ca)
        b = await _selected(imap_server, cb)
        msg = simple_message(1)
        await a.send(b"A APPEND INBOX ($Fresh \\Flagged) {%d+}\r\n" % len(msg) + msg + b"\r\n")
        lines = await a.until_tagged(b"A")
        ca.absorb(lines)
        assert _first(lines, b"* FLAGS", b"$Fresh") < _first(lines, b"* 1 EXISTS"), lines
        lines = await b.command(b"N", b"NOOP")
        cb.absorb(lines)
        assert _first(lines, b"* FLAGS", b"$Fresh") < _first(lines, b"* 1 EXISTS"), lines
        for c, checker in ((a, ca), (b, cb)):
            lines = await c.command(b"F", b"FETCH 1 (FLAGS)")
            checker.absorb(lines)
            assert b"$Fresh" in lines[0] and len(lines) == 2, lines
        # Copied in from another mailbox by a session elsewhere: the same.
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        await c.send(b"A APPEND Archive ($Copied) {%d+}\r\n" % len(msg) + msg + b"\r\n")
        await c.until_tagged(b"A")
        await c.command(b"s", b"SELECT Archive")
        assert (await c.command(b"c", b"COPY 1 INBOX"))[-1].startswith(b"c OK")
        lines = await b.command(b"N", b"NOOP")
        cb.absorb(lines)
        assert _first(lines, b"* FLAGS", b"$Copied") < _first(lines, b"* 2 EXISTS"), lines
        await c.aclose()


async def test_expunge_only_where_allowed(imap_server: Any) -> None:
    with trio.fail_after(30):
        a = await _selected(imap_server)
        for n in range(1, 4):
            await _append(a, n)
        await a.command(b"N", b"NOOP")
        b = await _selected(imap_server)
        await b.command(b"T", b"STORE 2 +FLAGS.SILENT (\\Deleted)")
        lines = await b.command(b"E", b"EXPUNGE")
        assert b"* 2 EXPUNGE\r\n" in lines
        # a: FETCH, STORE and SEARCH must not carry the EXPUNGE; sequence numbers hold.
        lines = await a.command(b"F", b"FETCH 1:3 (UID)")
        assert not any(b"EXPUNGE" in x for x in lines), lines
        assert b"* 3 FETCH (UID 3)\r\n" in lines
        lines = await a.command(b"S", b"SEARCH ALL")
        assert not any(x.endswith(b" EXPUNGE\r\n") for x in lines), lines
        assert b"* SEARCH 1 3\r\n" in lines  # message 2 is gone, 3 keeps its number
        # (and the answer says it may lack a message expunged meanwhile: RFC 5530)
        assert lines[-1].startswith(b"S OK [EXPUNGEISSUED]"), lines
        lines = await a.command(b"T", b"STORE 3 +FLAGS (\\Seen)")
        assert not any(b"EXPUNGE" in x for x in lines), lines
        assert any(x.startswith(b"* 3 FETCH") for x in lines), lines
        # NOOP may deliver it.
        lines = await a.command(b"N", b"NOOP")
        assert b"* 2 EXPUNGE\r\n" in lines
        lines = await a.command(b"F", b"FETCH 2 (UID)")
        assert b"* 2 FETCH (UID 3)\r\n" in lines


async def test_uid_fetch_carries_expunge(imap_server: Any) -> None:
    with trio.fail_after(30):
        a = await _selected(imap_server)
        for n in range(1, 3):
            await _append(a, n)
        await a.command(b"N", b"NOOP")
        b = await _selected(imap_server)
        await b.command(b"T", b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        await b.command(b"E", b"EXPUNGE")
        lines = await a.command(b"F", b"UID FETCH 1:* (FLAGS)")
        assert b"* 1 EXPUNGE\r\n" in lines
        assert lines.index(b"* 1 EXPUNGE\r\n") < len(lines) - 2
        assert any(x.startswith(b"* 1 FETCH (UID 2 ") for x in lines), lines


async def test_examine_is_read_only(imap_server: Any) -> None:
    with trio.fail_after(30):
        a = await _selected(imap_server)
        await _append(a, 1)
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        lines = await c.command(b"X", b"EXAMINE INBOX")
        assert lines[-1].startswith(b"X OK [READ-ONLY]"), lines
        assert b"* OK [PERMANENTFLAGS ()] flags permitted\r\n" in lines
        lines = await c.command(b"T", b"STORE 1 +FLAGS (\\Seen)")
        assert lines[-1].startswith(b"T NO"), lines
        # BODY[] on a read-only mailbox does not set \Seen.
        lines = await c.command(b"F", b"FETCH 1 (BODY[] FLAGS)")
        assert lines[-1].startswith(b"F OK") and b"\\Seen" not in lines[0], lines


class _Model:
    """A client's picture of the mailbox, kept only from untagged responses."""

    def __init__(self) -> None:
        self.uids: list[int | None] = []
        self.keywords = KeywordChecker()

    def absorb(self, lines: list[bytes]) -> None:
        self.keywords.absorb(lines)
        for line in lines:
            parts = line.split(b" ")
            if not line.startswith(b"* ") or len(parts) < 3 or not parts[1].isdigit():
                continue
            n, kind = int(parts[1]), parts[2].rstrip(b"\r\n")
            if kind == b"EXISTS":
                assert n >= len(self.uids), (n, self.uids, line)
                self.uids += [None] * (n - len(self.uids))
            elif kind == b"EXPUNGE":
                assert 1 <= n <= len(self.uids), (n, self.uids)
                del self.uids[n - 1]
            elif kind == b"FETCH" and b"UID " in line:
                uid = int(line.split(b"UID ")[1].split(b" ")[0].rstrip(b")\r\n"))
                assert 1 <= n <= len(self.uids), (n, self.uids, line)
                known = self.uids[n - 1]
                assert known in (None, uid), (n, known, uid, line)
                self.uids[n - 1] = uid
        real = [u for u in self.uids if u is not None]
        assert real == sorted(set(real)), self.uids


async def _random_op(rng: Any, c: RawClient, model: _Model, step: int) -> None:
    op = rng.choice(["append", "append", "store", "expunge", "fetch", "noop", "search",
                     "uidstore"])
    n = len(model.uids)
    if op == "append":
        msg = simple_message(step)
        await c.send(b"A APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        lines = await c.until_tagged(b"A")
    elif op == "store" and n:
        flag = rng.choice([b"\\Deleted", b"\\Seen", b"$k", b"$Label%d" % rng.randint(1, 5)])
        lines = await c.command(b"T", b"STORE %d +FLAGS (%s)" % (rng.randint(1, n), flag))
        assert not any(b"EXPUNGE" in x for x in lines), lines
    elif op == "uidstore" and n:
        lines = await c.command(b"U", b"UID STORE 1:* -FLAGS.SILENT (\\Seen)")
    elif op == "expunge":
        lines = await c.command(b"E", b"EXPUNGE")
    elif op == "fetch" and n:
        lines = await c.command(b"F", b"FETCH 1:* (UID FLAGS)")
        assert not any(b"EXPUNGE" in x for x in lines), lines
    elif op == "search":
        lines = await c.command(b"S", b"SEARCH ALL")
        # (The tagged OK may say EXPUNGEISSUED: test_search_expunged.py.)
        assert not any(x.endswith(b" EXPUNGE\r\n") for x in lines), lines
        result = next(x for x in lines if x.startswith(b"* SEARCH"))
        assert all(1 <= int(x) <= n for x in result.split()[2:]), (result, n)
    else:
        lines = await c.command(b"N", b"NOOP")
    assert lines[-1].split(b" ")[1] == b"OK", lines
    model.absorb(lines)


async def test_concurrent_sessions_stay_consistent(imap_server: Any) -> None:
    """Three sessions interleave APPEND/STORE/EXPUNGE/FETCH/SEARCH at random; each
    one's sequence numbers follow only from what it was told, and end up agreeing
    with the store; no FETCH shows a keyword its FLAGS did not list."""
    import random

    with trio.fail_after(90):
        models = [_Model() for _ in range(3)]
        clients = [await _selected(imap_server, m.keywords) for m in models]

        async def run(i: int) -> None:
            rng = random.Random(i)
            c, model = clients[i], models[i]
            for step in range(30):
                await _random_op(rng, c, model, step * 10 + i)

        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(run, i)
        user = await imap_server.store.users.by_username(USER)
        inbox = await imap_server.store.mailboxes.get(user.id, "INBOX")
        truth = [s.uid for s in await imap_server.store.messages.view(inbox.id)]
        for c, model in zip(clients, models, strict=True):
            model.absorb(await c.command(b"N", b"NOOP"))
            model.absorb(await c.command(b"F", b"FETCH 1:* (UID)") if model.uids else [])
            assert model.uids == truth


async def test_selected_mailbox_renamed_or_deleted_elsewhere(imap_server: Any) -> None:
    with trio.fail_after(30):
        a = await RawClient.open(imap_server.ports["imap"])
        await a.login(USER, PASSWORD)
        await a.command(b"c", b"CREATE Box")
        lines = await a.command(b"s", b"SELECT Box")
        assert lines[-1].startswith(b"s OK"), lines
        b = await RawClient.open(imap_server.ports["imap"])
        await b.login(USER, PASSWORD)
        await b.command(b"r", b"RENAME Box Crate")
        msg = simple_message(1)
        await b.send(b"a APPEND Crate {%d+}\r\n" % len(msg) + msg + b"\r\n")
        await b.until_tagged(b"a")
        # The session follows its mailbox under the new name.
        lines = await a.command(b"n", b"NOOP")
        assert b"* 1 EXISTS\r\n" in lines, lines
        await b.command(b"d", b"DELETE Crate")
        await a.send(b"n2 NOOP\r\n")
        lines = [await a.line()]
        assert any(x.startswith(b"* BYE") for x in lines), lines
        assert await a.eof()


async def test_own_writes_reach_the_view_without_a_journal_read(imap_server: Any) -> None:
    """APPEND, STORE and EXPUNGE into the selected mailbox, with nothing else
    changing it: the session applies what its write did (the journal entries it
    made say the same) and reads no journal; the untagged responses are those the
    journal read would have given (RFC 3501 §7.3.1, §7.4.1, §2.3.2)."""
    from duck.store import metrics

    with trio.fail_after(30):
        a = await _selected(imap_server)
        await _append(a, 1)  # the journal is read once after SELECT's state
        metrics.reset()
        lines = await _append(a, 2)
        assert b"* 2 EXISTS\r\n" in lines and b"* 2 RECENT\r\n" in lines, lines
        lines = await a.command(b"T", b"STORE 2 +FLAGS (\\Deleted)")
        assert lines[0] == b"* 2 FETCH (FLAGS (\\Deleted \\Recent))\r\n", lines
        lines = await a.command(b"X", b"EXPUNGE")
        # (Message 2 was \\Recent here: the count goes down with it, RFC 3501 §7.3.2.)
        assert lines[:-1] == [b"* 2 EXPUNGE\r\n", b"* 1 RECENT\r\n"], lines
        lines = await a.command(b"N", b"NOOP")  # NOOP always reads: nothing new
        assert lines[:-1] == [], lines
        await a.command(b"N2", b"LOGOUT")
        by_command = {k: v["by_db_command"] for k, v in metrics.statistics().items()}
        # The find left is EXPUNGE's own (it reads the \Deleted ones, without
        # looking first: the view knows of one); STORE trusts the view's flags (the
        # mailbox has not moved since), no journal read, and \Recent's claim is part
        # of the delivery's write (no read of the mailbox document).
        for verb, finds in (("APPEND", 0), ("STORE", 0), ("EXPUNGE", 1)):
            assert by_command[verb].get("find", 0) == finds, (verb, by_command[verb])
        # Another session: the message is \Recent for the appender only.
        b = await _selected(imap_server)
        lines = await b.command(b"F", b"FETCH 1 (FLAGS)")
        assert b"\\Recent" not in lines[0]
        await a.aclose()
        await b.aclose()


async def test_expunge_of_a_deletion_the_view_has_not_seen(imap_server: Any) -> None:
    """EXPUNGE with no \\Deleted message in the view still removes one another
    session flagged a moment before (RFC 3501 §6.4.3: every message with the flag),
    and with none at all it is one read and no transaction."""
    from duck.store import metrics

    with trio.fail_after(30):
        a = await _selected(imap_server)
        b = await _selected(imap_server)
        await _append(a, 1)
        await _append(a, 2)
        await a.command(b"N", b"NOOP")
        metrics.reset()
        lines = await a.command(b"X", b"EXPUNGE")
        assert lines[:-1] == [] and lines[-1].startswith(b"X OK"), lines
        assert metrics.statistics()["EXPUNGE"]["by_db_command"] == {"find": 1}
        # B flags message 1; A's view has not been told yet when A expunges.
        user = await imap_server.store.users.by_username(USER)
        box = await imap_server.store.mailboxes.get(user.id, "INBOX")
        await imap_server.store.messages.store_flags(box.id, [1], "add", ["\\Deleted"])
        lines = await a.command(b"X2", b"EXPUNGE")
        assert b"* 1 EXPUNGE\r\n" in lines, lines
        await b.command(b"N", b"NOOP")
        lines = await b.command(b"F", b"FETCH 1:* (UID)")
        assert lines[:-1] == [b"* 1 FETCH (UID 2)\r\n"], lines
        await a.aclose()
        await b.aclose()


async def test_own_write_after_a_rival_change_reads_the_journal(imap_server: Any) -> None:
    """When another session changed the mailbox first, the own write cannot be applied
    alone: the journal is read and both changes are reported, in order."""
    with trio.fail_after(30):
        a = await _selected(imap_server)
        b = await _selected(imap_server)
        await _append(b, 1)  # B's: A has not read it yet
        lines = await _append(a, 2)
        assert b"* 2 EXISTS\r\n" in lines, lines
        lines = await a.command(b"F", b"FETCH 1:* (UID FLAGS)")
        fetched = [x for x in lines if b" FETCH (" in x]
        assert len(fetched) == 2 and b"\\Recent" not in fetched[0], fetched
        # The message B appended is \Recent for B, A's own for A.
        assert b"\\Recent" in fetched[1], fetched
        await a.aclose()
        await b.aclose()


async def test_reselect_needs_no_journal_read_after_it(imap_server: Any) -> None:
    """A SELECT of a mailbox the session selected before subscribes before its
    reads: the next command reads no journal (nothing woke it), yet a change made
    after the SELECT is reported; a mailbox made again under the same name is
    followed under its new id."""
    from duck.store import metrics

    store = imap_server.store
    with trio.fail_after(30):
        a = await _selected(imap_server)
        await _append(a, 1)
        metrics.reset()
        await a.command(b"S2", b"SELECT INBOX")
        # The mailbox and its view; \Recent is taken already (the mailbox says so).
        assert metrics.statistics()["SELECT"]["round_trips"] == 2
        metrics.reset()
        lines = await a.command(b"F", b"FETCH 1 (FLAGS)")
        assert lines[-1].startswith(b"F OK"), lines
        assert metrics.statistics().get("FETCH", {}).get("round_trips", 0) == 0
        user = await store.users.by_username(USER)
        await store.messages.append(user.id, "INBOX", simple_message(2))
        lines = await a.command(b"N", b"NOOP")
        assert b"* 2 EXISTS\r\n" in lines, lines
        # Same name, another mailbox.
        await a.command(b"C", b"CREATE Box")
        await a.command(b"S3", b"SELECT Box")
        await a.command(b"S4", b"SELECT INBOX")
        await store.mailboxes.delete(user.id, "Box")
        box = await store.mailboxes.create(user.id, "Box")
        lines = await a.command(b"S5", b"SELECT Box")
        assert b"* 0 EXISTS\r\n" in lines, lines
        await store.messages.append(user.id, "Box", simple_message(3))
        with trio.fail_after(10):
            while True:  # (a wake-up through the change stream, or the next poll)
                lines = await a.command(b"F2", b"FETCH 1:* (UID)")
                if b"* 1 EXISTS\r\n" in lines:
                    break
                await trio.sleep(0.05)
        assert (await store.mailboxes.get(user.id, "Box")).id == box.id
        await a.aclose()


async def test_store_and_expunge_read_the_journal_first_when_behind(imap_server: Any) -> None:
    """A STORE or EXPUNGE in a session that another session's change woke reads the
    journal before it, not after (the update it sends is the same): the flags it
    acts on are then current, so the store reads neither the messages nor the
    mailbox's counters, and EXPUNGE does not look for \\Deleted ones first."""
    from duck.store import metrics

    with trio.fail_after(30):
        a = await _selected(imap_server)
        b = await _selected(imap_server)
        for n in (1, 2, 3):
            await _append(a, n)
        await a.command(b"N", b"NOOP")
        await b.command(b"N", b"NOOP")

        def verbs() -> dict[str, dict[str, int]]:
            return {k: v["by_db_command"] for k, v in metrics.statistics().items()}

        await b.command(b"B1", b"STORE 1 +FLAGS (\\Seen)")
        metrics.reset()
        lines = await a.command(b"A1", b"STORE 2 +FLAGS (\\Flagged)")
        assert lines[-1].startswith(b"A1 OK"), lines
        # (A appended them: they are \\Recent for A.)
        assert lines[0] == b"* 2 FETCH (FLAGS (\\Flagged \\Recent))\r\n", lines
        # B's change still reaches A, after the STORE's own answer as before.
        assert lines[1] == b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))\r\n", lines
        await a.command(b"A2", b"NOOP")
        # No read of the counters (findAndModify) nor of the messages; the journal
        # read, when not shared with a read made for another session (counted there).
        store_verbs = verbs()["STORE"]
        assert {k: v for k, v in store_verbs.items() if k != "find"} == {
            "bulkWrite": 1, "commitTransaction": 1}, store_verbs
        assert store_verbs.get("find", 0) <= 1, store_verbs

        await b.command(b"B2", b"STORE 3 +FLAGS.SILENT (\\Deleted)")
        metrics.reset()
        lines = await a.command(b"A3", b"EXPUNGE")
        assert lines[:-1] == [b"* 3 EXPUNGE\r\n", b"* 2 RECENT\r\n"], lines
        await a.command(b"A4", b"NOOP")
        # The journal (unless shared, as above), then the \\Deleted messages in the
        # transaction (their sizes and bodies): no look whether there are any first.
        expunge_verbs = verbs()["EXPUNGE"]
        assert {k: v for k, v in expunge_verbs.items() if k != "find"} == {
            "bulkWrite": 1, "commitTransaction": 1}, expunge_verbs
        assert 1 <= expunge_verbs.get("find", 0) <= 2, expunge_verbs
        await a.aclose()
        await b.aclose()
