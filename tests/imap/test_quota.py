"""GETQUOTA / GETQUOTAROOT (RFC 9208) and the OVERQUOTA refusal."""

from __future__ import annotations

from typing import Any

import trio

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient


async def test_quota(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        msg = simple_message(1)
        await c.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        await c.until_tagged(b"a")
        lines = await c.command(b"q", b"GETQUOTAROOT INBOX")
        assert lines[0] == b'* QUOTAROOT INBOX ""\r\n', lines
        assert lines[1].startswith(b'* QUOTA "" (STORAGE 1 '), lines
        lines = await c.command(b"r", b'GETQUOTA ""')
        assert lines[0].startswith(b'* QUOTA "" (STORAGE 1 '), lines
        lines = await c.command(b"s", b'GETQUOTA "other"')
        assert lines[-1].startswith(b"s NO"), lines


async def test_over_quota(imap_server: Any) -> None:
    with trio.fail_after(20):
        await imap_server.store.users.create("tiny@example.com", PASSWORD, quota=100)
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login("tiny@example.com", PASSWORD)
        msg = simple_message(1) * 5
        await c.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        lines = await c.until_tagged(b"a")
        assert lines[-1].startswith(b"a NO [OVERQUOTA]"), lines
