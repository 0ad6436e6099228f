"""Issue 14's "Done when": the outbound queue survives a SIGKILL of duck between
accepting and sending; after the restart the message is sent exactly once.

With the relay down, the message is accepted (durable in the queue), duck tries
the relay and fails, then ``duck serve`` is SIGKILLed. The relay comes up, duck
restarts on the same database, and the message arrives at the relay once.

duck runs on the test run's database server (``--mongo-uri``), as on a real
deployment, so only duck dies; a power cut that also kills the embedded database is
tests/lmtp/test_crash_durability.py's (its acknowledged writes survive, and the
queue is such writes).
"""

from __future__ import annotations

import os
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
from tests.outbound.smtp_sink import SmtpSink

pytestmark = pytest.mark.slow

MESSAGE = (b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: away\r\n"
           b"Message-ID: <crash-1@example.com>\r\nAuto-Submitted: auto-replied\r\n\r\n"
           b"I am away.\r\n")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(data_dir: Path, uri: str, database: str, relay_port: int, api: int
           ) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "duck.cli", "serve", "--data-dir", str(data_dir),
        "--mongo-uri", uri, "--database", database,
        "--imap-port", "0", "--imaps-port", "0", "--lmtp-port", "0",
        "--api-port", str(api), "--pop3-port", "0", "--pop3s-port", "0", "--managesieve-port", "0",
        "--smtp-relay", f"127.0.0.1:{relay_port}", "--smtp-relay-tls", "none",
    ]
    env = dict(os.environ, DUCK_OUTBOUND_RETRY_BASE="3", DUCK_OUTBOUND_POLL_INTERVAL="0.3",
               DUCK_SMTP_RELAY_TIMEOUT="3")
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
