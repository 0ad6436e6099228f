"""The autologout timer (duck/imap/autologout.py) and shutdown ending waits for input."""

from __future__ import annotations

import ssl
import time
from typing import Any

import trio

from duck.imap.autologout import MAX_PERIOD, MIN_PERIOD, AutologoutTimer, period
from duck.imap.limits import ServerLimits

from .conftest import PASSWORD, USER
from .raw import RawClient


class _Waiting:
    def __init__(self, wait_until: float | None) -> None:
        self.wait_until = wait_until
        self.reasons: list[str] = []

    def interrupt_wait(self, reason: str) -> None:
        self.reasons.append(reason)


def test_the_timer_interrupts_only_the_waits_that_are_over() -> None:
    timer = AutologoutTimer(ServerLimits())
    over, later, busy = _Waiting(99.0), _Waiting(101.0), _Waiting(None)
    timer.sessions.update([over, later, busy])
    assert timer.expire(100.0) == 1
    assert (over.reasons, later.reasons, busy.reasons) == (["autologout"], [], [])


def test_a_session_that_fails_to_stop_waiting_does_not_stop_the_timer() -> None:
    class _Broken(_Waiting):
        def interrupt_wait(self, reason: str) -> None:
            raise RuntimeError("broken")

    timer = AutologoutTimer(ServerLimits())
    broken, fine = _Broken(1.0), _Waiting(1.0)
    timer.sessions.update([broken, fine])
    assert timer.expire(2.0) == 2
    assert fine.reasons == ["autologout"]


def test_the_period_follows_the_shortest_limit_within_bounds() -> None:
    limits = ServerLimits()
    assert period(limits) == MAX_PERIOD  # 30 min and 2 min: every 5 s
    limits.preauth_timeout = 1.0
    assert period(limits) == 0.1
    limits.autologout = 0.01
    assert period(limits) == MIN_PERIOD


async def _set_limits(server: Any, seconds: float) -> None:
    limits = server._imap_context.limits
    limits.autologout = limits.preauth_timeout = seconds


async def test_a_busy_session_outlives_the_limit(imap_server: Any) -> None:
    """The limit is on each wait for a command, not on the session: a client
    sending a command every 0.2 s is served for 2.5 times the 1 s limit (a margin
    for a loaded machine: each wait is ~0.2 s)."""
    with trio.fail_after(20):
        await _set_limits(imap_server, 1.0)
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < 2.5:
            n += 1
            lines = await c.command(b"n%d" % n, b"NOOP")
            assert lines[-1].startswith(b"n%d OK" % n), lines
            await trio.sleep(0.2)
        assert (await c.line()).startswith(b"* BYE autologout")
        assert await c.eof()


async def test_autologout_over_tls(imap_server: Any) -> None:
    """A TLS session reads in its pump task, not in its own: its wait ends too."""
    with trio.fail_after(20):
        await _set_limits(imap_server, 0.5)
        context = ssl.create_default_context(
            cafile=str(imap_server.config.data_dir / "tls" / "cert.pem"))
        tcp = await trio.open_tcp_stream("127.0.0.1", imap_server.ports["imaps"])
        tls = trio.SSLStream(tcp, context, server_hostname=imap_server.config.hostname)
        c = RawClient(tls)
        assert (await c.line()).startswith(b"* OK")
        await c.login(USER, PASSWORD)
        started = time.monotonic()
        assert (await c.line()).startswith(b"* BYE autologout")
        assert time.monotonic() - started >= 0.45
        assert await c.eof()


async def test_shutdown_ends_a_session_waiting_for_a_command(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        lines = await c.command(b"s", b"SELECT INBOX")
        assert lines[-1].startswith(b"s OK"), lines
        imap_server.shutdown.set()
        assert (await c.line()).startswith(b"* BYE [UNAVAILABLE] server shutting down")
        assert await c.eof()
