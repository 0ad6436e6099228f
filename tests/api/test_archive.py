"""Issue 18's archive through the real protocols: EXPUNGE and DELETE over IMAP, then
list and restore through the HTTP API; the message comes back byte-identical with
its flags and INTERNALDATE (FETCH compared before and after)."""

from __future__ import annotations

import imaplib
import re
from typing import Any

import httpx
import trio

from .conftest import message

PASSWORD = "secret-pass"
DATE = '"17-May-2020 08:30:00 +0000"'


def _imap(server: Any) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=20)
    client.login("bob@example.com", PASSWORD)
    return client


def _fetch(client: imaplib.IMAP4, uid: int) -> tuple[bytes, set[bytes], bytes]:
    """BODY[], FLAGS and INTERNALDATE of one message."""
    typ, data = client.uid("FETCH", str(uid), "(BODY.PEEK[] FLAGS INTERNALDATE)")
    assert typ == "OK" and data[0] is not None, data
    head, body = data[0]
    # (The items after the literal come in the next element.)
    head += b"".join(x for x in data[1:] if isinstance(x, bytes))
    flags = re.search(rb"FLAGS \(([^)]*)\)", head)
    idate = re.search(rb'INTERNALDATE "([^"]+)"', head)
    assert flags is not None and idate is not None, head
    return body, set(flags.group(1).split()), idate.group(1)


async def _thread(fn: Any) -> Any:
    return await trio.to_thread.run_sync(fn)


async def test_expunge_then_restore_is_byte_identical(duck_server: Any, client: httpx.AsyncClient,
                                                      user: str) -> None:
    data = message("keep this one", body="line one\r\nline two\r\n" * 50)

    def expunge() -> tuple[bytes, set[bytes], bytes]:
        c = _imap(duck_server)
        c.append("INBOX", r"(\Seen $Work)", DATE, data)
        c.append("INBOX", None, None, message("stays"))
        c.select("INBOX")
        before = _fetch(c, 1)
        c.uid("STORE", "1", "+FLAGS", r"(\Deleted)")
        typ, gone = c.expunge()
        assert typ == "OK" and gone == [b"1"], gone
        typ, found = c.uid("SEARCH", "ALL")
        assert found == [b"2"], found
        c.logout()
        return before

    with trio.fail_after(60):
        before = await _thread(expunge)
        r = await client.get(f"/users/{user}/archive")
        assert r.status_code == 200, r.text
        listing = r.json()
        assert listing["total"] == 1 and listing["next"] is None
        (item,) = listing["results"]
        assert (item["path"], item["uid"], item["subject"]) == ("INBOX", 1, "keep this one")
        assert sorted(item["flags"]) == ["$Work", "\\Seen"]
        assert item["internal_date"].startswith("2020-05-17T08:30:00")
        # Not counted: the INBOX's counters and quota are as if it were gone.
        r = await client.get(f"/users/{user}")
        assert r.json()["quota"]["used"] == len(message("stays"))

        archive_box = (await duck_server.store.mailboxes.get(user, "Archive")).id
        r = await client.post(f"/users/{user}/archive/{item['id']}/restore",
                              json={"mailbox": archive_box})
        assert r.status_code == 200, r.text
        (restored,) = r.json()["results"]
        assert (restored["mailbox"], restored["path"], restored["uid"]) == (
            archive_box, "Archive", 1)
        r = await client.get(f"/users/{user}/archive")
        assert r.json()["total"] == 0
        # Twice is not found.
        r = await client.post(f"/users/{user}/archive/{item['id']}/restore", json={})
        assert r.status_code == 404, r.text

        def after() -> tuple[bytes, set[bytes], bytes]:
            c = _imap(duck_server)
            c.select("Archive")
            got = _fetch(c, 1)
            c.logout()
            return got

        body, flags, idate = await _thread(after)
        assert body == before[0] == data
        # (\\Recent is the session's, not the message's: RFC 3501 §2.3.2.)
        recent = {b"\\Recent"}
        assert flags - recent == before[1] - recent == {b"\\Seen", b"$Work"}
        assert idate == before[2]


async def test_deleted_mailbox_restored_where_it_can_be(duck_server: Any,
                                                        client: httpx.AsyncClient,
                                                        user: str) -> None:
    bodies = [message(f"work {i}") for i in range(3)]

    def delete() -> None:
        c = _imap(duck_server)
        c.create("Work")
        for b in bodies:
            c.append("Work", None, None, b)
        typ, _ = c.delete("Work")
        assert typ == "OK"
        c.logout()

    with trio.fail_after(60):
        await _thread(delete)
        r = await client.get(f"/users/{user}/archive", params={"limit": 2})
        page = r.json()
        assert page["total"] == 3 and len(page["results"]) == 2 and page["next"]
        assert {i["path"] for i in page["results"]} == {"Work"}
        r = await client.get(f"/users/{user}/archive",
                             params={"limit": 2, "after": page["next"]})
        rest = r.json()
        assert len(rest["results"]) == 1 and rest["next"] is None
        # Bad input: not an id, another user's mailbox.
        r = await client.post(f"/users/{user}/archive/restore", json={"mailbox": "nope"})
        assert r.status_code == 400, r.text
        r = await client.post("/users", json={"username": "eve@example.com",
                                              "password": "eve-pass-1"})
        eve = r.json()["id"]
        eve_inbox = (await duck_server.store.mailboxes.get(eve, "INBOX")).id
        r = await client.post(f"/users/{user}/archive/restore", json={"mailbox": eve_inbox})
        assert r.status_code == 404, r.text
        r = await client.get(f"/users/{eve}/archive")
        assert r.json()["total"] == 0
        # Work is gone: without a mailbox they go back to INBOX.
        r = await client.post(f"/users/{user}/archive/restore")
        assert r.status_code == 200, r.text
        assert sorted(x["uid"] for x in r.json()["results"]) == [1, 2, 3]

        def inbox() -> list[bytes]:
            c = _imap(duck_server)
            c.select("INBOX")
            got = [_fetch(c, uid)[0] for uid in (1, 2, 3)]
            c.logout()
            return got

        assert sorted(await _thread(inbox)) == sorted(bodies)


async def test_the_server_runs_maintenance(duck_server: Any) -> None:
    """`duck serve` starts the maintenance pass (with its repair) in the background."""
    with trio.fail_after(30):
        while duck_server.store.maintenance.passes == 0:
            await trio.sleep(0.1)
