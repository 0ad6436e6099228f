"""A first vertical slice with imaplib: LOGIN, LIST, SELECT, APPEND, FETCH, STORE,
SEARCH, EXPUNGE, LOGOUT."""

from __future__ import annotations

from typing import Any

import trio

from .conftest import MESSAGE, PASSWORD, USER, aconnect, blocking


async def test_vertical_slice(duck_server: Any) -> None:
    """Through the whole ``duck serve`` (duck.server wiring included)."""
    with trio.fail_after(30):
        await duck_server.store.users.create(USER, PASSWORD)
        imap_server = duck_server
        c = await aconnect(imap_server)
        typ, data = await blocking(lambda: c.list())
        assert typ == "OK"
        names = [line.decode() for line in data]
        assert any('"INBOX"' in n or n.endswith(" INBOX") for n in names), names
        typ, data = await blocking(lambda: c.append("INBOX", "(\\Flagged)", None, MESSAGE))
        assert typ == "OK", data
        assert b"APPENDUID" in data[0]
        typ, data = await blocking(lambda: c.select("INBOX"))
        assert typ == "OK" and data == [b"1"]
        typ, data = await blocking(lambda: c.fetch("1", "(BODY.PEEK[] RFC822.SIZE FLAGS)"))
        assert typ == "OK"
        assert data[0][1] == MESSAGE
        assert f"RFC822.SIZE {len(MESSAGE)}".encode() in data[0][0] + data[1]
        typ, data = await blocking(lambda: c.store("1", "+FLAGS", "(\\Deleted)"))
        assert typ == "OK" and b"\\Deleted" in data[0]
        typ, data = await blocking(lambda: c.search(None, "DELETED"))
        assert data == [b"1"]
        typ, data = await blocking(lambda: c.search(None, "SUBJECT", '"hello"'))
        assert data == [b"1"]
        typ, data = await blocking(lambda: c.expunge())
        assert typ == "OK" and data == [b"1"]
        typ, data = await blocking(lambda: c.logout())
        assert typ == "BYE"
