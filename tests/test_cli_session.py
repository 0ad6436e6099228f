"""An administrator's session against a running server, every command a real
``python -m duck.cli`` subprocess (issue 15: "every CLI command has a test that
runs it as a subprocess against a running server").

test_admin_cli.py and test_cli_apppass.py test each command's cases in-process
(fast); this walks the commands a day of administration uses, as separate
processes that find the server through its data directory, and checks each one's
exit code and output, and its effect where a client sees it: IMAP, LMTP and the
HTTP API of the running server. Commands that touch different things run at
once (each is a Python start-up of about a second: one after another, the
session would cost CI three times as long).
"""

from __future__ import annotations

import json
import mailbox
import smtplib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
from imapclient import IMAPClient
from test_admin_cli import _imap_login, spawn

from duck.config import Config
from duck.server import Server
from tests.serving import serving

ANN, ALIAS = "ann@example.com", "info@example.com"
FIRST, SECOND = "first-secret", "second-secret"


@pytest.fixture
async def server(mongo_uri: str, db_name: str, tmp_path: Path,
                 nursery: trio.Nursery) -> AsyncIterator[Server]:
    """duck serve in this process, as ``duck_server``, but failed logins are not held
    back: the session checks refused logins on purpose, and the throttle's delays
    (tests/api/test_accounts_two_processes.py's) would only add seconds here."""
    config = Config(data_dir=tmp_path / "data", imap_port=0, imaps_port=0, lmtp_port=0,
                    pop3_port=0, pop3s_port=0, managesieve_port=0, api_port=0,
                    mongo_uri=mongo_uri, database=db_name, shutdown_grace=2.0,
                    login_delay_base=0.0, login_delay_max=0.0).validate()
    async with serving(nursery, config) as server:
        yield server


async def _all(server: Server, *commands: tuple[str, ...] | tuple[tuple[str, ...], bytes]
               ) -> list[subprocess.CompletedProcess[str]]:
    """Run each command as its own subprocess, all at once; their results in order.
    A command is its arguments, or (arguments, standard input)."""
    results: list[subprocess.CompletedProcess[str] | None] = [None] * len(commands)

    async def one(i: int, args: tuple[str, ...], stdin: bytes) -> None:
        results[i] = await spawn(server, *args, stdin=stdin)

    async with trio.open_nursery() as nursery:
        for i, command in enumerate(commands):
            if len(command) == 2 and isinstance(command[1], bytes):
                args, stdin = command  # type: ignore[misc]
            else:
                args, stdin = command, b""
            nursery.start_soon(one, i, args, stdin)
    return [r for r in results if r is not None]


def _lmtp_rcpt(port: int, rcpt: str) -> tuple[int, bytes]:
    """RCPT's reply to ``rcpt`` in an LMTP transaction that is then reset."""
    with smtplib.LMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo_or_helo_if_needed()
        client.mail("someone@example.org")
        reply = client.rcpt(rcpt)
        client.rset()
        return reply


def _lmtp_deliver(port: int, rcpt: str, message: bytes) -> None:
    with smtplib.LMTP("127.0.0.1", port, timeout=20) as client:
        assert client.sendmail("someone@example.org", [rcpt], message) == {}


def _imap_inbox(port: int, password: str) -> tuple[dict[bytes, int], list[bytes]]:
    """INBOX's STATUS (MESSAGES UNSEEN UIDVALIDITY) and its messages' bytes."""
    client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=20)
    try:
        client.login(ANN, password)
        status = client.folder_status("INBOX", [b"MESSAGES", b"UNSEEN", b"UIDVALIDITY"])
        client.select_folder("INBOX", readonly=True)
        fetched = client.fetch(client.search("ALL"), [b"BODY.PEEK[]"])
        return status, [fetched[uid][b"BODY[]"] for uid in sorted(fetched)]
    finally:
        client.logout()


async def test_admin_session_as_subprocesses(server: Server, tmp_path: Path) -> None:
    imap, lmtp = server.ports["imap"], server.ports["lmtp"]
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.ports['api']}", timeout=30)
    async with api:
        # The account as an application made it: a user, an alias, a phone's
        # application password, and two messages delivered by the MTA.
        r = await api.post("/users", json={"username": ANN, "password": FIRST})
        user = r.json()["id"]
        assert (await api.post(f"/users/{user}/addresses",
                               json={"address": ALIAS})).status_code in (200, 201)
        r = await api.post(f"/users/{user}/apppasswords",
                           json={"description": "phone", "scopes": ["imap"]})
        phone, phone_id = r.json()["password"], r.json()["id"]
        for n, rcpt in enumerate([ANN, ALIAS]):
            message = (f"From: someone@example.org\r\nTo: {rcpt}\r\nSubject: note {n}\r\n"
                       f"Message-ID: <note-{n}@example.org>\r\n\r\nline {n}\r\n").encode()
            await trio.to_thread.run_sync(_lmtp_deliver, lmtp, rcpt, message)
        status, bodies = await trio.to_thread.run_sync(_imap_inbox, imap, FIRST)
        assert status[b"MESSAGES"] == 2

        # Looking around: all read-only, all at once.
        show, missing, addresses, boxes, phones, exported = await _all(
            server,
            ("user", "show", ALIAS, "--json"),
            ("user", "show", "nobody@example.com"),
            ("address", "list", ANN),
            ("mailbox", "list", ANN),
            ("apppass", "list", ANN),
            ("export", "mbox", str(tmp_path / "mbox"), "--user", ANN, "--quiet"))

        assert show.returncode == 0, show.stderr
        shown = json.loads(show.stdout)
        record = (await api.get(f"/users/{user}")).json()
        assert (shown["id"], shown["username"], shown["used"]) == (
            user, record["username"], record["quota"]["used"])
        assert shown["addresses"] == [ANN, ALIAS]
        assert missing.returncode == 1 and "no such user" in missing.stderr
        assert missing.stdout == ""

        assert addresses.returncode == 0, addresses.stderr
        listed = (await api.get(f"/users/{user}/addresses")).json()
        assert addresses.stdout.splitlines() == [f"{ANN}  (main)", ALIAS]
        assert len(listed["results"]) == 2, listed

        # The counts and UIDVALIDITY are IMAP's.
        assert boxes.returncode == 0, boxes.stderr
        inbox = next(ln for ln in boxes.stdout.splitlines() if ln.startswith("INBOX\t"))
        assert inbox == (f"INBOX\t2 messages, 2 unseen, {sum(map(len, bodies))} bytes, "
                         f"uidvalidity {status[b'UIDVALIDITY']}")

        assert phones.returncode == 0, phones.stderr
        (line,) = phones.stdout.splitlines()
        assert line.startswith(f"{phone_id}\timap\t") and line.endswith("\tphone")
        assert phone not in phones.stdout and phone.replace(" ", "") not in phones.stdout

        # The mbox holds what IMAP serves, in order (mboxrd, LF line ends).
        assert exported.returncode == 0, exported.stderr
        assert exported.stdout.startswith("exported 2 messages")
        box = mailbox.mbox(tmp_path / "mbox" / "INBOX.mbox", create=False)
        assert [m["Message-ID"] for m in box] == ["<note-0@example.org>",
                                                  "<note-1@example.org>"]
        for got, body in zip(box, bodies, strict=True):
            assert got.get_payload().encode() == body.split(b"\r\n\r\n", 1)[1].replace(
                b"\r\n", b"\n")

        # Changes to different things, at once: a new password, a quota, the alias
        # removed, the phone revoked.
        passwd, quota, removed, revoked = await _all(
            server,
            (("user", "passwd", ANN, "--password-file", "-"), f"{SECOND}\n".encode()),
            ("user", "quota", user, "5M"),
            ("address", "remove", ANN, ALIAS),
            ("apppass", "revoke", ANN, phone_id))
        assert (passwd.returncode, passwd.stdout) == (0, f"password of {ANN} changed\n")
        used = record["quota"]["used"]
        assert (quota.returncode, quota.stdout) == (0, f"{ANN}: {used} of 5242880 bytes used\n")
        assert (removed.returncode, removed.stdout) == (0, f"{ALIAS} removed from {ANN}\n")
        assert (revoked.returncode, revoked.stdout) == (0, f"revoked {phone_id}\n")
        assert await _imap_login(server, ANN, SECOND)
        assert not await _imap_login(server, ANN, FIRST)
        assert not await _imap_login(server, ANN, phone)
        assert (await api.get(f"/users/{user}/quota")).json()["allowed"] == 5 * 1024**2
        code, text = await trio.to_thread.run_sync(_lmtp_rcpt, lmtp, ALIAS)
        assert code == 550 and text.startswith(b"5.1.1")

        # Disabled: no login, no mail (the MTA is told at RCPT); a delete without
        # --yes is refused as a usage error and deletes nothing.
        disabled, unconfirmed = await _all(server, ("user", "disable", ANN),
                                           ("user", "delete", ANN))
        assert (disabled.returncode, disabled.stdout) == (0, f"{ANN} disabled\n")
        assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
        assert (await api.get(f"/users/{user}")).json()["disabled"] is True
        assert not await _imap_login(server, ANN, SECOND)
        code, text = await trio.to_thread.run_sync(_lmtp_rcpt, lmtp, ANN)
        assert code == 550 and text.startswith(b"5.2.1")

        (enabled,) = await _all(server, ("user", "enable", user))
        assert (enabled.returncode, enabled.stdout) == (0, f"{ANN} enabled\n")
        assert await _imap_login(server, ANN, SECOND)
        assert (await trio.to_thread.run_sync(_lmtp_rcpt, lmtp, ANN))[0] == 250

        (deleted,) = await _all(server, ("user", "delete", ANN, "--yes"))
        assert (deleted.returncode, deleted.stdout) == (0, f"{ANN} deleted\n")
        assert (await api.get(f"/users/{user}")).status_code == 404
        assert not await _imap_login(server, ANN, SECOND)
        assert (await trio.to_thread.run_sync(_lmtp_rcpt, lmtp, ANN))[0] == 550

