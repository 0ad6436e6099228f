"""Issue 14's "Done when": the outbound queue survives a SIGKILL of duck between
accepting and sending; after the restart the message is sent exactly once.

- With the relay down, the message is accepted (durable in the queue), duck tries
  the relay and fails, then ``duck serve`` is SIGKILLed. The relay comes up, duck
  restarts on the same database, and the message arrives at the relay once.
- A Sieve redirect of a message delivered over LMTP: duck is SIGKILLed while the
  relay holds the copy at its final dot, unanswered. The restarted duck sends it
  when the dead process's claim runs out, once, byte for byte the copy the relay
  held. docs/outbound.md's promise is exactly this: a relay that commits only what
  it acknowledged gets the message once; one that had committed the held copy
  before answering would get it twice with one Message-ID (the at-least-once
  window SMTP leaves, RFC 1047), which receivers drop as a duplicate.

duck runs on the test run's database server (``--mongo-uri``), as on a real
deployment, so only duck dies; a power cut that also kills the embedded database is
tests/lmtp/test_crash_durability.py's (its acknowledged writes survive, and the
queue is such writes).
"""

from __future__ import annotations

import datetime as dt
import os
import smtplib
import socket
import subprocess
import sys
import time
import urllib.request
from functools import partial
from pathlib import Path

import pytest
import trio

from duck.store import Store
from duck.store.outbound.queue import QUEUE
from tests.outbound.smtp_sink import SmtpSink

pytestmark = pytest.mark.slow

MESSAGE = (b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: away\r\n"
           b"Message-ID: <crash-1@example.com>\r\nAuto-Submitted: auto-replied\r\n\r\n"
           b"I am away.\r\n")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(data_dir: Path, uri: str, database: str, relay_port: int, api: int,
           lmtp: int = 0, relay_timeout: float = 3.0) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "duck.cli", "serve", "--data-dir", str(data_dir),
        "--mongo-uri", uri, "--database", database,
        "--imap-port", "0", "--imaps-port", "0", "--lmtp-port", str(lmtp),
        "--api-port", str(api), "--pop3-port", "0", "--pop3s-port", "0", "--managesieve-port", "0",
        "--smtp-relay", f"127.0.0.1:{relay_port}", "--smtp-relay-tls", "none",
    ]
    env = dict(os.environ, DUCK_OUTBOUND_RETRY_BASE="3", DUCK_OUTBOUND_POLL_INTERVAL="0.3",
               DUCK_SMTP_RELAY_TIMEOUT=str(relay_timeout))
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, "duck serve exited during start-up"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api}/health", timeout=2) as r:
                if r.status == 200:
                    return process
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("duck serve did not become healthy")


async def test_sigkill_between_accepting_and_sending(
        store: Store, mongo_uri: str, db_name: str, tmp_path: Path,
        nursery: trio.Nursery) -> None:
    data_dir = tmp_path / "data"
    relay_port, api_port = _free_port(), _free_port()
    start = partial(_start, data_dir, mongo_uri, db_name, relay_port, api_port)
    server = await trio.to_thread.run_sync(start)
    try:
        qid = await store.outbound.enqueue("", ["bob@example.org"], MESSAGE,
                                           kind="vacation", user_id="alice")
        # duck's sender finds it and fails (the relay is down): its attempt is
        # recorded, and the next one is seconds away; now duck dies.
        with trio.fail_after(30):
            while (status := await store.outbound.get(qid)).error is None:
                await trio.sleep(0.02)
        assert status.status == "queued" and status.attempts == 1
        server.kill()  # SIGKILL
        await trio.to_thread.run_sync(server.wait)
    finally:
        if server.poll() is None:
            server.kill()

    sink = SmtpSink()
    await nursery.start(sink.serve, relay_port)
    server = await trio.to_thread.run_sync(start)
    try:
        (got,) = await sink.wait_for(1, timeout=40)
        assert got.sender == "" and got.recipients == ("bob@example.org",)
        assert got.data == MESSAGE
        with trio.fail_after(10):
            while (status := await store.outbound.get(qid)).status != "sent":
                await trio.sleep(0.05)
        assert status.attempts == 2 and status.sent == ("bob@example.org",)
        await trio.sleep(1.0)  # a few polls of the sender: nothing is sent again
        assert len(sink.received) == 1
    finally:
        # Done: killed (a graceful stop would wait out its grace period).
        server.kill()
        await trio.to_thread.run_sync(server.wait)


SCRIPT = 'require ["copy"];\nredirect :copy "forward@elsewhere.example";\n'
DELIVERED = (b"From: carol@example.net\r\nTo: alice@example.com\r\nSubject: fwd me\r\n"
             b"Message-ID: <crash-2@example.net>\r\n\r\nPlease pass this on.\r\n")


def _deliver(port: int) -> None:
    with smtplib.LMTP("127.0.0.1", port, timeout=30) as client:
        assert client.sendmail("carol@example.net", ["alice@example.com"], DELIVERED) == {}


async def test_sigkill_while_the_relay_holds_a_redirect(
        store: Store, mongo_uri: str, db_name: str, tmp_path: Path,
        nursery: trio.Nursery) -> None:
    alice = await store.users.create("alice@example.com", "pw")
    await store.sieve.put(alice.id, "main", SCRIPT)
    await store.sieve.activate(alice.id, "main")
    sink = SmtpSink(hold=True)
    relay_port = await nursery.start(sink.serve)
    api_port, lmtp_port = _free_port(), _free_port()
    # Replies may take 0.5 s, the final dot's 5 s: the claim lasts 10 x 0.5 + 5 +
    # 60 s (Sender.lease), the shortest a test can wait for it to run out.
    start = partial(_start, tmp_path / "data", mongo_uri, db_name, relay_port, api_port,
                    lmtp_port, 0.5)
    server = await trio.to_thread.run_sync(start)
    try:
        # Accepted over LMTP: the redirect is queued before the 250. duck sends it
        # at once, and the relay holds it at the final dot: now duck dies.
        await trio.to_thread.run_sync(_deliver, lmtp_port)
        (held,) = await sink.wait_for(1, timeout=30, held=True)
        server.kill()  # SIGKILL
        await trio.to_thread.run_sync(server.wait)
    finally:
        if server.poll() is None:
            server.kill()
    assert sink.received == []
    queue = store.database.collection(QUEUE)
    (doc,) = await store.database.run(lambda: list(queue.find({}, {"_id": 1})))
    status = await store.outbound.get(str(doc["_id"]))
    # Claimed, attempted, never settled: queued, due when the dead claim runs out.
    assert (status.kind, status.status, status.attempts) == ("redirect", "queued", 1)
    lease_left = (status.next_at - dt.datetime.now(dt.UTC)).total_seconds()
    assert 50 < lease_left <= 70, lease_left

    sink.hold = False
    connections = sink.connections
    server = await trio.to_thread.run_sync(start)
    try:
        # Until the claim runs out, the restarted duck leaves the message alone: the
        # process that claimed it could still be sending.
        await trio.sleep((status.next_at - dt.datetime.now(dt.UTC)).total_seconds() - 2)
        assert sink.connections == connections and sink.received == []
        (got,) = await sink.wait_for(1, timeout=40)
        assert got.sender == "carol@example.net"
        assert got.recipients == ("forward@elsewhere.example",)
        assert got.data == held.data  # one Message-ID, the same bytes
        assert got.data.startswith(b"Delivered-To: alice@example.com\r\n")
        assert got.data.endswith(DELIVERED)
        with trio.fail_after(10):
            while (status := await store.outbound.get(status.id)).status != "sent":
                await trio.sleep(0.05)
        assert status.attempts == 2 and status.sent == ("forward@elsewhere.example",)
        await trio.sleep(1.0)  # a few polls of the sender: nothing is sent again
        assert len(sink.received) == 1 and sink.connections == connections + 1
        # The LMTP delivery itself was kept once (the redirect was :copy).
        inbox = await store.mailboxes.get(alice.id, "INBOX")
        assert inbox.message_count == 1
    finally:
        server.kill()
        await trio.to_thread.run_sync(server.wait)
