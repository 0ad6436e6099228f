"""A small SMTP server for tests: records what it receives, on a real socket.

Speaks enough of RFC 5321 for a relay client: EHLO/HELO, STARTTLS (RFC 3207) or
implicit TLS, AUTH PLAIN and LOGIN (RFC 4954), MAIL, RCPT, DATA (dot-unstuffed),
RSET, NOOP, QUIT. Replies can be scripted per recipient, for MAIL and for the
final dot, to play a relay that defers or refuses, or one that holds the final dot
unanswered.
"""

from __future__ import annotations

import base64
import ssl
from typing import Any

import attrs
import trio

MAX_LINE = 4096
MAX_DATA = 32 * 1024 * 1024


@attrs.frozen
class Received:
    """One message the sink accepted."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    tls: bool
    user: str | None
    #: The MAIL command's parameters (BODY=8BITMIME, SMTPUTF8, ...).
    options: tuple[str, ...] = ()


@attrs.define
class SmtpSink:
    """``port = await nursery.start(sink.serve)``; ``received`` fills as mail comes."""

    #: None (plain, no STARTTLS offered), or a server context used for STARTTLS
    #: (``implicit`` False) or implicit TLS.
    tls: ssl.SSLContext | None = None
    implicit: bool = False
    #: (user, password) that AUTH must give before MAIL; None: no AUTH needed.
    auth: tuple[str, str] | None = None
    #: Replies to RCPT for given recipients (e.g. "550 5.1.1 no such user").
    rcpt_replies: dict[str, str] = attrs.Factory(dict)
    #: Reply to the final dot instead of 250 (e.g. "451 4.3.0 try later").
    data_reply: str | None = None
    #: Seconds to wait before answering the final dot.
    data_delay: float = 0.0
    #: Hold every message at its final dot without answering, until the client goes
    #: away; a held message is not accepted (``held``, not ``received``): a relay
    #: that commits only what it acknowledged, with the client killed while waiting.
    hold: bool = False
    held: list[Received] = attrs.Factory(list)
    received: list[Received] = attrs.Factory(list)
    #: Connections seen (accepted ones and refused ones alike).
    connections: int = 0
    arrived: trio.Event = attrs.Factory(trio.Event)

    async def serve(self, port: int = 0, *,
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._handle, listeners)

    async def wait_for(self, count: int, timeout: float = 20.0, *,
                       held: bool = False) -> list[Received]:
        """Wait until ``count`` messages have arrived (or, ``held``, are held at
        their final dot); TooSlowError otherwise."""
        seen = self.held if held else self.received
        with trio.fail_after(timeout):
            while len(seen) < count:
                await self.arrived.wait()
                self.arrived = trio.Event()
        return seen

    async def _handle(self, stream: Any) -> None:
        self.connections += 1
        try:
            if self.tls is not None and self.implicit:
                stream = trio.SSLStream(stream, self.tls, server_side=True)
                await stream.do_handshake()
            await _Session(self, stream, tls=self.implicit).run()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError,
                ssl.SSLError):
            pass
        finally:
            await trio.aclose_forcefully(stream)


class _Session:
    def __init__(self, sink: SmtpSink, stream: Any, *, tls: bool) -> None:
        self.sink = sink
        self.stream = stream
        self.tls = tls
        self.buf = b""
        self.user: str | None = None
        self.sender: str | None = None
        self.rcpts: list[str] = []
        self.options: tuple[str, ...] = ()

    async def send(self, line: str) -> None:
        await self.stream.send_all(line.encode() + b"\r\n")

    async def line(self) -> bytes | None:
        while b"\r\n" not in self.buf:
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self.buf += data
            if len(self.buf) > MAX_DATA:
                raise ConnectionError("too much")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _extensions(self) -> list[str]:
        ext = ["8BITMIME", "SMTPUTF8", f"SIZE {MAX_DATA}"]
        if self.sink.tls is not None and not self.tls:
            ext.append("STARTTLS")
        if self.sink.auth is not None and (self.tls or self.sink.tls is None):
            ext.append("AUTH PLAIN LOGIN")
        return ext

    async def run(self) -> None:
        await self.send("220 sink.test ESMTP")
        while (raw := await self.line()) is not None:
            if len(raw) > MAX_LINE:
                await self.send("500 line too long")
                continue
            text = raw.decode("utf-8", "replace")
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                ext = self._extensions()
                lines = ["sink.test", *ext]
                for i, item in enumerate(lines):
                    await self.send(f"250{'-' if i < len(lines) - 1 else ' '}{item}")
            elif verb == "HELO":
                await self.send("250 sink.test")
            elif verb == "STARTTLS" and self.sink.tls is not None and not self.tls:
                await self.send("220 go ahead")
                self.stream = trio.SSLStream(self.stream, self.sink.tls, server_side=True)
                await self.stream.do_handshake()
                self.tls, self.buf = True, b""
            elif verb == "AUTH" and self.sink.auth is not None:
                await self._auth(arg)
            elif verb == "MAIL":
                if self.sink.auth is not None and self.user is None:
                    await self.send("530 5.7.0 authentication required")
                    continue
                path, _, params = arg[5:].partition(">")
                self.sender = path.lstrip("<")
                self.options = tuple(params.split())
                self.rcpts = []
                await self.send("250 ok")
            elif verb == "RCPT":
                rcpt = arg[3:].split(">", 1)[0].lstrip("<")
                reply = self.sink.rcpt_replies.get(rcpt, "250 ok")
                if reply.startswith("250"):
                    self.rcpts.append(rcpt)
                await self.send(reply)
            elif verb == "DATA":
                if self.sender is None or not self.rcpts:
                    await self.send("503 no valid recipients")
                    continue
                await self.send("354 go on")
                await self._data()
            elif verb == "RSET":
                self.sender, self.rcpts = None, []
                await self.send("250 ok")
            elif verb == "NOOP":
                await self.send("250 ok")
            elif verb == "QUIT":
                await self.send("221 bye")
                return
            else:
                await self.send("502 not implemented")

    async def _auth(self, arg: str) -> None:
        mechanism, _, initial = arg.partition(" ")
        assert self.sink.auth is not None
        user, password = self.sink.auth
        if mechanism.upper() == "PLAIN":
            if not initial:
                await self.send("334 ")
                initial = ((await self.line()) or b"").decode()
            parts = base64.b64decode(initial).split(b"\0")
            ok = parts[1:] == [user.encode(), password.encode()]
        elif mechanism.upper() == "LOGIN":
            given = base64.b64decode(initial).decode() if initial else None
            if given is None:
                await self.send("334 " + base64.b64encode(b"Username:").decode())
                given = base64.b64decode((await self.line()) or b"").decode()
            await self.send("334 " + base64.b64encode(b"Password:").decode())
            secret = base64.b64decode((await self.line()) or b"").decode()
            ok = (given, secret) == (user, password)
        else:
            await self.send("504 unrecognized mechanism")
            return
        if ok:
            self.user = user
            await self.send("235 2.7.0 accepted")
        else:
            await self.send("535 5.7.8 bad credentials")

    async def _data(self) -> None:
        lines: list[bytes] = []
        while True:
            line = await self.line()
            if line is None:
                raise ConnectionError("closed in DATA")
            if line == b".":
                break
            lines.append(line[1:] if line.startswith(b".") else line)
        data = b"".join(line + b"\r\n" for line in lines)
        if self.sink.hold:
            assert self.sender is not None
            self.sink.held.append(
                Received(self.sender, tuple(self.rcpts), data, self.tls, self.user,
                         self.options))
            self.sink.arrived.set()
            while await self.stream.receive_some(65536):
                pass  # whatever the client says, it gets no answer
            raise ConnectionError("the client left a held message")
        if self.sink.data_delay:
            await trio.sleep(self.sink.data_delay)
        if self.sink.data_reply is not None:
            await self.send(self.sink.data_reply)
        else:
            assert self.sender is not None
            self.sink.received.append(
                Received(self.sender, tuple(self.rcpts), data, self.tls, self.user,
                         self.options))
            self.sink.arrived.set()
            await self.send("250 2.0.0 queued")
        self.sender, self.rcpts = None, []
