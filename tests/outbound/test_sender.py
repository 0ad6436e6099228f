"""The sender against a real SMTP sink on a real socket, with the real database:
sent once, TLS and AUTH, retries with backoff, giving up, several senders."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import trio

from duck.outbound.sender import Sender
from duck.outbound.smtp import RelaySettings
from duck.store import Store
from tests.lmtp.tls import make_contexts
from tests.outbound.smtp_sink import SmtpSink

MESSAGE = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hello\r\n"
           b"Message-ID: <m1@example.org>\r\n\r\nbody\r\n.leading dot\r\n")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sender(store: Store, port: int, **relay: Any) -> Sender:
    settings = RelaySettings(host=relay.pop("host", "127.0.0.1"), port=port,
                             tls=relay.pop("tls", "none"), timeout=5, final_timeout=5,
                             **relay)
    return Sender(store, settings, retry_base=0.2, retry_cap=0.5, poll_interval=0.5)


async def test_enqueued_message_arrives_once(store: Store, nursery: trio.Nursery) -> None:
    sink = SmtpSink()
    port = await nursery.start(sink.serve)
    sender = _sender(store, port)
    await nursery.start(sender.run)
    qid = await store.outbound.enqueue("a@example.org", ["b@example.net", "c@example.net"],
                                       MESSAGE, kind="redirect")
    (got,) = await sink.wait_for(1)
    assert got.sender == "a@example.org"
    assert got.recipients == ("b@example.net", "c@example.net")
    assert got.data == MESSAGE  # byte-exact, the leading dot unstuffed again
    with trio.fail_after(5):
        while (await store.outbound.get(qid)).status != "sent":
            await trio.sleep(0.05)
    await trio.sleep(1.2)  # two polls later: nothing sent again
    assert len(sink.received) == 1
    assert sender.statistics()["sent"] == 1


async def test_null_sender_starttls_and_auth(store: Store, nursery: trio.Nursery,
                                            tmp_path: Path) -> None:
    server_tls, _ = make_contexts(tmp_path, hostname="localhost")
    sink = SmtpSink(tls=server_tls, auth=("relayuser", "s3cret"))
    port = await nursery.start(sink.serve)
    sender = _sender(store, port, host="localhost", tls="starttls", user="relayuser",
                     password="s3cret", ca_file=tmp_path / "cert.pem")
    await nursery.start(sender.run)
    await store.outbound.enqueue("", ["b@example.net"], MESSAGE, kind="vacation")
    (got,) = await sink.wait_for(1)
    assert got.sender == "" and got.tls and got.user == "relayuser"


async def test_implicit_tls(store: Store, nursery: trio.Nursery, tmp_path: Path) -> None:
    server_tls, _ = make_contexts(tmp_path, hostname="localhost")
    sink = SmtpSink(tls=server_tls, implicit=True)
    port = await nursery.start(sink.serve)
    await nursery.start(_sender(store, port, host="localhost", tls="tls",
                                ca_file=tmp_path / "cert.pem").run)
    await store.outbound.enqueue("a@example.org", ["b@example.net"], MESSAGE, kind="redirect")
    (got,) = await sink.wait_for(1)
    assert got.tls


async def test_no_plain_text_when_starttls_is_required(store: Store,
                                                       nursery: trio.Nursery) -> None:
    sink = SmtpSink()  # offers no STARTTLS
    port = await nursery.start(sink.serve)
    await nursery.start(_sender(store, port, tls="starttls").run)
    qid = await store.outbound.enqueue("a@example.org", ["b@example.net"], MESSAGE,
                                       kind="redirect")
    with trio.fail_after(10):
        while (got := await store.outbound.get(qid)).attempts < 2:
            await trio.sleep(0.05)
    assert sink.received == [] and got.status == "queued"
    assert "STARTTLS" in (got.error or "")


async def test_relay_down_then_back_is_retried_with_backoff(store: Store,
                                                            nursery: trio.Nursery) -> None:
    port = _free_port()
    sender = _sender(store, port)
    await nursery.start(sender.run)
    qid = await store.outbound.enqueue("a@example.org", ["b@example.net"], MESSAGE,
                                       kind="redirect")
    with trio.fail_after(10):
        while sender.statistics()["deferred"] < 3:  # three attempts recorded
            await trio.sleep(0.05)
    status = await store.outbound.get(qid)
    assert status.status == "queued" and "Connection" in (status.error or "")
    # Backoff: the next attempt is not due at once.
    assert status.next_at > status.created
    sink = SmtpSink()
    await nursery.start(sink.serve, port)
    (got,) = await sink.wait_for(1)
    assert got.data == MESSAGE
    with trio.fail_after(5):
        while (await store.outbound.get(qid)).status != "sent":
            await trio.sleep(0.05)


async def test_gives_up_after_max_age(store: Store, nursery: trio.Nursery) -> None:
    sender = _sender(store, _free_port())
    sender.max_age = 1.0
    await nursery.start(sender.run)
    qid = await store.outbound.enqueue("a@example.org", ["b@example.net"], MESSAGE,
                                       kind="redirect")
    with trio.fail_after(10):
        while (status := await store.outbound.get(qid)).status == "queued":
            await trio.sleep(0.1)
    assert status.status == "failed"
    assert status.refused and "gave up" in status.refused[0][1]
    # The sender counts after the database has the outcome: wait for its count.
    with trio.fail_after(5):
        while sender.statistics()["failed"] == 0:
            await trio.sleep(0.05)
    assert sender.statistics()["failed"] == 1


async def test_per_recipient_replies(store: Store, nursery: trio.Nursery) -> None:
    sink = SmtpSink(rcpt_replies={"gone@example.net": "550 5.1.1 no such user",
                                  "busy@example.net": "451 4.2.1 try later"})
    port = await nursery.start(sink.serve)
    await nursery.start(_sender(store, port).run)
    qid = await store.outbound.enqueue(
        "a@example.org", ["ok@example.net", "gone@example.net", "busy@example.net"],
        MESSAGE, kind="redirect")
    (first,) = await sink.wait_for(1)
    assert first.recipients == ("ok@example.net",)
    sink.rcpt_replies.clear()  # the busy one takes it on the retry
    second = (await sink.wait_for(2))[1]
    assert second.recipients == ("busy@example.net",)
    with trio.fail_after(5):
        while (status := await store.outbound.get(qid)).status != "sent":
            await trio.sleep(0.05)
    assert set(status.sent) == {"ok@example.net", "busy@example.net"}
    assert status.refused == (("gone@example.net", "550 5.1.1 no such user"),)


async def test_data_refused_is_failed_at_once(store: Store, nursery: trio.Nursery) -> None:
    sink = SmtpSink(data_reply="554 5.7.1 rejected as spam")
    port = await nursery.start(sink.serve)
    await nursery.start(_sender(store, port).run)
    qid = await store.outbound.enqueue("a@example.org", ["b@example.net"], MESSAGE,
                                       kind="redirect")
    with trio.fail_after(10):
        while (status := await store.outbound.get(qid)).status == "queued":
            await trio.sleep(0.05)
    assert status.status == "failed" and status.attempts == 1
    assert "554" in status.refused[0][1]


async def test_two_senders_on_one_database_send_each_message_once(
        store: Store, mongo_uri: str, nursery: trio.Nursery) -> None:
    other = await Store.open(mongo_uri, store.database.name)
    try:
        sink = SmtpSink(data_delay=0.05)
        port = await nursery.start(sink.serve)
        senders = [_sender(store, port), _sender(other, port)]
        async with trio.open_nursery() as inner:
            for sender in senders:
                await inner.start(sender.run)
            for i in range(8):
                # Enqueued through both stores: each wakes its own sender.
                await (store if i % 2 else other).outbound.enqueue(
                    "a@example.org", ["b@example.net"], MESSAGE + f"{i}\r\n".encode(),
                    kind="redirect")
            await sink.wait_for(8)
            await trio.sleep(1.2)  # any duplicate would have come by now
            inner.cancel_scope.cancel()
        bodies = sorted(r.data for r in sink.received)
        assert len(bodies) == 8 and len(set(bodies)) == 8
        assert sum(s.statistics()["sent"] for s in senders) == 8
    finally:
        await other.aclose()


async def test_eight_bit_body_and_utf8_addresses(store: Store, nursery: trio.Nursery) -> None:
    sink = SmtpSink()
    port = await nursery.start(sink.serve)
    await nursery.start(_sender(store, port).run)
    body = "Subject: café\r\n\r\nnaïve\r\n".encode()
    await store.outbound.enqueue("jörg@example.org", ["zoë@example.net"], body,
                                 kind="redirect")
    (got,) = await sink.wait_for(1)
    assert got.sender == "jörg@example.org" and got.recipients == ("zoë@example.net",)
    assert got.data == body
    assert {"BODY=8BITMIME", "SMTPUTF8"} <= set(got.options)
