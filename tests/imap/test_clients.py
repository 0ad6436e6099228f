"""Tours of the command set with the real client libraries (imapclient, imaplib)."""

from __future__ import annotations

from typing import Any

import trio
from imapclient import IMAPClient

from .conftest import PASSWORD, USER, aconnect, blocking, simple_message


def _imapclient_tour(port: int, other: IMAPClient) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=20)
    seen["welcome"] = c.welcome
    c.login(USER, PASSWORD)
    seen["caps"] = c.capabilities()
    seen["id"] = c.id_({"name": "tour"})
    seen["namespace"] = c.namespace()
    seen["enabled"] = c.enable("CONDSTORE")
    for n in range(1, 5):
        c.append("INBOX", simple_message(n))
    c.select_folder("INBOX")
    c.set_flags([1], [b"\\Deleted"])
    c.add_flags([2], [b"\\Deleted"])
    seen["uid_expunge"] = c.uid_expunge([1])
    seen["after_uid_expunge"] = c.search()
    seen["copy"] = c.copy([3], "Archive")
    seen["move"] = c.move([4], "Trash")
    seen["remaining"] = c.search()
    # IDLE: another client's APPEND wakes us.
    c.idle()
    other.append("INBOX", simple_message(9))
    seen["idle"] = c.idle_check(timeout=10)
    c.idle_done()
    seen["quota"] = c.get_quota_root("INBOX")
    c.close_folder()
    seen["status"] = c.folder_status("INBOX", ["MESSAGES"])
    c.logout()
    return seen


async def test_imapclient_tour(imap_server: Any) -> None:
    with trio.fail_after(60):
        port = imap_server.ports["imap"]

        def other_login() -> IMAPClient:
            o = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=20)
            o.login(USER, PASSWORD)
            return o

        other = await blocking(other_login)
        seen = await blocking(lambda: _imapclient_tour(port, other))
        assert b"duck" in seen["welcome"]
        assert {b"IDLE", b"MOVE", b"UIDPLUS", b"QUOTA"} <= set(seen["caps"])
        assert seen["id"][0][:2] == (b"name", b"duck"), seen["id"]
        assert seen["namespace"].personal == (("", "/"),)
        assert seen["enabled"] == [b"CONDSTORE"]
        assert seen["after_uid_expunge"] == [2, 3, 4]  # UID 2 is \Deleted but not in the set
        assert seen["remaining"] == [2, 3]  # COPY kept 3, MOVE took 4
        assert any(r[1] == b"EXISTS" for r in seen["idle"]), seen["idle"]
        assert seen["quota"][0].quota_roots == [""] or seen["quota"][0].quota_roots == ['""']
        # CLOSE expunged UID 2 (\Deleted); 3 and the other client's message remain.
        assert seen["status"][b"MESSAGES"] == 2
        await blocking(other.logout)


async def test_imaplib_tour(imap_server: Any) -> None:
    with trio.fail_after(60):
        c = await aconnect(imap_server)
        steps = [
            ("create", lambda: c.create("Tour/Sub")),
            ("subscribe", lambda: c.subscribe("Tour/Sub")),
            ("lsub", lambda: c.lsub("\"\"", "Tour/*")),
            ("rename", lambda: c.rename("Tour", "Trip")),
            ("list", lambda: c.list("\"\"", "Trip*")),
            ("append", lambda: c.append("Trip/Sub", "(\\Seen)", None, simple_message(1))),
            ("status", lambda: c.status("Trip/Sub", "(MESSAGES UNSEEN UIDNEXT)")),
            ("examine", lambda: c.select("Trip/Sub", readonly=True)),
            ("fetch", lambda: c.fetch("1", "(UID FLAGS ENVELOPE)")),
            ("search", lambda: c.search(None, "SEEN")),
            ("uid_search", lambda: c.uid("SEARCH", "ALL")),
            ("check", lambda: c.check()),
            ("unselect", lambda: c.unselect()),
            ("select", lambda: c.select("Trip/Sub")),
            ("store", lambda: c.store("1", "+FLAGS", "(\\Deleted)")),
            ("close", lambda: c.close()),
            ("unsubscribe", lambda: c.unsubscribe("Trip/Sub")),
            ("delete", lambda: c.delete("Trip/Sub")),
            ("noop", lambda: c.noop()),
            ("namespace", lambda: c.namespace()),
        ]
        results = {}
        for name, step in steps:
            typ, data = await blocking(step)
            assert typ == "OK", (name, data)
            results[name] = data
        assert b"Tour/Sub" in results["lsub"][0]
        assert [b"Trip" in x for x in results["list"]] == [True, True]
        assert results["status"][0].endswith(b"(MESSAGES 1 UNSEEN 0 UIDNEXT 2)")
        assert results["search"] == [b"1"] and results["uid_search"] == [b"1"]
        assert b"ENVELOPE" in results["fetch"][0]
        typ, data = await blocking(lambda: c.status("Trip/Sub", "(MESSAGES)"))
        assert typ == "NO"
        typ, _ = await blocking(c.logout)
        assert typ == "BYE"
