"""Helpers to run real ``duck serve`` processes on a shared database, and to speak
LMTP and IMAP to them over loopback."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

_READY = re.compile(rb"duck ready: (.*)")


@attrs.define
class DuckProcess:
    """A running ``duck serve`` subprocess and its ports."""

    process: trio.Process
    ports: dict[str, int]
    log: list[bytes] = attrs.Factory(list)


async def _drain(proc: trio.Process, sink: list[bytes], ready: trio.Event,
                 ports: dict[str, int]) -> None:
    assert proc.stderr is not None
    buffer = b""
    async for chunk in proc.stderr:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            sink.append(line)
            del sink[:-200]  # a bounded tail for failure messages
            match = _READY.search(line)
            if match:
                for item in match.group(1).split(b", "):
                    name, _, value = item.partition(b"=")
                    ports[name.decode()] = int(value)
                ready.set()


@asynccontextmanager
async def duck_process(mongo_uri: str, database: str, data_dir: Path,
                       **env: str) -> AsyncIterator[DuckProcess]:
    """``duck serve`` on free ports; terminated (SIGTERM, then kill) on exit."""
    cmd = [sys.executable, "-m", "duck.cli", "serve", "--data-dir", str(data_dir),
           "--mongo-uri", mongo_uri, "--database", database, "--imap-port", "0",
           "--imaps-port", "0", "--lmtp-port", "0", "--api-port", "0",
           "--pop3-port", "0", "--pop3s-port", "0", "--managesieve-port", "0"]
    environ = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    proc = await trio.lowlevel.open_process(cmd, stderr=-1, env=environ)
    ports: dict[str, int] = {}
    log: list[bytes] = []
    ready = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, proc, log, ready, ports)
            with trio.move_on_after(60):
                await ready.wait()
            if not ready.is_set():
                raise AssertionError("duck serve did not start:\n"
                                     + b"\n".join(log[-40:]).decode(errors="replace"))
            yield DuckProcess(proc, ports, log)
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            proc.terminate()
            with trio.move_on_after(15):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


class LineClient:
    """A line-oriented text protocol client (IMAP, LMTP) on a trio stream."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buffer = b""

    @classmethod
    async def connect(cls, port: int) -> LineClient:
        """Connect to 127.0.0.1:port."""
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def line(self) -> bytes:
        """The next CRLF-terminated line (without it)."""
        while b"\r\n" not in self._buffer:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError("connection closed")
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    async def send(self, data: bytes) -> None:
        """Send bytes as they are."""
        await self.stream.send_all(data)

    async def until(self, prefix: bytes) -> list[bytes]:
        """Lines up to and including the first that starts with ``prefix``."""
        lines = []
        while True:
            line = await self.line()
            lines.append(line)
            if line.startswith(prefix):
                return lines

    async def command(self, tag: str, text: str) -> list[bytes]:
        """Send an IMAP command; its lines up to the tagged reply (asserted OK)."""
        await self.send(f"{tag} {text}\r\n".encode())
        lines = await self.until(tag.encode() + b" ")
        assert lines[-1].startswith(f"{tag} OK".encode()), lines
        return lines


async def lmtp_deliver(port: int, rcpt: str, data: bytes) -> float:
    """Deliver one message over LMTP; asserts the per-recipient 250 and returns the
    (trio) time it arrived."""
    c = await LineClient.connect(port)
    assert (await c.line()).startswith(b"220")
    await c.send(b"LHLO test\r\n")
    await c.until(b"250 ")
    await c.send(b"MAIL FROM:<sender@example.org>\r\n")
    assert (await c.line()).startswith(b"250")
    await c.send(f"RCPT TO:<{rcpt}>\r\n".encode())
    assert (await c.line()).startswith(b"250")
    await c.send(b"DATA\r\n")
    assert (await c.line()).startswith(b"354")
    body = data.replace(b"\r\n.", b"\r\n..")
    await c.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    reply = await c.line()
    at = trio.current_time()
    assert reply.startswith(b"250"), reply
    await c.send(b"QUIT\r\n")
    await c.stream.aclose()
    return at


def processes() -> list[tuple[int, int, str, bytes]]:
    """(pid, parent pid, state letter, command line) of every live process here."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        found.append((int(entry.name), int(ppid), state, cmdline))
    return found


def processes_using(path: Path) -> list[int]:
    """Pids of the processes whose command line names ``path``."""
    return [pid for pid, _, _, cmdline in processes() if str(path).encode() in cmdline]
