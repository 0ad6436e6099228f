"""The trio LMTP server over real loopback sockets, with smtplib.LMTP and a raw client."""

from __future__ import annotations

import ipaddress
import smtplib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from duck.lmtp.backend import trace_headers
from duck.lmtp.replies import Failure
from duck.lmtp.server import LmtpServer, LmtpServerConfig, serve_lmtp

from .client import LmtpClient, dot_stuff
from .memory_backend import MemoryBackend
from .tls import make_contexts

HOST = "lmtp.test"
MESSAGE = (
    b"From: a@example.org\r\nTo: b@example.com\r\nSubject: test\r\n\r\n"
    b".a line with a leading dot\r\n..two dots\r\n.\r\n8-bit \xc3\xa9\xff\r\n"
    b"bare\nLF and bare\rCR\r\n" + b"long " * 400 + b"\r\nend\r\n"
)


def make_backend() -> MemoryBackend:
    return MemoryBackend(users={
        "b@example.com": "user-b",
        "c@example.com": "user-c",
        "d@example.com": "user-d",
        "slow@example.com": "user-slow",
        "full@example.com": "user-full",
    })


@asynccontextmanager
async def running(backend: MemoryBackend, **settings: Any) -> AsyncIterator[LmtpServer]:
    config = LmtpServerConfig(hostname=HOST, **settings)
    async with trio.open_nursery() as nursery:
        server: LmtpServer = await nursery.start(
            partial(serve_lmtp, backend, host="127.0.0.1", port=0, config=config))
        yield server
        nursery.cancel_scope.cancel()


async def connect(server: LmtpServer, *, lhlo: bool = True) -> LmtpClient:
    client = await LmtpClient.connect(server.ports()[0])
    greeting = await client.read_reply()
    assert (greeting.code, greeting.lines) == (220, (f"{HOST} LMTP duck ready",))
    if lhlo:
        assert (await client.command("LHLO mta.example")).code == 250
    return client


async def test_greeting_and_lhlo() -> None:
    with trio.fail_after(10):
        async with running(make_backend(), max_message_size=12345) as server:
            client = await connect(server, lhlo=False)
            r = await client.command("LHLO mta.example")
            assert r.code == 250 and r.status is None  # RFC 2034: no code on LHLO
            assert r.lines[0] == HOST
            for kw in ("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SIZE 12345",
                       "CHUNKING", "SMTPUTF8"):
                assert kw in r.lines
            assert "STARTTLS" not in r.lines
            assert (await client.command("QUIT")).code == 221
            assert await client.at_eof()


async def test_smtplib_single_recipient_byte_exact() -> None:
    backend = make_backend()
    with trio.fail_after(20):
        async with running(backend) as server:
            port = server.ports()[0]

            def send() -> dict[str, Any]:
                with smtplib.LMTP("127.0.0.1", port, timeout=10) as lmtp:
                    lmtp.ehlo_or_helo_if_needed()
                    return lmtp.sendmail("a@example.org", ["B+news@Example.COM"], MESSAGE)

            refused = await trio.to_thread.run_sync(send)
    assert refused == {}
    [copy] = backend.stored
    assert copy.user == "user-b"
    assert copy.detail == "news"
    # smtplib sends bytes as they are (bare LF and CR included) after dot-stuffing;
    # the stored copy is exactly that message behind the trace headers.
    assert copy.data == trace_headers("a@example.org", "B+news@Example.COM") + MESSAGE
    assert copy.data.startswith(
        b"Return-Path: <a@example.org>\r\nDelivered-To: B+news@Example.COM\r\nFrom:")
    assert backend.in_flight == 0


async def test_smtplib_multiple_recipients_read_all_replies() -> None:
    backend = make_backend()
    backend.refuse_at_finish["full@example.com"] = Failure.OVER_QUOTA
    with trio.fail_after(20):
        async with running(backend) as server:
            port = server.ports()[0]

            def send() -> list[tuple[int, bytes]]:
                with smtplib.LMTP("127.0.0.1", port, timeout=10) as lmtp:
                    lmtp.ehlo()
                    assert lmtp.mail("a@example.org")[0] == 250
                    assert lmtp.rcpt("b@example.com")[0] == 250
                    assert lmtp.rcpt("nobody@example.com")[0] == 550
                    assert lmtp.rcpt("full@example.com")[0] == 250
                    first = lmtp.data(MESSAGE)  # smtplib reads one reply here ...
                    return [first, lmtp.getreply()]  # ... and we read the second

            replies = await trio.to_thread.run_sync(send)
    assert [code for code, _ in replies] == [250, 552]
    assert replies[1][1].startswith(b"5.2.2")
    assert [c.user for c in backend.stored] == ["user-b"]


async def test_raw_client_mixed_outcomes_in_rcpt_order() -> None:
    backend = make_backend()
    backend.refuse_at_rcpt["d@example.com"] = Failure.OVER_QUOTA_TEMPORARY
    backend.refuse_at_finish["c@example.com"] = Failure.UNAVAILABLE
    backend.refuse_at_finish["full@example.com"] = Failure.OVER_QUOTA
    with trio.fail_after(10):
        async with running(backend) as server:
            client = await connect(server)
            rcpts, data = await client.deliver(
                "", ["b@example.com", "x@example.com", "c@example.com", "d@example.com",
                     "full@example.com", "B@EXAMPLE.COM"], MESSAGE)
            assert [(r.code, r.status) for r in rcpts] == [
                (250, "2.1.5"), (550, "5.1.1"), (250, "2.1.5"), (452, "4.2.2"),
                (250, "2.1.5"), (250, "2.1.5")]
            assert [(r.code, r.status) for r in data] == [
                (250, "2.0.0"), (451, "4.3.0"), (552, "5.2.2"), (250, "2.0.0")]
            assert (await client.command("NOOP")).code == 250
    assert [(c.user, c.address) for c in backend.stored] == [
        ("user-b", "b@example.com"), ("user-b", "B@EXAMPLE.COM")]
    for copy in backend.stored:
        assert copy.data == trace_headers("", copy.address) + MESSAGE
    [envelope] = backend.envelopes
    assert envelope.reverse_path == ""
    assert [r.lookup for r in envelope.recipients] == [
        "b@example.com", "c@example.com", "full@example.com", "b@example.com"]


async def test_large_message_is_streamed_in_bounded_chunks() -> None:
    backend = make_backend()
    big = (b"0123456789" * 10 + b"\r\n") * 50_000  # ~5 MB
    with trio.fail_after(30):
        async with running(backend) as server:
            client = await connect(server)
            _, data = await client.deliver("a@x.org", ["b@example.com"], big)
            assert [r.code for r in data] == [250]
    assert backend.stored[0].data.endswith(big)
    assert len(backend.chunks) > 10
    # One read's worth at most, plus the two octets the unstuffer may hold back.
    assert max(backend.chunks) <= 64 * 1024 + 2


async def test_bdat_with_per_recipient_replies() -> None:
    backend = make_backend()
    backend.refuse_at_finish["c@example.com"] = Failure.OVER_QUOTA_TEMPORARY
    binary = bytes(range(256)) * 10 + b"\r\n.\r\n"
    with trio.fail_after(10):
        async with running(backend) as server:
            client = await connect(server)
            await client.send(
                "MAIL FROM:<a@x.org> BODY=BINARYMIME\r\nRCPT TO:<b@example.com>\r\n"
                "RCPT TO:<c@example.com>\r\n")
            assert [r.code for r in await client.read_replies(3)] == [250, 250, 250]
            await client.send(b"BDAT 1000\r\n" + binary[:1000])
            await client.send(b"BDAT %d LAST\r\n" % (len(binary) - 1000) + binary[1000:])
            chunk, *last = await client.read_replies(3)
            assert chunk.code == 250
            assert [(r.code, r.status) for r in last] == [(250, "2.0.0"), (452, "4.2.2")]
    assert [c.user for c in backend.stored] == ["user-b"]
    assert backend.stored[0].data == trace_headers("a@x.org", "b@example.com") + binary


async def test_fully_pipelined_session_in_one_write() -> None:
    backend = make_backend()
    with trio.fail_after(10):
        async with running(backend) as server:
            client = await connect(server, lhlo=False)
            await client.send(
                b"LHLO mta\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@example.com>\r\n"
                b"RCPT TO:<c@example.com>\r\nDATA\r\n" + dot_stuff(MESSAGE)
                + b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@example.com>\r\nBDAT 3 LAST\r\nabc"
                + b"QUIT\r\n")
            replies = await client.read_replies(11)
            assert [r.code for r in replies] == [
                250, 250, 250, 250, 354, 250, 250, 250, 250, 250, 221]
            assert await client.at_eof()
    assert [c.data[-3:] for c in backend.stored] == [b"d\r\n", b"d\r\n", b"abc"]


async def test_slow_recipient_keeps_order_and_does_not_stall_other_connections() -> None:
    backend = make_backend()
    backend.slow["slow@example.com"] = 1.0
    with trio.fail_after(15):
        async with running(backend) as server:
            slow_client = await connect(server)
            fast_client = await connect(server)
            finished: list[str] = []

            async def slow() -> None:
                _, data = await slow_client.deliver(
                    "a@x.org", ["slow@example.com", "b@example.com"], b"slow\r\n")
                assert [r.code for r in data] == [250, 250]
                finished.append("slow")

            async def fast() -> None:
                await trio.sleep(0.2)  # start after the slow delivery is in finish()
                _, data = await fast_client.deliver("a@x.org", ["c@example.com"], b"fast\r\n")
                assert [r.code for r in data] == [250]
                finished.append("fast")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow)
                nursery.start_soon(fast)
    assert finished == ["fast", "slow"]


async def test_declared_and_actual_size_limits() -> None:
    backend = make_backend()
    with trio.fail_after(10):
        async with running(backend, max_message_size=1000) as server:
            client = await connect(server)
            r = await client.command("MAIL FROM:<a@x.org> SIZE=1001")
            assert (r.code, r.status) == (552, "5.3.4")
            _, data = await client.deliver(
                "a@x.org", ["b@example.com", "c@example.com"], b"x" * 2000 + b"\r\n")
            assert [(r.code, r.status) for r in data] == [(552, "5.3.4")] * 2
            # The server keeps serving on the same connection.
            _, data = await client.deliver("a@x.org", ["b@example.com"], b"small\r\n")
            assert [r.code for r in data] == [250]
    assert len(backend.stored) == 1
    assert backend.aborted == 1 and backend.in_flight == 0


async def test_client_vanishing_mid_data_stores_nothing() -> None:
    backend = make_backend()
    with trio.fail_after(10):
        async with running(backend) as server:
            client = await connect(server)
            await client.send("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
            assert [r.code for r in await client.read_replies(3)] == [250, 250, 354]
            await client.send(b"Subject: half\r\n\r\n" + b"x" * 100_000)
            await client.aclose()
            while backend.aborted == 0:
                await trio.sleep(0.01)
            # And the server still serves.
            other = await connect(server)
            _, data = await other.deliver("a@x.org", ["b@example.com"], b"ok\r\n")
            assert [r.code for r in data] == [250]
    assert backend.in_flight == 0
    assert len(backend.stored) == 1 and backend.stored[0].data.endswith(b"ok\r\n")


async def test_backend_unavailable() -> None:
    backend = make_backend()
    with trio.fail_after(10):
        async with running(backend) as server:
            client = await connect(server)
            assert (await client.command("MAIL FROM:<a@x.org>")).code == 250
            backend.unavailable = True
            r = await client.command("RCPT TO:<b@example.com>")
            assert (r.code, r.status) == (451, "4.3.0")
            backend.unavailable = False
            assert (await client.command("RCPT TO:<b@example.com>")).code == 250
            backend.unavailable = True
            r = await client.command("DATA")
            assert (r.code, r.status) == (451, "4.3.0")
            assert (await client.command("RSET")).code == 250


async def test_write_failure_fails_every_recipient_and_leaks_nothing() -> None:
    backend = make_backend()
    backend.fail_write_after = 10
    with trio.fail_after(10):
        async with running(backend) as server:
            client = await connect(server)
            _, data = await client.deliver(
                "a@x.org", ["b@example.com", "c@example.com"], b"y" * 5000 + b"\r\n")
            assert [(r.code, r.status) for r in data] == [(451, "4.3.0")] * 2
    assert backend.stored == []
    assert backend.in_flight == 0


async def test_disallowed_network_gets_421() -> None:
    backend = make_backend()
    with trio.fail_after(10):
        async with running(backend,
                           allowed_networks=(ipaddress.ip_network("10.0.0.0/8"),)) as server:
            client = await LmtpClient.connect(server.ports()[0])
            r = await client.read_reply()
            assert (r.code, r.status) == (421, "4.7.0")
            assert await client.at_eof()
            assert server.statistics().connections_refused == 1


async def test_idle_timeout() -> None:
    with trio.fail_after(10):
        async with running(make_backend(), idle_timeout=0.3) as server:
            client = await connect(server)
            r = await client.read_reply()
            assert (r.code, r.status) == (421, "4.4.2")
            assert await client.at_eof()


async def test_max_connections() -> None:
    with trio.fail_after(10):
        async with running(make_backend(), max_connections=1) as server:
            first = await connect(server)
            second = await LmtpClient.connect(server.ports()[0])
            r = await second.read_reply()
            assert (r.code, r.status) == (421, "4.3.2")
            assert (await first.command("NOOP")).code == 250


async def test_starttls_with_smtplib(tmp_path: Path) -> None:
    server_ctx, client_ctx = make_contexts(tmp_path, HOST)
    backend = make_backend()
    with trio.fail_after(20):
        async with running(backend, tls_context=server_ctx) as server:
            port = server.ports()[0]

            def send() -> tuple[bool, bool, dict[str, Any]]:
                with smtplib.LMTP("127.0.0.1", port, timeout=10) as lmtp:
                    lmtp.ehlo()
                    offered = lmtp.has_extn("starttls")
                    # smtplib checks the certificate against the name it connected to.
                    lmtp._host = HOST  # type: ignore[attr-defined]
                    code, _ = lmtp.starttls(context=client_ctx)
                    assert code == 220
                    lmtp.ehlo()
                    again = lmtp.has_extn("starttls")
                    return offered, again, lmtp.sendmail("a@x.org", ["b@example.com"], b"tls\r\n")

            offered, again, refused = await trio.to_thread.run_sync(send)
    assert offered and not again
    assert refused == {}
    assert backend.stored[0].data.endswith(b"\r\n\r\ntls\r\n") or \
        backend.stored[0].data.endswith(b"tls\r\n")


async def test_starttls_drops_pipelined_plaintext(tmp_path: Path) -> None:
    server_ctx, client_ctx = make_contexts(tmp_path, HOST)
    with trio.fail_after(10):
        async with running(make_backend(), tls_context=server_ctx) as server:
            client = await connect(server)
            await client.send("STARTTLS\r\nNOOP\r\n")
            r = await client.read_reply()
            assert (r.code, r.status) == (220, "2.0.0")
            tls = trio.SSLStream(client.stream, client_ctx, server_hostname=HOST)
            await tls.do_handshake()
            secure = LmtpClient(tls)
            # The plaintext NOOP was dropped: the first reply over TLS answers MAIL.
            r = await secure.command("MAIL FROM:<a@x.org>")
            assert (r.code, r.status) == (503, "5.5.1")
            assert (await secure.command("LHLO mta")).code == 250


async def test_graceful_shutdown_lets_in_flight_delivery_finish() -> None:
    backend = make_backend()
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            config = LmtpServerConfig(hostname=HOST, grace_period=10)
            server: LmtpServer = await nursery.start(
                partial(serve_lmtp, backend, host="127.0.0.1", port=0, config=config))
            port = server.ports()[0]
            busy = await connect(server)
            idle = await connect(server)
            await busy.send("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
            assert [r.code for r in await busy.read_replies(3)] == [250, 250, 354]
            await busy.send(b"first half\r\n")
            server.shutdown()
            r = await idle.read_reply()
            assert (r.code, r.status) == (421, "4.3.2")
            assert await idle.at_eof()
            with pytest.raises(OSError):
                await trio.open_tcp_stream("127.0.0.1", port)
            await busy.send(b"second half\r\n.\r\n")
            r = await busy.read_reply()
            assert (r.code, r.status) == (250, "2.0.0")
            r = await busy.read_reply()  # then the server says goodbye
            assert (r.code, r.status) == (421, "4.3.2")
        # serve_lmtp returned by itself once the connections were gone
    assert backend.stored[0].data.endswith(b"first half\r\nsecond half\r\n")


async def test_grace_period_expiry_aborts_in_flight_delivery() -> None:
    backend = make_backend()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            config = LmtpServerConfig(hostname=HOST, grace_period=0.3)
            server: LmtpServer = await nursery.start(
                partial(serve_lmtp, backend, host="127.0.0.1", port=0, config=config))
            busy = await connect(server)
            await busy.send("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
            assert [r.code for r in await busy.read_replies(3)] == [250, 250, 354]
            await busy.send(b"never finished\r\n")
            server.shutdown()
    assert backend.stored == []
    assert backend.aborted == 1 and backend.in_flight == 0


async def test_rset_and_lhlo_abort_an_open_bdat_delivery() -> None:
    backend = make_backend()
    with trio.fail_after(10):
        async with running(backend) as server:
            client = await connect(server)
            for reset in ("RSET", "LHLO again"):
                await client.send("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@example.com>\r\n")
                assert [r.code for r in await client.read_replies(2)] == [250, 250]
                await client.send(b"BDAT 5\r\nhello")
                assert (await client.read_reply()).code == 250
                assert backend.in_flight == 1
                assert (await client.command(reset)).code == 250
                assert backend.in_flight == 0
                await client.send(b"BDAT 1 LAST\r\nx")
                r = await client.read_reply()
                assert (r.code, r.status) == (503, "5.5.1")
    assert backend.stored == [] and backend.aborted == 2


async def test_too_many_errors_closes_the_connection() -> None:
    with trio.fail_after(10):
        async with running(make_backend(), max_errors=3) as server:
            client = await connect(server)
            assert (await client.command("BOGUS")).code == 500
            assert (await client.command("NOOP")).code == 250  # resets the count
            replies = [await client.command("BOGUS") for _ in range(3)]
            assert [r.code for r in replies] == [500, 500, 500]
            r = await client.read_reply()
            assert (r.code, r.status) == (421, "4.7.0")
            assert await client.at_eof()


async def test_malformed_bdat_closes_the_connection() -> None:
    backend = make_backend()
    with trio.fail_after(10):
        async with running(backend) as server:
            client = await connect(server)
            await client.send("MAIL FROM:<a@x.org>\r\nRCPT TO:<b@example.com>\r\n")
            assert [r.code for r in await client.read_replies(2)] == [250, 250]
            r = await client.command("BDAT many")
            assert (r.code, r.status) == (501, "5.5.4")
            assert await client.at_eof()
    assert backend.stored == []


async def test_statistics_count_connections_and_messages() -> None:
    backend = make_backend()
    backend.refuse_at_finish["c@example.com"] = Failure.OVER_QUOTA
    with trio.fail_after(10):
        async with running(backend) as server:
            client = await connect(server)
            await client.deliver("a@x.org", ["b@example.com"], b"1\r\n")
            await client.deliver("a@x.org", ["c@example.com"], b"2\r\n")
            stats = server.statistics()
            assert (stats.connections_open, stats.connections_total) == (1, 1)
            assert (stats.messages_delivered, stats.messages_failed) == (1, 1)
            assert not stats.shutting_down
