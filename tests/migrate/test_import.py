"""``duck import`` from a Maildir tree, an mbox file and a remote IMAP account (a
second duck over TLS): messages read back over IMAP byte-identical, with the same
flags and dates; an interrupted import resumes without duplicates."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import trio
from imapclient import IMAPClient

from duck.migrate.model import crlf
from duck.server import Server
from duck.store import AlreadyExists, Store

from .conftest import (
    PASSWORD,
    ROOT,
    StartDuck,
    imap_session,
    imap_view,
    new_db,
    run_duck,
    spawn_duck,
)

ALICE = "alice@example.org"
ZONE = dt.timezone(dt.timedelta(hours=-5))


def _text(n: int, lf: bool = True) -> bytes:
    text = (f"From: sender{n}@example.com\nTo: alice@example.org\nSubject: mail {n}\n"
            f"Message-ID: <i{n}@example.com>\n\nbody {n}\nFrom here on, a line.\n")
    return text.encode() if lf else text.replace("\n", "\r\n").encode()


def _maildir_file(directory: Path, sub: str, name: str, data: bytes, when: int) -> None:
    path = directory / sub / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (when, when))


def make_maildir(root: Path) -> dict[tuple[str, int], tuple[bytes, set[str], int]]:
    """A Maildir++ tree as Dovecot lays it out; (folder, n) -> (bytes, flags, mtime)."""
    expected: dict[tuple[str, int], tuple[bytes, set[str], int]] = {}

    def put(folder: Path, name: str, sub: str, n: int, suffix: str, flags: set[str],
            data: bytes | None = None) -> None:
        data = data if data is not None else _text(n)
        when = 1_700_000_000 + n * 3600
        unique = f"{when}.M{n}P4242.mail.example.org,S={len(data)},W={len(crlf(data))}"
        _maildir_file(folder, sub, unique + suffix, data, when)
        expected[(name, n)] = (crlf(data), flags, when)

    for folder in (root, root / ".Work", root / ".Work.Projects", root / ".Entw&APw-rfe"):
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
    (root / "dovecot-keywords").write_text("0 $Label1\n1 Work\n")
    (root / ".Work" / "dovecot-keywords").write_text("0 Todo\n")
    put(root, "INBOX", "cur", 1, ":2,S", {"\\Seen"})
    put(root, "INBOX", "cur", 2, ":2,FRSab", {"\\Flagged", "\\Answered", "\\Seen",
                                               "$Label1", "Work"})
    put(root, "INBOX", "cur", 3, ":2,", set(), _text(3, lf=False))  # CRLF already
    put(root, "INBOX", "new", 4, "", set())
    put(root / ".Work", "Work", "cur", 5, ":2,DT", {"\\Draft", "\\Deleted"})
    put(root / ".Work", "Work", "cur", 6, ":2,PSa", {"$Forwarded", "\\Seen", "Todo"})
    put(root / ".Work.Projects", "Work/Projects", "cur", 7, ":2,S", {"\\Seen"})
    put(root / ".Entw&APw-rfe", "Entwürfe", "cur", 8, ":2,D", {"\\Draft"})
    # Dovecot's uidlist orders INBOX: 2 before 1.
    names = sorted(os.listdir(root / "cur")) + os.listdir(root / "new")
    order = [n for n in names if n.startswith("1700007200")] + \
        [n for n in names if not n.startswith("1700007200")]
    (root / "dovecot-uidlist").write_text(
        "3 V1 N9 G0\n" + "".join(f"{i} :{n}\n" for i, n in enumerate(order, 1)))
    return expected


async def _user(server: Server, name: str = ALICE) -> str:
    assert server.store is not None
    return (await server.store.users.create(name, PASSWORD)).id


async def test_maildir_import_resumes_and_keeps_bytes_flags_and_dates(
        start_duck: StartDuck, mongo_uri: str, tmp_path: Path) -> None:
    server = await start_duck(new_db())
    await _user(server)
    expected = make_maildir(tmp_path / "Maildir")
    db = server.config.database
    args = ("import", "maildir", tmp_path / "Maildir", "--user", ALICE, "--quiet")

    first = await spawn_duck(*args, "--limit", "3", mongo_uri=mongo_uri, database=db)
    assert first.code == 0, first.err
    assert "imported 3," in first.out and "stopped" in first.out
    second = await run_duck(*args, mongo_uri=mongo_uri, database=db)
    assert second.code == 0, second.err
    assert "imported 5, already there 3" in second.out
    third = await run_duck(*args, mongo_uri=mongo_uri, database=db)
    assert "imported 0, already there 8" in third.out

    view = await imap_view(server, ALICE)
    got = {}
    for folder in ("INBOX", "Work", "Work/Projects", "Entwürfe"):
        for message in view[folder].messages:
            n = int(message.body.split(b"Subject: mail ")[1].split(b"\r\n")[0])
            assert (folder, n) not in got, "imported twice"
            got[(folder, n)] = (message.body, set(message.flags),
                                int(message.internal_date.timestamp()))
    assert got == expected
    # dovecot-uidlist's order: message 2 got the first UID of INBOX.
    assert b"mail 2" in view["INBOX"].messages[0].body


MBOX = (
    b"From alice@example.org Thu Nov 30 12:00:00 2023\n"
    b"From: alice@example.org\nSubject: one\nStatus: RO\nX-Status: AF\n"
    b"X-Keywords: Work $Label1\n\n"
    b"Hello\n>From the start\n>>From quoted\n\n"
    b"From bob@example.org Fri Dec  1 08:30:05 2023\n"
    b"From: bob@example.org\nSubject: two\n\nFrom-less body\n\n"
)


async def test_mbox_import(start_duck: StartDuck, mongo_uri: str, tmp_path: Path) -> None:
    server = await start_duck(new_db())
    await _user(server)
    (tmp_path / "in.mbox").write_bytes(MBOX)
    args = ("import", "mbox", tmp_path / "in.mbox", "--user", ALICE, "--folder", "Old",
            "--quiet")
    ran = await run_duck(*args, mongo_uri=mongo_uri, database=server.config.database)
    assert ran.code == 0, ran.err
    again = await run_duck(*args, mongo_uri=mongo_uri, database=server.config.database)
    assert "imported 0, already there 2" in again.out

    one, two = (await imap_view(server, ALICE))["Old"].messages
    assert one.body == (b"From: alice@example.org\r\nSubject: one\r\nStatus: RO\r\n"
                        b"X-Status: AF\r\nX-Keywords: Work $Label1\r\n\r\n"
                        b"Hello\r\nFrom the start\r\n>From quoted\r\n")
    assert one.flags == {"\\Seen", "\\Answered", "\\Flagged", "Work", "$Label1"}
    assert one.internal_date == dt.datetime(2023, 11, 30, 12, 0, tzinfo=dt.UTC)
    assert two.body == b"From: bob@example.org\r\nSubject: two\r\n\r\nFrom-less body\r\n"
    assert two.flags == frozenset()
    assert two.internal_date == dt.datetime(2023, 12, 1, 8, 30, 5, tzinfo=dt.UTC)


def _fill_remote(client: IMAPClient) -> None:
    client.create_folder("Lists/duck")
    for n in range(1, 6):
        client.append("INBOX", _text(n, lf=False), flags=[b"\\Seen"] if n % 2 else [b"Todo"],
                      msg_time=dt.datetime(2022, 5, n, 18, 0, 30, tzinfo=ZONE))
    client.append("Lists/duck", _text(9, lf=False), flags=[b"\\Flagged", b"\\Answered"],
                  msg_time=dt.datetime(2021, 1, 2, 3, 4, 5, tzinfo=dt.UTC))


async def test_remote_imap_import_over_tls_resumes(
        start_duck: StartDuck, mongo_uri: str, tmp_path: Path) -> None:
    remote = await start_duck(new_db())
    local = await start_duck(new_db())
    await _user(remote, "remote@example.net")
    await _user(local)
    await imap_session(remote, "remote@example.net", _fill_remote, PASSWORD)
    source = await imap_view(remote, "remote@example.net")
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    args = ("import", "imap", "--host", "127.0.0.1", "--port", str(remote.ports["imap"]),
            "--tls", "starttls", "--ca-file", remote.config.data_dir / "tls" / "cert.pem",
            "--remote-user", "remote@example.net", "--password-file", tmp_path / "pw",
            "--user", ALICE, "--prefix", "Old", "--quiet")
    db = local.config.database

    first = await spawn_duck(*args, "--limit", "2", mongo_uri=mongo_uri, database=db)
    assert first.code == 0, first.err
    assert "imported 2," in first.out
    second = await run_duck(*args, mongo_uri=mongo_uri, database=db)
    assert second.code == 0, second.err
    assert "imported 4, already there 2" in second.out

    view = await imap_view(local, ALICE)
    for folder in ("INBOX", "Lists/duck"):
        want = [(m.body, m.flags, m.internal_date) for m in source[folder].messages]
        got = [(m.body, m.flags, m.internal_date) for m in view[f"Old/{folder}"].messages]
        assert got == want and len(got) > 0
    # The remote was only read (EXAMINE, BODY.PEEK): nothing became \Seen there.
    assert await imap_view(remote, "remote@example.net") == source

    # Without the CA the server's certificate is refused: the import is over TLS.
    no_ca = list(args)
    i = no_ca.index("--ca-file")
    del no_ca[i:i + 2]
    refused = await run_duck(*no_ca, mongo_uri=mongo_uri, database=db)
    assert refused.code == 1 and "CERTIFICATE_VERIFY_FAILED" in refused.err


async def test_ledger_makes_an_imported_message_once_only(store: Store) -> None:
    user = (await store.users.create(ALICE, PASSWORD)).id
    data = _text(1, lf=False)
    await store.messages.append(user, "INBOX", data, ledger=("test:source", "k1"))
    try:
        await store.messages.append(user, "INBOX", data, ledger=("test:source", "k1"))
    except AlreadyExists:
        pass
    else:
        raise AssertionError("a second append with the same ledger key was stored")
    box = await store.mailboxes.get(user, "INBOX")
    assert box.message_count == 1
    assert await store.imports.done(user, "test:source") == {"k1"}
    used, _ = await store.quota(user)
    assert used == len(data)  # the refused copy took no quota


async def test_an_import_killed_midway_resumes_without_duplicates(
        start_duck: StartDuck, mongo_uri: str, tmp_path: Path) -> None:
    server = await start_duck(new_db())
    user = await _user(server)
    assert server.store is not None
    total = 60
    mbox = b"".join(b"From a@example.org Mon Jan  1 00:00:00 2024\n" + _text(n) + b"\n"
                    for n in range(total))
    (tmp_path / "big.mbox").write_bytes(mbox)
    source = f"mbox:{(tmp_path / 'big.mbox').resolve()}"
    args = ("import", "mbox", tmp_path / "big.mbox", "--user", ALICE, "--quiet",
            "--mongo-uri", mongo_uri, "--database", server.config.database)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "duck.cli", *map(str, args)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with trio.fail_after(120):
            while len(await server.store.imports.done(user, source)) < 10:
                assert process.poll() is None, "the import ended before it was killed"
                await trio.sleep(0.02)
        process.kill()  # SIGKILL: no cleanup of any kind
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    # (A commit the killed process had sent may still land: the count is read by
    # the resumed run.)
    ran = await run_duck(*args)
    assert ran.code == 0, ran.err
    imported, before = map(int, re.findall(r"imported (\d+), already there (\d+)", ran.out)[0])
    assert imported + before == total and 10 <= before < total
    bodies = [m.body for m in (await imap_view(server, ALICE))["INBOX"].messages]
    assert sorted(bodies) == sorted(crlf(_text(n)) for n in range(total))
