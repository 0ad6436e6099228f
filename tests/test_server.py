"""`duck serve` end to end: listeners greet, /health, the user API, SIGTERM."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pymongo
import pytest
import trio
from imapclient import IMAPClient

from duck.ctl.locate import read_state
from duck.store import Store
from tests.api.multiproc import processes_using


async def _read_line(stream: trio.SocketStream) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = await stream.receive_some(4096)
        assert chunk, "connection closed before a full line"
        data += chunk
    return data


async def test_listeners_greet(duck_server: Any) -> None:
    with trio.fail_after(10):
        imap = await trio.open_tcp_stream("127.0.0.1", duck_server.ports["imap"])
        greeting = await _read_line(imap)
        assert greeting.startswith(b"* OK ") and b"IMAP4rev1" in greeting
        await imap.send_all(b"a1 LOGOUT\r\n")
        data = b""
        while b"a1 OK" not in data:
            data += await imap.receive_some(4096)
        assert b"* BYE" in data
        await imap.aclose()
        lmtp = await trio.open_tcp_stream("127.0.0.1", duck_server.ports["lmtp"])
        assert (await _read_line(lmtp)).startswith(b"220 ")
        await lmtp.aclose()


async def test_health_and_user_create(duck_server: Any) -> None:
    base = f"http://127.0.0.1:{duck_server.ports['api']}"
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=base) as client:
            health = await client.get("/health")
            assert health.status_code == 200 and health.json()["success"] is True
            body = {"username": "username@example.com", "password": "secretpass"}
            created = await client.post("/user/create", json=body)
            assert created.status_code == 200
            data = created.json()
            assert data["success"] is True and data["username"] == "username@example.com"
            # The documented shape, in the documented order.
            assert list(data) == ["success", "id", "username"]
            assert created.text.startswith('{"success":true,"id":"')
            store: Store = duck_server.store
            user = await store.users.get(data["id"])
            assert user.username == "username@example.com"
            again = await client.post("/users", json=body)
            assert again.status_code == 409 and again.json()["success"] is False
            other = await client.post("/users", json={"username": "b@example.com", "password": "x"})
            assert other.status_code == 200 and other.json()["id"] != data["id"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b'{"username": "a@example.com"}', 400),
        (b'{"username": 12, "password": "x"}', 400),
        (b'{"username": "not an address", "password": "x"}', 400),
        (b'{"username": "a@example.com", "password": "x", "extra": 1}', 400),
        (b"x" * (10 * 1024 * 1024), 413),
    ],
)
async def test_bad_input(duck_server: Any, body: bytes, status: int) -> None:
    base = f"http://127.0.0.1:{duck_server.ports['api']}"
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=base) as client:
            response = await client.post(
                "/users", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == status
            data = response.json()
            assert data["success"] is False and data["error"] and data["code"]
            # Nothing half-written, and the server keeps serving.
            store: Store = duck_server.store
            count = await store.database.run(
                store.database.collection("users").count_documents, {}
            )
            assert count == 0
            assert (await client.get("/health")).status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serving(data_dir: Path, **ports: int) -> Iterator[subprocess.Popen[bytes]]:
    """The real ``duck serve`` on its embedded default (the ports not given: none,
    but the API's), once it answers /health; killed if still running at the end."""
    def port(name: str) -> str:
        return str(ports.get(name, 0))

    cmd = [
        sys.executable, "-m", "duck.cli", "serve", "--data-dir", str(data_dir),
        "--imap-port", port("imap"), "--imaps-port", "0", "--lmtp-port", port("lmtp"),
        "--pop3-port", "0", "--pop3s-port", "0", "--managesieve-port", "0",
        "--api-port", port("api"),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{ports['api']}/health",
                             timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not become healthy"
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_sigterm_leaves_no_database_process(tmp_path: Path) -> None:
    """The real command on its embedded default: start, answer, SIGTERM, clean exit."""
    data_dir = tmp_path / "data"
    with _serving(data_dir, api=_free_port()) as process:
        assert processes_using(data_dir / "db"), "no embedded database process found"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        deadline = time.monotonic() + 10
        while processes_using(data_dir / "db") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_using(data_dir / "db") == []


@pytest.mark.slow
def test_alone_on_its_database_pushes_without_a_change_stream(tmp_path: Path) -> None:
    """The real command on its embedded default is the only process writing there:
    its notifier reads no change stream (push/notify.py, "sole"), and the server
    keeps no oplog for one. An IDLE session still hears of an LMTP delivery at once,
    and of a message another process writes to the database (as ``duck ctl`` would)
    within a few seconds, and of the next ones too, by polling."""
    data_dir = tmp_path / "data"
    imap, lmtp, api = _free_port(), _free_port(), _free_port()
    with _serving(data_dir, imap=imap, lmtp=lmtp, api=api) as process:
        created = httpx.post(f"http://127.0.0.1:{api}/users",
                             json={"username": "ann@example.com", "password": "pw"})
        assert created.status_code == 200, created.text
        user_id = created.json()["id"]
        client = IMAPClient("127.0.0.1", port=imap, ssl=False, timeout=30)
        client.login("ann@example.com", "pw")
        client.select_folder("INBOX")
        client.idle()

        def exists_within(seconds: float, count: int) -> None:
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                if (count, b"EXISTS") in client.idle_check(timeout=0.2):
                    return
            raise AssertionError(f"no * {count} EXISTS within {seconds} s")

        def stream_reads() -> float:
            metrics = httpx.get(f"http://127.0.0.1:{api}/metrics").text
            return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                       if line.startswith("duck_store_database_commands_total{")
                       and 'database_command="getMore"' in line)

        with smtplib.LMTP("127.0.0.1", lmtp) as delivery:
            for n in (1, 2, 3):
                delivery.sendmail("x@example.org", ["ann@example.com"],
                                  f"Subject: {n}\r\n\r\nbody\r\n".encode())
                # (At once in practice: the check for other processes' writes
                # comes once a second.)
                exists_within(0.5, n)
        # Two of those checks later, its own deliveries were not taken for another
        # process's: no change stream was opened.
        time.sleep(2.5)
        assert stream_reads() == 0

        state = read_state(data_dir)

        async def write_elsewhere() -> None:
            other = await Store.open(state.mongo_uri, state.database)
            try:
                await other.messages.append(user_id, "INBOX", b"Subject: two\r\n\r\nx\r\n")
            finally:
                await other.aclose()

        # Nothing keeps what a change stream would read.
        with pymongo.MongoClient(state.mongo_uri) as direct:
            assert direct.local["oplog.rs"].count_documents({}) == 0

        trio.run(write_elsewhere)
        exists_within(10.0, 4)
        # Another process writes here after all: the mailboxes are polled from then
        # on (there is no stream to read), and its next write comes within a poll.
        trio.run(write_elsewhere)
        exists_within(5.0, 5)
        assert stream_reads() == 0
        client.idle_done()
        client.logout()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
