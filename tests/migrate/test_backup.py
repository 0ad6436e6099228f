"""``duck backup`` of a live server and ``duck restore`` into an empty database give
the same IMAP view: UIDs, UIDVALIDITY, flags, INTERNALDATE, bodies, modseqs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import trio
from imapclient import IMAPClient

from duck.store import Store, read_manifest
from duck.store import query as q

from .conftest import (
    PASSWORD,
    StartDuck,
    imap_session,
    imap_view,
    new_db,
    run_duck,
    spawn_duck,
)

ALICE, BOB, CAROL = "alice@example.org", "bob@example.org", "carol@example.org"
ZONE = dt.timezone(dt.timedelta(hours=2))


def _message(n: int, extra: bytes = b"") -> bytes:
    return (f"From: sender{n}@example.com\r\nTo: alice@example.org\r\n"
            f"Subject: note {n}\r\nMessage-ID: <b{n}@example.com>\r\n\r\n"
            f"body {n}\r\n").encode() + extra


def _big(n: int) -> bytes:
    # A leaf body above the 64 KiB threshold is a GridFS body (content-addressed).
    part = (f"{n:02d}" + "x" * 74 + "\r\n") * 1200
    return (f"From: big@example.com\r\nSubject: big {n}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            "Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
            f"{part}--b--\r\n").encode()


def _fill(client: IMAPClient) -> None:
    client.create_folder("Lists/duck")
    for n in range(1, 7):
        client.append("INBOX", _message(n), flags=[b"\\Seen", b"$Label1"] if n % 2 else [],
                      msg_time=dt.datetime(2024, 3, n, 9, 30, tzinfo=ZONE))
    client.append("INBOX", _big(1), flags=[b"\\Flagged"])
    client.append("Lists/duck", _big(1))  # the same body twice: deduplicated
    client.append("Lists/duck", _message(20), flags=[b"\\Answered", b"Work"])
    client.append("Lists/duck", _big(2))
    client.select_folder("Lists/duck")
    client.delete_messages([3])
    client.expunge()  # into the archive, with the only reference to its body
    client.select_folder("INBOX")
    client.add_flags([2, 3], [b"\\Deleted"])
    client.expunge()  # UIDs 2 and 3 are gone: the UID sequence has holes
    client.add_flags([4], [b"Important"])


async def _user(store: Store, name: str) -> str:
    return (await store.users.create(name, PASSWORD)).id


async def test_backup_of_a_live_server_restores_the_same_imap_view(
        start_duck: StartDuck, mongo_uri: str, tmp_path: Path) -> None:
    source = await start_duck(new_db())
    assert source.store is not None
    await _user(source.store, ALICE)
    await _user(source.store, BOB)
    await imap_session(source, ALICE, _fill)
    await imap_session(source, BOB, lambda c: c.append("INBOX", _message(30)))
    before = await imap_view(source, ALICE)

    target = tmp_path / "backup"
    ran = await spawn_duck("backup", target, "--quiet", mongo_uri=mongo_uri,
                           database=source.config.database)
    assert ran.code == 0, ran.err
    assert "2 users" in ran.out
    manifest = read_manifest(target)
    assert manifest["scope"] == "deployment" and manifest["collections"]["messages"] == 8
    assert manifest["bodies"] == 2  # the big body once, the archived one
    # Whole message documents, their contents put back in (duck/store/index/contents.py).
    lines = (target / "collections" / "messages.jsonl").read_text().splitlines()
    assert all("segs" in json.loads(line) and "cid" not in json.loads(line)
               for line in lines)
    assert "contents" not in manifest["collections"]

    # Into an empty data directory: the command starts its embedded database, then a
    # server runs on it.
    data_dir = tmp_path / "restored"
    ran = await spawn_duck("restore", target, "--quiet", "--data-dir", data_dir, "--offline")
    assert ran.code == 0, ran.err
    restored = await start_duck("duck", data_dir)
    after = await imap_view(restored, ALICE)
    assert after == before
    assert [m.uid for m in after["INBOX"].messages] == [1, 4, 5, 6, 7]
    assert {m.body for m in after["Lists/duck"].messages} >= {_big(1)}
    assert (await imap_view(restored, BOB))["INBOX"].messages[0].body == _message(30)
    assert restored.store is not None
    checkup = await restored.store.doctor(grace=dt.timedelta(0))
    assert checkup.findings == []  # counters, digests, bodies, references all agree
    # Restored with their contents apart again, as a delivery stores them.
    stored = await restored.store.database.run(lambda: list(
        restored.store.database.collection("messages").find({}, {"segs": 1, "cid": 1})))
    assert len(stored) == 8 and all("cid" in d and "segs" not in d for d in stored)
    assert checkup.examined["contents"] >= 8

    # The restored server goes on from where the original was: the next UID and a
    # higher modseq; quota usage is recounted; the user logs in with the old password.
    def append_and_status(client: IMAPClient) -> Any:
        client.enable("CONDSTORE")
        client.append("INBOX", _message(40))
        return client.folder_status("INBOX", ["UIDNEXT", "HIGHESTMODSEQ"])

    status = await imap_session(restored, ALICE, append_and_status)
    assert status[b"UIDNEXT"] == before["INBOX"].uid_next + 1
    assert status[b"HIGHESTMODSEQ"] > before["INBOX"].highest_modseq
    assert restored.store is not None and source.store is not None
    alice = await restored.store.users.by_username(ALICE)
    old = await source.store.users.by_username(ALICE)
    assert alice.storage_used == old.storage_used + len(_message(40))

    # Restoring over existing data is refused unless forced (the running server's
    # database, found through its data directory).
    ran = await run_duck("restore", target, "--quiet", "--data-dir", data_dir)
    assert ran.code == 1 and "has users" in ran.err

    # The archived messages come back from the restored archive whole and found by
    # SEARCH BODY (their text, backed up inside them, goes back with them).
    back = await restored.store.archive.restore(alice.id, None, "INBOX")
    assert len(back) == 3
    inbox = await restored.store.mailboxes.get(alice.id, "INBOX")
    found = await restored.store.messages.search(inbox.id, q.Body("see attached"))
    (big,) = [r.uid for r in back if r.uid in found and r.uid != 7]
    (record,) = await restored.store.messages.fetch(inbox.id, [big], ["content"])
    assert await restored.store.messages.read(record) == _big(2)
    (three,) = await restored.store.messages.search(inbox.id, q.Body("body 3"))
    assert three in {r.uid for r in back}


async def test_one_user_restores_into_another_deployment(
        start_duck: StartDuck, mongo_uri: str, tmp_path: Path) -> None:
    source = await start_duck(new_db())
    other = await start_duck(new_db())
    assert source.store is not None and other.store is not None
    await _user(source.store, ALICE)
    await _user(source.store, BOB)
    await _user(other.store, CAROL)
    await imap_session(source, ALICE, _fill)
    await imap_session(other, CAROL, lambda c: c.append("INBOX", _big(1)))
    before = await imap_view(source, ALICE)

    target = tmp_path / "alice"
    ran = await run_duck("backup", target, "--user", ALICE, "--quiet", mongo_uri=mongo_uri,
                         database=source.config.database)
    assert ran.code == 0, ran.err
    assert read_manifest(target)["scope"] == "user"
    lines = (target / "collections" / "users.jsonl").read_text().splitlines()
    assert [json.loads(line)["username"] for line in lines] == [ALICE]

    ran = await run_duck("restore", target, "--quiet", mongo_uri=mongo_uri,
                         database=other.config.database)
    assert ran.code == 0, ran.err
    assert await imap_view(other, ALICE) == before
    # Carol's mail (which shares the big body) is untouched; the body has both references.
    carol = await imap_view(other, CAROL)
    assert carol["INBOX"].messages[0].body == _big(1)

    ran = await run_duck("restore", target, "--quiet", mongo_uri=mongo_uri,
                         database=other.config.database)
    assert ran.code == 1 and "exists" in ran.err
    ran = await run_duck("restore", target, "--force", "--quiet", mongo_uri=mongo_uri,
                         database=other.config.database)
    assert ran.code == 0, ran.err
    assert await imap_view(other, ALICE) == before
    checkup = await other.store.doctor(grace=dt.timedelta(0))
    assert checkup.findings == []  # the shared body has exactly both references


async def test_backup_reads_each_mailbox_as_one_state_while_mail_arrives(
        store: Store, tmp_path: Path) -> None:
    user = await _user(store, ALICE)
    for n in range(20):
        await store.messages.append(user, "INBOX", _message(n))
    target = tmp_path / "busy"
    done = trio.Event()

    async def deliver() -> None:
        n = 100
        while not done.is_set() and n < 160:
            await store.messages.append(user, "INBOX", _message(n))
            n += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(deliver)
        report = await store.backup(target)
        done.set()
    from duck.store.backup import documents

    box = next(d for d in documents(target, "mailboxes") if d["path"] == "INBOX")
    uids = sorted(d["uid"] for d in documents(target, "messages")
                  if d["mailbox"] == box["_id"])
    # The mailbox document and its messages are one state: its counters, next UID and
    # modseq say exactly which messages the backup holds.
    assert len(uids) == box["count"] and uids[-1] == box["uid_next"] - 1
    modseqs = [d["modseq"] for d in documents(target, "journal") if d["mailbox"] == box["_id"]]
    assert max(modseqs) <= box["modseq"]
    assert report.messages == len(uids) >= 20
    assert report.rereads >= 0


async def test_a_mailbox_read_in_a_snapshot_transaction(store: Store, tmp_path: Path) -> None:
    # The path a mailbox written to faster than it is read takes (after OPTIMISTIC tries).
    from duck.store import backup

    user = await _user(store, ALICE)
    for n in range(3):
        await store.messages.append(user, "INBOX", _big(n) if n == 1 else _message(n))
    await store.database.run(lambda: backup.dump(store.database, tmp_path / "a"))
    await store.database.run(
        lambda: backup.dump(store.database, tmp_path / "b", optimistic=0))
    for name in ("messages", "digests", "mailboxes"):
        a = (tmp_path / "a" / "collections" / f"{name}.jsonl").read_bytes()
        assert a == (tmp_path / "b" / "collections" / f"{name}.jsonl").read_bytes()
    assert sorted((tmp_path / "b" / "bodies").rglob("*")) != []
