"""A database outage: every protocol answers "try later", nothing crashes, and
service resumes when the database is back (no restart of duck). A message in the
outbound queue waits it out and is sent once afterwards."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from duck.config import Config
from duck.server import Server
from duck.store.engine.embedded import BlockingEmbeddedDatabase
from tests.lmtp.client import LmtpClient
from tests.outbound.smtp_sink import SmtpSink

pytestmark = pytest.mark.slow


async def _imap(port: int) -> tuple[trio.SocketStream, Any]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    buffer = bytearray()

    async def command(line: bytes, tag: bytes) -> bytes:
        await stream.send_all(line)
        while not any(
            ln.startswith(tag + b" ") for ln in bytes(buffer).split(b"\r\n")
        ):
            data = await stream.receive_some(65536)
            assert data, "server closed the connection"
            buffer.extend(data)
        out = bytes(buffer)
        buffer.clear()
        return out

    return stream, command


def test_outage_and_recovery(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="duck.delivery")
    database = BlockingEmbeddedDatabase(tmp_path / "db")
    uri = database.__enter__()
    port = database.spec.port
    try:
        trio.run(_scenario, tmp_path, uri, database)
    finally:
        database.__exit__()
    assert port
    # The recipient turned away with 451 during the outage has its delivery line
    # (the MTA retries it; the operator sees why in duck's log too).
    (line,) = [r for r in caplog.records if r.name == "duck.delivery"]
    assert (line.recipient, line.outcome, line.size) == ("o@example.com",  # type: ignore[attr-defined]
                                                         "unavailable", 0)


async def _scenario(tmp_path: Path, uri: str, database: BlockingEmbeddedDatabase) -> None:
    fast_uri = uri.replace("serverSelectionTimeoutMS=5000", "serverSelectionTimeoutMS=1500")
    fast_uri += "&connectTimeoutMS=1500"
    config = Config(
        data_dir=tmp_path / "data", imap_port=0, imaps_port=0, lmtp_port=0, api_port=0,
        pop3_port=0, pop3s_port=0, managesieve_port=0,
        mongo_uri=fast_uri, database="outage", shutdown_grace=1.0,
        smtp_relay=f"127.0.0.1:{_free_port()}", smtp_relay_tls="none",
        outbound_retry_base=0.5, outbound_poll_interval=0.5,
    )
    server = Server(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        assert server.store is not None
        user = await server.store.users.create("o@example.com", "pw")
        # Queued while the relay is down: tried once, and failed.
        queued = await server.store.outbound.enqueue("", ["x@example.org"], b"Subject: o\r\n"
                                                     b"\r\nout\r\n", kind="vacation")
        with trio.fail_after(30):
            while (await server.store.outbound.get(queued)).error is None:
                await trio.sleep(0.05)
        sink = SmtpSink()
        async with trio.open_nursery() as sinks:
            with trio.fail_after(120):
                stream, imap = await _imap(server.ports["imap"])
                await stream.receive_some(4096)  # greeting
                assert b"a OK" in await imap(b"a LOGIN o@example.com pw\r\n", b"a")
                assert b"b OK" in await imap(b"b SELECT INBOX\r\n", b"b")

                # The database goes away.
                await trio.to_thread.run_sync(database.__exit__)
                reply = await imap(b"c APPEND INBOX {11+}\r\nSubject: x\r\n", b"c")
                assert b"c NO [UNAVAILABLE]" in reply
                assert b"d OK" in await imap(b"d NOOP\r\n", b"d")  # the session lives on
                lmtp = await LmtpClient.connect(server.ports["lmtp"])
                await lmtp.read_reply()
                await lmtp.command("LHLO test")
                await lmtp.command("MAIL FROM:<a@example.org>")
                rcpt = await lmtp.command("RCPT TO:<o@example.com>")
                assert (rcpt.code, rcpt.status) == (451, "4.3.0")
                await lmtp.aclose()
                async with httpx.AsyncClient() as client:
                    api = await client.get(
                        f"http://127.0.0.1:{server.ports['api']}/users/{user.id}"
                    )
                assert api.status_code == 503 and api.json()["success"] is False
                # The relay comes up while the database is away: nothing to send yet.
                assert config.smtp_relay is not None
                await sinks.start(sink.serve, int(config.smtp_relay.rsplit(":", 1)[1]))

                # It comes back on the same port; duck recovers without a restart.
                await trio.to_thread.run_sync(_restart, database)
                deadline = trio.current_time() + 60
                while True:
                    reply = await imap(b"e APPEND INBOX {11+}\r\nSubject: y\r\n", b"e")
                    if b"e OK" in reply or trio.current_time() > deadline:
                        break
                    await trio.sleep(1)
                assert b"e OK [APPENDUID" in reply
                await stream.aclose()
                # The temporary refusal at RCPT is counted as an outcome.
                async with httpx.AsyncClient(timeout=20) as client:
                    metrics = await client.get(
                        f"http://127.0.0.1:{server.ports['api']}/metrics")
                samples = {(s.name, s.labels.get("outcome")): s.value
                           for f in text_string_to_metric_families(metrics.text)
                           for s in f.samples}
                assert samples[("duck_deliveries_total", "unavailable")] == 1
                (sent,) = await sink.wait_for(1, timeout=60)
                assert sent.data == b"Subject: o\r\n\r\nout\r\n"
                while (await server.store.outbound.get(queued)).status != "sent":
                    await trio.sleep(0.05)
                await trio.sleep(1.0)  # polls of the sender: not sent again
                assert len(sink.received) == 1
                sinks.cancel_scope.cancel()
        server.request_shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _restart(database: BlockingEmbeddedDatabase) -> None:
    port = database.spec.port
    # The port must be free again before the server can bind it.
    for _ in range(50):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                break
        time.sleep(0.1)
    database.__enter__()
    assert database.spec.port == port, "restarted on another port"
    assert isinstance(database.process, subprocess.Popen)
