"""A small raw-socket LMTP client for tests: reads every per-recipient reply.

``smtplib.LMTP.sendmail`` reads a single reply after DATA; LMTP sends one per
accepted recipient (RFC 2033 section 4.2), so tests use this client to see them all.
"""

from __future__ import annotations

import re

import attrs
import trio

_LINE = re.compile(rb"(\d{3})([ -])(.*)\Z", re.S)


@attrs.frozen
class ClientReply:
    """A reply as received: code, enhanced status (or None), text lines."""

    code: int
    status: str | None
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def dot_stuff(message: bytes) -> bytes:
    """Dot-stuff ``message`` (CRLF lines) and append the terminator (RFC 5321 section 4.5.2)."""
    if message and not message.endswith(b"\r\n"):
        message += b"\r\n"
    lines = message.split(b"\r\n")
    stuffed = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in lines)
    return stuffed + b".\r\n"


class LmtpClient:
    """An async LMTP client on a trio stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._buf = bytearray()

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> LmtpClient:
        return cls(await trio.open_tcp_stream(host, port))

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        await self.stream.send_all(data)

    async def read_line(self) -> bytes:
        while True:
            i = self._buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[:i + 2]
                return line
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError(f"connection closed; pending {bytes(self._buf)!r}")
            self._buf += data

    async def read_reply(self) -> ClientReply:
        """Read one (possibly multi-line) reply."""
        code = None
        lines: list[str] = []
        status: str | None = None
        while True:
            raw = await self.read_line()
            m = _LINE.match(raw)
            assert m is not None, f"bad reply line {raw!r}"
            this_code = int(m.group(1))
            assert code is None or code == this_code, raw
            code = this_code
            text = m.group(3).decode()
            st = re.match(r"([245]\.\d{1,3}\.\d{1,3}) (.*)\Z", text)
            if st:
                status = st.group(1)
                text = st.group(2)
            lines.append(text)
            if m.group(2) == b" ":
                return ClientReply(code, status, tuple(lines))

    async def read_replies(self, n: int) -> list[ClientReply]:
        return [await self.read_reply() for _ in range(n)]

    async def command(self, line: str | bytes) -> ClientReply:
        if isinstance(line, str):
            line = line.encode()
        await self.send(line + b"\r\n")
        return await self.read_reply()

    async def at_eof(self) -> bool:
        """True if the server closed the connection (after any buffered replies)."""
        if self._buf:
            return False
        return await self.stream.receive_some(1) == b""

    async def deliver(self, mail_from: str, recipients: list[str], message: bytes,
                      *, pipelined: bool = True) -> tuple[list[ClientReply], list[ClientReply]]:
        """LHLO-less transaction: MAIL, RCPTs, DATA; returns (RCPT replies, per-recipient
        data replies). Reads one reply after DATA per accepted recipient."""
        cmds = [f"MAIL FROM:<{mail_from}>"] + [f"RCPT TO:<{r}>" for r in recipients] + ["DATA"]
        if pipelined:
            await self.send("".join(c + "\r\n" for c in cmds))
            replies = await self.read_replies(len(cmds))
        else:
            replies = [await self.command(c) for c in cmds]
        mail, rcpts, data = replies[0], replies[1:-1], replies[-1]
        assert mail.code == 250, mail
        if data.code != 354:
            return rcpts, [data]
        await self.send(dot_stuff(message))
        accepted = sum(1 for r in rcpts if r.code == 250)
        return rcpts, await self.read_replies(accepted)
