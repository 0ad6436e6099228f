"""SORT (RFC 5256 §3) and SORT=DISPLAY (RFC 5957), through imapclient; the base
subject (§2.1) and the address keys on their own."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import trio
from imapclient import IMAPClient

from duck.imap import ordering
from duck.imap.sortkeys import addr_mailbox, base_subject, display
from duck.mime.model import Address

from .conftest import PASSWORD, USER, blocking
from .raw import RawClient


def test_base_subject_follows_rfc5256() -> None:
    # §2.1: (2) trailing (fwd) and blanks, (3) Re:/Fw:/Fwd: with blobs, (4) a blob
    # that leaves something, (6) [fwd: ...] unwrapped; then i;ascii-casemap.
    cases = {
        b"Re: [FWD: c]": "C",
        b"[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)": "B",
        b"re: [fwd: [fwd: re: [fwd: babylon]]]": "BABYLON",
        b"[xyz]": "[XYZ]",  # a blob that would leave nothing stays
        b"=?iso-8859-1?q?RE:_C?=": "C",
        b"Ad: Re: Ad: Re: Ad: x": "AD: RE: AD: RE: AD: X",
        b"  b (a)  ": "B (A)",
        b"r\xc3\xa9sum\xc3\xa9": "R\u00e9SUM\u00e9",  # only a-z are folded
    }
    for raw, expected in cases.items():
        assert base_subject(raw) == expected, raw
    assert base_subject(None) == ""


def test_address_keys() -> None:
    group = [Address(None, None, b"team", None), Address(None, None, b"x", b"y.org"),
             Address(None, None, None, None)]
    assert addr_mailbox(group) == "TEAM"  # the group's start is the first address
    assert addr_mailbox([Address(b"Z", None, b"bob", b"b.org")]) == "BOB"
    assert addr_mailbox([]) == ""
    assert display([Address(b"=?utf-8?q?=C3=89mile?=", None, b"e", b"f.g")]) == "émile"
    assert display([Address(None, None, b"e", b"f.g")]) == "e@f.g"
    assert display(group) == "team"


def _sorted_client(server: Any) -> IMAPClient:
    c = IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=20)
    c.login(USER, PASSWORD)
    c.create_folder("Sorting")
    base = dt.datetime(2022, 5, 1, 12, 0, tzinfo=dt.UTC)
    rows = [  # (from, to, subject, date header, body size)
        ("Carol <carol@x.org>", "zed@x.org", "Re: lunch", "Mon, 2 May 2022 10:00 +0000", 10),
        ("alice@x.org", "Bob <bob@x.org>", "[list] Fwd: budget", None, 300),
        ("Bob <bob@x.org>", "amy@x.org", "lunch (fwd)", "Sun, 1 May 2022 09:00 +0200", 40),
    ]
    for i, (frm, to, subject, date, size) in enumerate(rows):
        head = f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        if date:
            head += f"Date: {date}\r\n"
        c.append("Sorting", (head + "\r\n" + "x" * size + "\r\n").encode(),
                 msg_time=base + dt.timedelta(hours=i))
    c.select_folder("Sorting")
    return c


async def test_sort_through_imapclient(imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await blocking(functools.partial(_sorted_client, imap_server))
        caps = await blocking(c.capabilities)
        assert b"SORT" in caps and b"SORT=DISPLAY" in caps

        async def sort(*criteria: str, search: str = "ALL") -> list[int]:
            uids = await blocking(lambda: c.sort(list(criteria), search))
            return list(uids)

        # UIDs 1, 2, 3 in arrival order.
        assert await sort("ARRIVAL") == [1, 2, 3]
        assert await sort("REVERSE", "ARRIVAL") == [3, 2, 1]
        assert await sort("SUBJECT") == [2, 1, 3]  # BUDGET, LUNCH, LUNCH (ties by arrival)
        assert await sort("SUBJECT", "REVERSE", "SIZE") == [2, 3, 1]
        assert await sort("FROM") == [2, 3, 1]  # alice, bob, carol
        assert await sort("TO") == [3, 2, 1]  # amy, bob, zed
        assert await sort("DISPLAYFROM") == [2, 3, 1]  # alice@x.org, bob, carol
        assert await sort("DISPLAYTO") == [3, 2, 1]  # amy@x.org, bob, zed@x.org
        # DATE: the Date: header as an instant (UID 3: 1 May 07:00 UTC); without one
        # the internal date (UID 2: 1 May 13:00); UID 1: 2 May.
        assert await sort("DATE") == [3, 2, 1]
        assert await sort("SIZE") == [1, 3, 2]
        assert await sort("SIZE", search="FROM bob") == [3]
        await blocking(c.logout)


async def test_thread_orderedsubject_through_imapclient(imap_server: Any) -> None:
    """RFC 5256 §4 ORDEREDSUBJECT: one thread per base subject, its first message
    (by sent date) the parent of all the others, threads in their first messages'
    order; an unsupported algorithm is BAD."""
    with trio.fail_after(30):
        c = await blocking(functools.partial(_sorted_client, imap_server))
        assert b"THREAD=ORDEREDSUBJECT" in await blocking(c.capabilities)
        msg = (b"From: d@x.org\r\nSubject: Re: lunch\r\n"
               b"Date: Tue, 3 May 2022 08:00 +0000\r\n\r\nx\r\n")
        await blocking(lambda: c.append("Sorting", msg))
        await blocking(lambda: c.select_folder("Sorting"))
        threads = await blocking(lambda: c.thread("ORDEREDSUBJECT"))
        # "lunch": UID 3 (1 May), then 1 (2 May) and 4 (3 May) as its children;
        # "budget": UID 2 alone (1 May 13:00, after UID 3's 07:00 UTC).
        assert [tuple(t) for t in threads] == [(3, (1,), (4,)), (2,)]
        await blocking(c.logout)
        r = await RawClient.open(imap_server.ports["imap"])
        await r.login(USER, PASSWORD)
        await r.command(b"s", b"SELECT Sorting")
        lines = await r.command(b"t", b"THREAD X-NONE US-ASCII ALL")
        assert lines[-1].startswith(b"t BAD"), lines
        await r.aclose()


def _t(number: int, mid: str | None, refs: list[str], subject: bytes, day: int) -> Any:
    from duck.imap.sortkeys import subject_info
    from duck.imap.threading import Threadable

    base, reply = subject_info(subject)
    return Threadable(number, mid, refs, base, reply,
                      dt.datetime(2022, 1, day, tzinfo=dt.UTC).timestamp(), number)


def _shape(c: Any) -> Any:
    own = c.msg.number if c.msg is not None else None
    return (own, [_shape(x) for x in c.children]) if c.children else own


def test_references_algorithm() -> None:
    """RFC 5256 §4: parents from References (or In-Reply-To), dummies for missing
    parents pruned, no loops, one base subject gathered under a dummy or the
    non-reply; threads and children by sent date."""
    from duck.imap.threading import references

    roots = references([
        _t(1, "<a>", [], b"plan", 1),
        _t(2, "<b>", ["<a>"], b"Re: plan", 2),
        _t(3, "<c>", ["<missing>", "<b>"], b"Re: plan", 4),
        _t(4, "<d>", ["<missing>"], b"Re: plan", 3),  # parent never arrived
        _t(5, "<e>", ["<f>"], b"loop", 5),
        _t(6, "<f>", ["<e>"], b"Re: loop", 6),  # 5 is its child already: no loop
        _t(7, "<g>", [], b"other", 7),
        _t(8, "<g>", [], b"other", 8),  # a duplicate Message-ID: its own message
    ])
    # <missing> (a dummy) gets 4; 3's last reference is <b>; 4's thread joins "plan"
    # under 1 (a non-reply), the two "other" messages go under a new dummy.
    assert [_shape(c) for c in roots] == [
        (1, [(2, [3]), 4]), (6, [5]), (None, [7, 8])]


def test_refs_algorithm() -> None:
    """THREAD=REFS (draft-ietf-morg-inthread): REFERENCES' links without gathering
    by subject; threads ordered by their newest message, children by sent date."""
    from duck.imap.threading import refs

    roots = refs([
        _t(1, "<a>", [], b"plan", 1),
        _t(2, "<b>", ["<a>"], b"Re: plan", 9),  # the newest message: thread 1 last
        _t(3, "<c>", ["<missing>"], b"Re: plan", 3),  # same subject, not gathered
        _t(4, "<d>", [], b"other", 4),
        _t(5, "<e>", ["<d>"], b"Re: other", 5),
        _t(6, "<f>", ["<d>"], b"Re: other", 2),  # an earlier child sorts first
    ])
    assert [_shape(c) for c in roots] == [3, (4, [6, 5]), (1, [2])]


async def test_esort_returns(imap_server: Any) -> None:
    """RFC 5267 §3.1: SORT RETURN gives ESEARCH: MIN/MAX the first and last in sort
    order, ALL the numbers in that order, COUNT; an unknown option is BAD."""
    with trio.fail_after(30):
        c = await blocking(functools.partial(_sorted_client, imap_server))
        assert b"ESORT" in await blocking(c.capabilities)
        await blocking(c.logout)
        r = await RawClient.open(imap_server.ports["imap"])
        await r.login(USER, PASSWORD)
        await r.command(b"s", b"SELECT Sorting")
        lines = await r.command(b"e", b"SORT RETURN (MIN MAX COUNT ALL) (REVERSE ARRIVAL) "
                                      b"US-ASCII ALL")
        assert lines[0] == b'* ESEARCH (TAG "e") MIN 3 MAX 1 ALL 3,2,1 COUNT 3\r\n', lines
        lines = await r.command(b"u", b"UID SORT RETURN () (SIZE) US-ASCII ALL")
        assert lines[0] == b'* ESEARCH (TAG "u") UID ALL 1,3,2\r\n', lines
        # RFC 9394 §3: PARTIAL windows of the sorted result, in sort order.
        lines = await r.command(b"p", b"SORT RETURN (PARTIAL 1:2) (SIZE) US-ASCII ALL")
        assert lines[0] == b'* ESEARCH (TAG "p") PARTIAL (1:2 1,3)\r\n', lines
        lines = await r.command(b"p", b"UID SORT RETURN (COUNT PARTIAL -1:-2) (SIZE) "
                                      b"US-ASCII ALL")
        assert lines[0] == b'* ESEARCH (TAG "p") UID COUNT 3 PARTIAL (-1:-2 3,2)\r\n', lines
        lines = await r.command(b"b", b"SORT RETURN (PARTIAL 1:*) (SIZE) US-ASCII ALL")
        assert lines[-1].startswith(b"b BAD"), lines
        await r.aclose()


_KEYED = [
    b"From: =?utf-8?q?=C3=89mile?= <emile@x.org>\r\nTo: team: a@x.org, b@x.org;\r\n"
    b"Cc: Zed <zed@x.org>\r\nSubject: Re: [list] Fwd: budget (fwd)\r\n"
    b"Date: Mon, 2 May 2022 10:00:00 +0200\r\nMessage-ID: <m1@x>\r\n\r\nbody\r\n",
    b"From: bob@x.org\r\nSubject: budget\r\nIn-Reply-To: <m1@x> <other@x>\r\n"
    b"Message-ID: <m2@x>\r\n\r\nbody\r\n",
    b"Subject: =?iso-8859-1?q?r=E9sum=E9?=\r\nReferences: <m1@x>\r\n <m2@x>\r\n"
    b"Date: not a date\r\n\r\nbody\r\n",
]


async def test_keys_kept_at_delivery_equal_keys_made_later(store: Any) -> None:
    """ordering.py: the keys a delivery keeps as a rendering are those a SORT makes
    from the envelope of a message stored without them; and those made at a SORT
    are saved for the next one."""
    user = await store.users.create("keys@example.com", "pw")
    for msg in _KEYED:
        await store.messages.append(user.id, "INBOX", msg)
    ordering.register(store)
    for msg in _KEYED:
        await store.messages.append(user.id, "INBOX", msg)
    box = await store.mailboxes.get(user.id, "INBOX")
    uids = list(range(1, 2 * len(_KEYED) + 1))
    before = {r.uid: r for r in await store.messages.fetch(box.id, uids, ["size"],
                                                           [ordering.ORDER])}
    assert [u for u, r in before.items() if ordering.ORDER in (r.renderings or {})] == [4, 5, 6]
    got = {rec.uid: keys async for batch in ordering.ordered(store, box.id, uids)
           for rec, keys in batch}
    made = {r.uid: ordering.record_order(r)
            for r in await store.messages.fetch(box.id, uids, ordering.SOURCE_FIELDS)}
    assert got == made
    for uid in (1, 2, 3):  # the same message, keyed at delivery and at the SORT
        assert got[uid] == got[uid + 3]
    # Bytes that order as their strings do (UTF-8); sent as seconds since the epoch.
    assert got[1][:7] == [b"EMILE", b"TEAM", b"ZED", "émile".encode(), b"team", b"BUDGET",
                          b"1"]
    assert got[1][7:] == [b"1651478400.0", b"<m1@x>", b""]
    assert got[2][9] == b"<m1@x>"  # In-Reply-To's first id without References
    assert got[3][5:] == ["R\u00e9SUM\u00e9".encode(), b"", b"", b"", b"<m1@x> <m2@x>"]
    after = await store.messages.fetch(box.id, uids, ["size"], [ordering.ORDER])
    assert all(ordering.ORDER in (r.renderings or {}) for r in after)  # saved


async def test_thread_refs_over_imap(imap_server: Any) -> None:
    """THREAD=REFS is advertised and answers over the wire."""
    with trio.fail_after(30):
        r = await RawClient.open(imap_server.ports["imap"])
        await r.login(USER, PASSWORD)
        lines = await r.command(b"c", b"CAPABILITY")
        assert b" THREAD=REFS " in lines[0], lines
        for i, head in enumerate([b"Message-ID: <a@x>\r\nSubject: one",
                                  b"Message-ID: <b@x>\r\nReferences: <a@x>\r\nSubject: one",
                                  b"Message-ID: <c@x>\r\nSubject: one"]):
            msg = head + b"\r\nDate: %d Jan 2022 10:00 +0000\r\n\r\nx\r\n" % (i + 1)
            await r.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
            assert (await r.until_tagged(b"a"))[-1].startswith(b"a OK")
        await r.command(b"s", b"SELECT INBOX")
        lines = await r.command(b"t", b"THREAD REFS UTF-8 ALL")
        assert lines[0] == b"* THREAD (1 2)(3)\r\n", lines
        lines = await r.command(b"u", b"THREAD REFERENCES UTF-8 ALL")
        # REFERENCES gathers the two "one" threads under a dummy (§4 step 6).
        assert lines[0] == b"* THREAD ((1 2)(3))\r\n", lines
        await r.aclose()
