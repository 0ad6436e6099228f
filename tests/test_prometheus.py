"""``GET /metrics``: scraped, parsed by prometheus-client's parser, and each family
moves when its event happens. And the event log lines that go with them."""

from __future__ import annotations

import json
import logging
import os
import signal
import smtplib
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from duck.config import Config
from duck.ctl.locate import read_state
from duck.logs import JsonFormatter
from duck.observe import Observer
from duck.server import Server
from duck.store import Store
from tests.lmtp.client import LmtpClient

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(server: Any) -> Samples:
    """Every sample of the server's /metrics, by (name, labels)."""
    async with httpx.AsyncClient(timeout=20) as client:
        r = await client.get(f"http://127.0.0.1:{server.ports['api']}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def imap_session(port: int, *lines: str) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all("".join(f"{line}\r\n" for line in lines).encode())
    data = b""
    while b"\r\nz OK" not in data:
        chunk = await stream.receive_some(4096)
        assert chunk, data
        data += chunk
    await stream.aclose()
    return data


async def test_each_family_moves_with_its_event(duck_server: Any,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    store: Store = duck_server.store
    user = await store.users.create("mia@example.com", "pw-metrics")
    await store.users.create("full@example.com", "pw-metrics", quota=10)
    with trio.fail_after(60):
        before = await scrape(duck_server)

        await imap_session(duck_server.ports["imap"], 'a LOGIN mia@example.com pw-metrics',
                           "b NOOP", "z LOGOUT")
        lmtp = await LmtpClient.connect(duck_server.ports["lmtp"])
        await lmtp.read_reply()
        assert (await lmtp.command("LHLO client.example.org")).code == 250
        message = b"Subject: m\r\n\r\n" + b"x" * 100 + b"\r\n"
        rcpts, data = await lmtp.deliver("s@example.org", ["mia@example.com",
                                                           "full@example.com"], message)
        assert [r.code for r in rcpts] == [250, 250] and [r.code for r in data] == [250, 552]
        queue_id = data[0].text.split(" ")[0].strip("<>")
        await lmtp.command("QUIT")
        await lmtp.aclose()
        await store.outbound.enqueue("mia@example.com", ["x@example.net"],
                                     b"Subject: out\r\n\r\nhi\r\n", kind="redirect")
        # The notifier's wake-up for the delivery comes through the change stream.
        while duck_server.notifier.events_seen == 0:
            await trio.sleep(0.05)
        after = await scrape(duck_server)

    def moved(name: str, by: float = 1, **labels: str) -> None:
        delta = value(after, name, **labels) - value(before, name, **labels)
        assert delta == by, (name, labels, delta)

    moved("duck_connections_total", protocol="imap")
    moved("duck_connections_total", protocol="lmtp")
    assert value(after, "duck_connections_open", protocol="imap") == 0
    moved("duck_command_seconds_count", protocol="imap", command="LOGIN")
    moved("duck_command_seconds_count", protocol="imap", command="NOOP")
    assert value(after, "duck_command_seconds_sum", protocol="imap", command="LOGIN") > 0
    moved("duck_command_seconds_count", protocol="lmtp", command="DATA END")
    moved("duck_command_seconds_count", protocol="lmtp", command="RCPT", by=2)
    moved("duck_deliveries_total", outcome="stored")
    moved("duck_deliveries_total", outcome="over_quota")
    moved("duck_delivered_bytes_total", by=len(message))
    assert value(after, "duck_store_round_trips_total", command="LOGIN") > value(
        before, "duck_store_round_trips_total", command="LOGIN")
    # The same round trips, by database command: they add up to the total.
    by_command = [k for k in after if k[0] == "duck_store_database_commands_total"
                  and dict(k[1]).get("command") == "LOGIN"]
    assert by_command
    assert sum(after[k] for k in by_command) == value(
        after, "duck_store_round_trips_total", command="LOGIN")
    assert value(after, "duck_notifier_events_total") > value(before, "duck_notifier_events_total")
    # The group commit figures (engine/groupcommit.py) are there, and add up.
    assert ("duck_store_group_commits_total", frozenset()) in after
    assert value(after, "duck_store_group_commit_members_total") >= value(
        after, "duck_store_group_commits_total")
    assert ("duck_store_group_commit_failures_total", frozenset()) in after
    assert value(after, "duck_store_group_commits_early_total") <= value(
        after, "duck_store_group_commits_total")
    # Where the groups' time went, one sample per phase; the waits for a user's lock.
    assert {dict(k[1])["phase"] for k in after
            if k[0] == "duck_store_group_commit_seconds_total"} == {
        "gather", "slot", "writes", "commit"}
    assert ("duck_store_user_lock_waits_total", frozenset()) in after
    assert ("duck_store_user_lock_wait_seconds_total", frozenset()) in after
    # The delivery's message, indexed once for both recipients, by the parse worker.
    moved("duck_store_parse_worker_messages_total")
    assert ("duck_store_parse_worker_failures_total", frozenset()) in after
    assert 0 <= value(after, "duck_notifier_lag_seconds") < 30
    moved("duck_outbound_queue_depth")
    # The first scrape itself was an answered API request.
    assert value(after, "duck_api_requests_total", method="GET", status="200") >= 1

    # One log line per connection event, delivery and API request, with its fields.
    records = caplog.records
    conns = [r for r in records if r.name == "duck.conn" and getattr(r, "protocol", "") == "imap"]
    assert [r.event for r in conns] == ["open", "close"]  # type: ignore[attr-defined]
    assert conns[0].peer.startswith("127.0.0.1:")  # type: ignore[attr-defined]
    deliveries = {r.recipient: r for r in records if r.name == "duck.delivery"}  # type: ignore[attr-defined]
    assert deliveries["mia@example.com"].outcome == "stored"  # type: ignore[attr-defined]
    assert deliveries["mia@example.com"].queue_id == queue_id  # type: ignore[attr-defined]
    assert deliveries["mia@example.com"].size == len(message)  # type: ignore[attr-defined]
    assert deliveries["full@example.com"].outcome == "over_quota"  # type: ignore[attr-defined]
    api = [r for r in records if r.name == "duck.api.access"]
    assert any(r.path == "/metrics" and r.status == 200 for r in api)  # type: ignore[attr-defined]
    # No line per IMAP command by default.
    assert not any("NOOP" in r.getMessage() for r in records)
    assert user.id


def _lmtp_transaction(port: int, rcpts: list[str], message: bytes
                      ) -> tuple[list[tuple[int, bytes]], tuple[int, bytes] | None]:
    """One LMTP transaction through smtplib.LMTP (as an MTA's LMTP client speaks it):
    each RCPT's reply, and DATA's reply when some recipient was accepted."""
    with smtplib.LMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo_or_helo_if_needed()
        assert client.mail("sender@example.org")[0] == 250
        answers = [client.rcpt(r) for r in rcpts]
        if not any(code == 250 for code, _ in answers):
            client.rset()
            return answers, None
        # One accepted recipient: DATA's one reply is its reply (smtplib reads one).
        return answers, client.data(message)


async def test_refused_recipients_are_logged_and_counted(
        duck_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A recipient refused at RCPT has its delivery line and outcome, as one refused
    after the message does (issue 15): unknown addresses and disabled mailboxes
    show in duck's log and metrics, not only in the MTA's."""
    caplog.set_level(logging.INFO, logger="duck.delivery")
    store: Store = duck_server.store
    await store.users.create("nia@example.com", "pw")
    off = await store.users.create("off@example.com", "pw")
    await store.admin.set_disabled(off.id, True)
    port = duck_server.ports["lmtp"]
    message = b"Subject: r\r\n\r\nhello\r\n"
    with trio.fail_after(60):
        before = await scrape(duck_server)
        rcpts, data = await trio.to_thread.run_sync(
            _lmtp_transaction, port,
            ["nobody@example.com", "nia@example.com", "off@example.com"], message)
        # A transaction whose only recipient is refused never reaches DATA.
        alone, none = await trio.to_thread.run_sync(
            _lmtp_transaction, port, ["ghost+tag@example.com"], message)
        after = await scrape(duck_server)

    assert [code for code, _ in rcpts] == [550, 250, 550]
    assert rcpts[0][1].startswith(b"5.1.1") and rcpts[2][1].startswith(b"5.2.1")
    assert data is not None and data[0] == 250
    queue_id = data[1].split(b" ")[1].strip(b"<>").decode()
    assert alone[0][0] == 550 and none is None

    def moved(outcome: str) -> float:
        return (value(after, "duck_deliveries_total", outcome=outcome)
                - value(before, "duck_deliveries_total", outcome=outcome))

    assert (moved("unknown_user"), moved("mailbox_disabled"), moved("stored")) == (2, 1, 1)

    lines = [r for r in caplog.records if r.name == "duck.delivery"]
    by_rcpt = {r.recipient: r for r in lines}  # type: ignore[attr-defined]
    assert len(lines) == 4 and len(by_rcpt) == 4
    # The refused lines carry the transaction's queue id (the one the stored copy's
    # 250 reply names), the outcome label of the metrics, and size 0.
    assert by_rcpt["nobody@example.com"].getMessage() == (
        f"delivery {queue_id} to=nobody@example.com outcome=unknown_user size=0")
    assert (by_rcpt["off@example.com"].outcome, by_rcpt["off@example.com"].queue_id,  # type: ignore[attr-defined]
            by_rcpt["off@example.com"].size) == ("mailbox_disabled", queue_id, 0)  # type: ignore[attr-defined]
    assert by_rcpt["nia@example.com"].getMessage() == (
        f"delivery {queue_id} to=nia@example.com outcome=stored size={len(message)}")
    ghost = by_rcpt["ghost+tag@example.com"]  # the address as the MTA gave it
    assert ghost.outcome == "unknown_user" and ghost.queue_id not in ("-", queue_id)  # type: ignore[attr-defined]


def test_two_observers_do_not_share_counts() -> None:
    a, b = Observer(), Observer()
    a.command("imap", "NOOP", 0.001)
    a.delivery("Q1", "x@example.com", "stored", 10)
    assert a.registry.get_sample_value(
        "duck_command_seconds_count", {"protocol": "imap", "command": "NOOP"}) == 1
    assert b.registry.get_sample_value(
        "duck_command_seconds_count", {"protocol": "imap", "command": "NOOP"}) is None
    assert b.registry.get_sample_value("duck_deliveries_total", {"outcome": "stored"}) is None


def test_json_lines_carry_the_event_fields() -> None:
    record = logging.LogRecord("duck.delivery", logging.INFO, __file__, 1,
                               "delivery %s to=%s", ("Q1", "a@example.com"), None)
    record.queue_id, record.outcome, record.size = "Q1", "stored", 42
    line = json.loads(JsonFormatter("worker-2").format(record))
    assert line["message"] == "delivery Q1 to=a@example.com"
    assert (line["logger"], line["level"], line["process"]) == ("duck.delivery", "INFO",
                                                                 "worker-2")
    assert (line["queue_id"], line["outcome"], line["size"]) == ("Q1", "stored", 42)
    assert line["time"].endswith("+00:00")


@pytest.mark.slow
async def test_embedded_database_up_and_restarts(tmp_path: Path, nursery: Any) -> None:
    """A real embedded database: killed, it is restarted, and the families say so."""
    config = Config(data_dir=tmp_path / "data", imap_port=0, imaps_port=0, lmtp_port=0,
                    pop3_port=0, pop3s_port=0, managesieve_port=0, api_port=0,
                    shutdown_grace=2.0)
    server = Server(config)
    with trio.fail_after(120):
        await nursery.start(server.run)
        try:
            # The admin commands find this database through the data directory.
            assert read_state(config.data_dir).mongo_uri == server.mongo_uri
            first = await scrape(server)
            assert value(first, "duck_embedded_database_up") == 1
            assert value(first, "duck_embedded_database_restarts_total") == 0
            assert server.embedded is not None
            os.kill(int(server.embedded.statistics()["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
            while server.embedded.restarts == 0 or server.embedded.statistics()["pid"] is None:
                await trio.sleep(0.1)
            again = await scrape(server)
            assert value(again, "duck_embedded_database_restarts_total") == 1
            assert value(again, "duck_embedded_database_up") == 1
        finally:
            server.request_shutdown()


def test_log_format_flag_reaches_the_lines(tmp_path: Path, mongo_uri: str,
                                          db_name: str) -> None:
    """``--log-format json`` on a command line gives JSON lines on stderr."""
    import subprocess
    import sys

    import pymongo

    cmd = [sys.executable, "-m", "duck.cli", "user", "list", "--log-format", "json",
           "--log-level", "INFO", "--data-dir", str(tmp_path),
           "--mongo-uri", mongo_uri, "--database", db_name]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    finally:
        with pymongo.MongoClient(mongo_uri) as client:
            client.drop_database(db_name)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.strip().splitlines()]
    assert any(line["logger"] == "duck.store.store" and line["level"] == "INFO"
               and line["message"].startswith("store ready") for line in lines), lines
