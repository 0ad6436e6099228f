"""``duck export`` to Maildir and mbox, read back by ``duck import``: the same bytes
(Maildir) or the same message with its flags in headers (mbox), flags and dates."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from imapclient import IMAPClient

from duck.migrate import maildir

from .conftest import PASSWORD, StartDuck, imap_session, imap_view, new_db, run_duck, spawn_duck

ALICE, BOB = "alice@example.org", "bob@example.org"


def _fill(client: IMAPClient) -> None:
    client.create_folder("Work/Entwürfe")
    client.append("INBOX", b"Subject: a\r\n\r\nFrom the top\r\n>From quoted\r\n",
                  flags=[b"\\Seen", b"Todo"],
                  msg_time=dt.datetime(2020, 2, 3, 4, 5, 6, tzinfo=dt.UTC))
    client.append("Work/Entwürfe", b"Subject: b\r\n\r\nbody\r\n",
                  flags=[b"\\Draft", b"\\Flagged"],
                  msg_time=dt.datetime(2021, 2, 3, 4, 5, 6, tzinfo=dt.UTC))


async def test_export_to_maildir_and_mbox(start_duck: StartDuck, mongo_uri: str,
                                          tmp_path: Path) -> None:
    server = await start_duck(new_db())
    assert server.store is not None
    for name in (ALICE, BOB):
        await server.store.users.create(name, PASSWORD)
    await imap_session(server, ALICE, _fill)
    source = await imap_view(server, ALICE)
    db = server.config.database

    # Found through the running server's data directory (its state file).
    ran = await spawn_duck("export", "maildir", tmp_path / "md", "--user", ALICE, "--quiet",
                           "--data-dir", server.config.data_dir)
    assert ran.code == 0, ran.err
    assert "exported 2 messages" in ran.out
    work = tmp_path / "md" / ".Work.Entw&APw-rfe"
    (name,) = os.listdir(work / "cur")
    assert name.endswith(":2,DF")
    assert os.stat(work / "cur" / name).st_mtime == dt.datetime(
        2021, 2, 3, 4, 5, 6, tzinfo=dt.UTC).timestamp()
    assert {"INBOX", "Work", "Work/Entwürfe"} <= {
        f.path for f in maildir.folders(tmp_path / "md")}
    again = await run_duck("export", "maildir", tmp_path / "md", "--user", ALICE, "--quiet",
                           mongo_uri=mongo_uri, database=db)
    assert again.code == 0 and len(os.listdir(work / "cur")) == 1  # nothing twice

    ran = await run_duck("export", "mbox", tmp_path / "mb", "--user", ALICE, "--quiet",
                         mongo_uri=mongo_uri, database=db)
    assert ran.code == 0, ran.err
    inbox = (tmp_path / "mb" / "INBOX.mbox").read_bytes()
    assert inbox.startswith(b"From MAILER-DAEMON Mon Feb 03 04:05:06 2020\n")
    assert b"\n>From the top\n>>From quoted\n" in inbox  # mboxrd quoting
    assert (tmp_path / "mb" / "Work" / "Entwürfe.mbox").exists()

    # Bob imports both: the Maildir copy is byte-identical, the mbox copy has the
    # same flags and dates (its header now carries them as Status: lines).
    ran = await run_duck("import", "maildir", tmp_path / "md", "--user", BOB, "--quiet",
                         mongo_uri=mongo_uri, database=db)
    assert ran.code == 0, ran.err
    ran = await run_duck("import", "mbox", tmp_path / "mb" / "INBOX.mbox", "--user", BOB,
                         "--folder", "FromMbox", "--quiet", mongo_uri=mongo_uri, database=db)
    assert ran.code == 0, ran.err
    bob = await imap_view(server, BOB)
    for folder in ("INBOX", "Work/Entwürfe"):
        assert [(m.body, m.flags, m.internal_date) for m in bob[folder].messages] == \
            [(m.body, m.flags, m.internal_date) for m in source[folder].messages]
    (copy,) = bob["FromMbox"].messages
    (original,) = source["INBOX"].messages
    assert (copy.flags, copy.internal_date) == (original.flags, original.internal_date)
    assert copy.body.endswith(b"\r\n\r\nFrom the top\r\n>From quoted\r\n")
