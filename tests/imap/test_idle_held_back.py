"""IDLE hears of another process's changes while the change stream is held back.

The embedded server delivers no change-stream event that follows a transaction
still open, and a transaction whose process was SIGKILLed stays open until a writer
that needs its documents has waited 60 s for it, or the server restarts. The soak
(bench/soak) met it: duck-b killed inside a transaction, and a session IDLE on
duck-a never got the last EXPUNGEs of INBOX. Here a process is killed with a
transaction open, and the changes another store makes must still reach IDLE.

On a database of its own: the transaction left open holds back every change stream
of the server, which would stall the other tests' notifiers on the shared one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio

from duck.config import Config
from duck.imap.server import serve_imap
from duck.imap.session import ServerContext
from duck.store import Notifier, Store, mailbox_key
from duck.store.engine.embedded import BlockingEmbeddedDatabase

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient

pytestmark = pytest.mark.slow

DATABASE = "held"

#: A process that opens a transaction, writes in it, says so and waits to be killed.
_ORPHAN = """
import sys, time
import pymongo
client = pymongo.MongoClient(sys.argv[1])
session = client.start_session()
session.start_transaction()
client[sys.argv[2]]["orphans"].insert_one({"killed": "before its commit"}, session=session)
print("open", flush=True)
time.sleep(600)
"""


def test_idle_sees_other_writers_while_a_killed_transaction_holds_the_stream(
        tmp_path: Path) -> None:
    database = BlockingEmbeddedDatabase(tmp_path / "db", sync_on_commit=False)
    uri = database.__enter__()
    try:
        trio.run(_scenario, tmp_path, uri)
    finally:
        database.__exit__()


async def _scenario(tmp_path: Path, uri: str) -> None:
    config = Config(data_dir=tmp_path / "data", imap_port=0, imaps_port=0, pop3_port=0,
                    pop3s_port=0, managesieve_port=0, mongo_uri=uri, database=DATABASE)
    store = await Store.open(uri, DATABASE)
    # Another duck process: its own client, and no notifier of its own here.
    other = await Store.open(uri, DATABASE, prepare=False)
    notifier = Notifier(store.database, journal=store.journal)
    context = ServerContext(store=store, config=config, shutdown=trio.Event(),
                            notifier=notifier)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(notifier.run)
            port = await nursery.start(serve_imap, context, "127.0.0.1", 0)
            user = await store.users.create(USER, PASSWORD)
            with trio.fail_after(30):
                while notifier.mode != "change-stream":
                    await trio.sleep(0.01)
                inbox = await other.mailboxes.get(user.id, "INBOX")
                # Until the orphan, the stream brings every change: this one too.
                with notifier.subscription(mailbox_key(inbox.id)) as sub:
                    first = await other.messages.append(user.id, "INBOX", simple_message(1))
                    while notifier.events_seen == 0 or sub.high < inbox.highest_modseq + 1:
                        await trio.sleep(0.01)
                a = await RawClient.logged_in(port, USER, PASSWORD)
                await a.command(b"s", b"SELECT INBOX")
                await a.send(b"i IDLE\r\n")
                assert (await a.line()).startswith(b"+ ")
                process = await trio.lowlevel.open_process(
                    [sys.executable, "-c", _ORPHAN, uri, DATABASE], stdout=subprocess.PIPE)
                assert process.stdout is not None
                assert (await process.stdout.receive_some(64)).startswith(b"open")
                process.kill()
                await process.wait()
            seen = notifier.events_seen

            # Each change is told within a second or two (QUIET_CHECK); without the
            # check of the mailboxes, none would be before the server restarts.
            with trio.fail_after(20):
                # Another process delivers, flags and expunges.
                second = await other.messages.append(user.id, "INBOX", simple_message(2))
                assert await a.line() == b"* 2 EXISTS\r\n"
                assert await a.line() == b"* 2 RECENT\r\n"  # (1 came before, to this session)
                await other.messages.store_flags(inbox.id, [first.uid], "add", ["\\Deleted"])
                line = await a.line()
                assert line.startswith(b"* 1 FETCH (") and b"\\Deleted" in line, line
                await other.messages.expunge(inbox.id, [first.uid])
                assert await a.line() == b"* 1 EXPUNGE\r\n"
                # Told by asking the mailboxes: the stream brought none of it.
                assert notifier.events_seen == seen, "the stream was not held back"
                assert notifier.statistics()["caught_up"] >= 3

                await a.send(b"DONE\r\n")
                assert (await a.until_tagged(b"i"))[-1] == b"i OK IDLE completed\r\n"
                lines = await a.command(b"f", b"FETCH 1:* (UID)")
                assert lines[0] == b"* 1 FETCH (UID %d)\r\n" % second.uid, lines
            nursery.cancel_scope.cancel()
    finally:
        await other.aclose()
        await store.aclose()
