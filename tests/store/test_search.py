"""SEARCH: the typed query model compiled to one MongoDB query."""

from __future__ import annotations

import datetime as dt

import pytest
from store_samples import multipart_message, simple_message

from duck.store import InvalidInput, Store, User
from duck.store import query as q

pytestmark = pytest.mark.store


@pytest.fixture
async def mailbox_id(store: Store, user: User) -> str:
    day = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)
    await store.messages.append(user.id, "INBOX", simple_message("Quarterly Résumé"),
                                ["\\Seen"], day)
    await store.messages.append(
        user.id, "INBOX", simple_message("lunch", body="Pizza at noon?\r\n",
                                         sender="dave@example.org"),
        ["$Important"], day + dt.timedelta(days=1))
    await store.messages.append(user.id, "INBOX", multipart_message(b"QUJD" * 10,
                                                                   "needle (a.*b)\r\n"),
                                [], day + dt.timedelta(days=2))
    return (await store.mailboxes.get(user.id, "INBOX")).id


@pytest.mark.parametrize(("query", "expected"), [
    (q.All(), [1, 2, 3]),
    (q.Flag("\\Seen"), [1]),
    (q.Flag("\\seen", present=False), [2, 3]),
    (q.Flag("$important"), [2]),
    (q.Subject("résumé"), [1]),
    (q.Subject("QUARTERLY"), [1]),
    (q.Address("from", "DAVE@"), [2]),
    (q.Address("to", "alice"), [1, 2, 3]),
    (q.Header("message-id", ""), [1, 2]),
    (q.Header("x-missing", ""), []),
    (q.Body("pizza"), [2]),
    (q.Body("(a.*b)"), [3]),  # regex metacharacters are literal
    (q.Text("carol"), [3]),
    (q.Date("internal", "on", dt.date(2024, 3, 11)), [2]),
    (q.Date("internal", "before", dt.date(2024, 3, 11)), [1]),
    (q.Date("internal", "since", dt.date(2024, 3, 11)), [2, 3]),
    # RFC 3501 §6.4.4: the Date: header's own day ("Mon, 7 Feb 1994 21:52:25 -0800"
    # is 8 Feb in UTC), disregarding time and timezone.
    (q.Date("sent", "on", dt.date(1994, 2, 7)), [1, 2]),
    (q.Date("sent", "on", dt.date(1994, 2, 8)), []),
    (q.Date("sent", "before", dt.date(1994, 2, 8)), [1, 2]),
    (q.Date("sent", "since", dt.date(1994, 2, 8)), []),
    (q.Uids(((2, 3),)), [2, 3]),
    (q.ModSeq(3), [2, 3]),
    (q.Or((q.Flag("\\Seen"), q.Body("pizza"))), [1, 2]),
    (q.Not(q.Or((q.Flag("\\Seen"), q.Body("pizza")))), [3]),
    (q.And((q.Address("to", "alice"), q.Not(q.Uids(((1, 1),))))), [2, 3]),
    (q.Age("older", 3600), [1, 2, 3]),
    (q.Age("younger", 3600), []),
])
async def test_search(store: Store, mailbox_id: str, query: q.Query,
                      expected: list[int]) -> None:
    assert await store.messages.search(mailbox_id, query) == expected


async def test_search_sizes_and_ids(store: Store, mailbox_id: str) -> None:
    (record,) = await store.messages.fetch(mailbox_id, [2], ["size", "emailid", "threadid"])
    assert record.size is not None and record.emailid and record.threadid
    sizes = {r.uid: r.size for r in await store.messages.fetch(mailbox_id, [1, 2, 3], ["size"])}
    for octets in {*sizes.values(), 0}:
        assert await store.messages.search(mailbox_id, q.Size("larger", octets)) == [
            u for u, s in sizes.items() if s is not None and s > octets]
        assert await store.messages.search(mailbox_id, q.Size("smaller", octets)) == [
            u for u, s in sizes.items() if s is not None and s < octets]
    assert await store.messages.search(mailbox_id, q.EmailId(record.emailid)) == [2]
    assert await store.messages.search(mailbox_id, q.ThreadId(record.threadid)) == [2]


async def test_search_too_deep(store: Store, mailbox_id: str) -> None:
    deep: q.Query = q.All()
    for _ in range(40):
        deep = q.Not(deep)
    with pytest.raises(InvalidInput):
        await store.messages.search(mailbox_id, deep)


@pytest.mark.no_database
def test_uid_ranges() -> None:
    assert q.uid_ranges([5, 1, 2, 3, 9, 10]) == ((1, 3), (5, 5), (9, 10))


async def test_sent_dates_are_the_headers_own_days(store: Store, user: User) -> None:
    """RFC 3501 §6.4.4: SENTBEFORE/SENTON/SENTSINCE compare the Date: header's date
    "disregarding time and timezone" (imaptest's search-date group crosses zone
    changes the same way): the day in the header's own zone, not in UTC."""
    dates = ["Sun, 25 Mar 2007 23:59:59 -0500",  # 26 Mar in UTC
             "Mon, 26 Mar 2007 00:30:00 +0300",  # 25 Mar in UTC
             "Mon, 26 Mar 2007 12:00:00 +0000"]
    for i, date in enumerate(dates):
        await store.messages.append(user.id, "INBOX", (
            f"From: a@example.com\r\nSubject: d{i}\r\nDate: {date}\r\n\r\nx\r\n").encode())
    box = await store.mailboxes.get(user.id, "INBOX")
    day = dt.date(2007, 3, 26)
    assert await store.messages.search(box.id, q.Date("sent", "on", day)) == [2, 3]
    assert await store.messages.search(box.id, q.Date("sent", "before", day)) == [1]
    assert await store.messages.search(box.id, q.Date("sent", "since", day)) == [2, 3]
    assert await store.messages.search(box.id, q.Date("sent", "on", dt.date(2007, 3, 25))) == [1]


async def test_address_searches_match_the_parsed_addresses(store: Store, user: User) -> None:
    """SEARCH FROM/TO/CC/BCC match an address however the header spells it (RFC 5322
    comments, spaces around "@"), and the display name; a HEADER search of the field
    is unaffected in what it matches of the text (imaptest's search-addresses)."""
    froms = ["<user-from (comment)@ (comment) domain.org>",
             '"Real From" <user-from@domain.org>',
             "=?utf-8?q?R=C3=A9al?= <other@domain.org>",
             "undisclosed-recipients:;"]
    for i, value in enumerate(froms):
        await store.messages.append(user.id, "INBOX", (
            f"From: {value}\r\nSubject: a{i}\r\n\r\nx\r\n").encode())
    box = await store.mailboxes.get(user.id, "INBOX")
    assert await store.messages.search(box.id, q.Address("from", "user-from@domain.org")) == [
        1, 2]
    assert await store.messages.search(box.id, q.Address("from", "ser-fro")) == [1, 2]
    assert await store.messages.search(box.id, q.Address("from", "real from")) == [2]
    assert await store.messages.search(box.id, q.Address("from", "réal")) == [3]
    assert await store.messages.search(box.id, q.Address("from", "")) == [1, 2, 3, 4]
    assert await store.messages.search(box.id, q.Header("from", "(comment)")) == [1]


@pytest.mark.parametrize("whole", [[], [2], [1, 3], [1, 2, 3]])
async def test_body_and_text_over_messages_stored_whole_and_apart(
        store: Store, user: User, mailbox_id: str, whole: list[int]) -> None:
    """BODY/TEXT find the same messages whether a message's text is in its contents
    document (index/contents.py) or, stored before that layout, in the message
    document itself, in any mix of both, alone and under NOT/OR/AND."""
    messages = store.database.collection("messages")
    kept = store.database.collection("contents")

    def make_whole() -> None:
        for doc in messages.find({"uid": {"$in": whole}}):
            content = kept.find_one({"_id": doc.pop("cid")})
            kept.delete_one({"_id": content["_id"]})
            messages.replace_one({"_id": doc["_id"]}, {
                **doc, "segs": content["segs"], "text": content["text"]})

    await store.database.run(make_whole)
    cases = [
        (q.Body("pizza"), [2]), (q.Body("NEEDLE (a.*b)"), [3]), (q.Body("absent"), []),
        (q.Text("pizza"), [2]), (q.Text("lunch"), [2]), (q.Not(q.Body("pizza")), [1, 3]),
        (q.Or((q.Body("pizza"), q.Body("needle"))), [2, 3]),
        (q.And((q.Body("noon"), q.Flag("$important"))), [2]),
        (q.And((q.Body("noon"), q.Flag("\\Seen"))), []),
    ]
    for query, expected in cases:
        assert await store.messages.search(mailbox_id, query) == expected, (query, whole)
