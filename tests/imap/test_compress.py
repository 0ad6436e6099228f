"""COMPRESS=DEFLATE (RFC 4978) over plain TCP and TLS, with a client that deflates
with zlib itself (imaplib and imapclient cannot compress)."""

from __future__ import annotations

import ssl
import zlib
from typing import Any

import trio
import trio.testing

from duck.imap.compress import MAX_INFLATE, DeflateStream

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient


class ClientDeflate(trio.abc.Stream):
    """The client's side of RFC 4978: raw DEFLATE with a sync flush per send."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.z_out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.z_in = zlib.decompressobj(-15)
        self.wire_in = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(self.deflate(bytes(data)))

    def deflate(self, data: bytes) -> bytes:
        return self.z_out.compress(data) + self.z_out.flush(zlib.Z_SYNC_FLUSH)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while True:
            data = await self.inner.receive_some(65536)
            if not data:
                return b""
            self.wire_in += len(data)
            out = self.z_in.decompress(data)
            if out:
                return out

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _compress(c: RawClient) -> ClientDeflate:
    lines = await c.command(b"z", b"COMPRESS DEFLATE")
    assert lines[-1].startswith(b"z OK"), lines
    z = ClientDeflate(c.stream)
    c.stream = z
    return z


async def _exercise(c: RawClient, z: ClientDeflate) -> None:
    """APPEND, SELECT, FETCH and a second COMPRESS, all compressed."""
    body = simple_message(1, "squeeze me") * 20
    await c.send(b"a APPEND INBOX {%d}\r\n" % len(body))
    assert (await c.line()).startswith(b"+")
    await c.send(body + b"\r\n")
    lines = await c.until_tagged(b"a")
    assert lines[-1].startswith(b"a OK"), lines
    lines = await c.command(b"s", b"SELECT INBOX")
    assert b"* 1 EXISTS\r\n" in lines and lines[-1].startswith(b"s OK"), lines
    before = z.wire_in
    lines = await c.command(b"f", b"FETCH 1 BODY.PEEK[]")
    assert body in b"".join(lines) and lines[-1].startswith(b"f OK"), lines
    # The repetitive message really travelled compressed.
    assert z.wire_in - before < len(body) // 4
    lines = await c.command(b"y", b"COMPRESS DEFLATE")
    assert lines[-1].startswith(b"y NO [COMPRESSIONACTIVE]"), lines
    lines = await c.command(b"o", b"LOGOUT")
    assert lines[0].startswith(b"* BYE") and lines[-1].startswith(b"o OK"), lines


async def test_compress_plain(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        caps = await c.command(b"c", b"CAPABILITY")
        assert b" COMPRESS=DEFLATE" in caps[0]
        z = await _compress(c)
        await _exercise(c, z)


async def test_compress_inside_implicit_tls(imap_server: Any) -> None:
    with trio.fail_after(20):
        ctx = ssl.create_default_context(
            cafile=str(imap_server.config.data_dir / "tls" / "cert.pem"))
        ctx.check_hostname = False
        tcp = await trio.open_tcp_stream("127.0.0.1", imap_server.ports["imaps"])
        c = RawClient(trio.SSLStream(tcp, ctx, server_hostname="localhost"))
        assert (await c.line()).startswith(b"* OK")
        await c.login(USER, PASSWORD)
        z = await _compress(c)
        await _exercise(c, z)


async def test_compress_after_starttls(imap_server: Any) -> None:
    """RFC 4978 §4: after STARTTLS, DEFLATE runs inside TLS."""
    with trio.fail_after(20):
        ctx = ssl.create_default_context(
            cafile=str(imap_server.config.data_dir / "tls" / "cert.pem"))
        ctx.check_hostname = False
        c = await RawClient.open(imap_server.ports["imap"])
        lines = await c.command(b"t", b"STARTTLS")
        assert lines[-1].startswith(b"t OK"), lines
        tls = trio.SSLStream(c.stream, ctx, server_hostname="localhost")
        await tls.do_handshake()
        c.stream = tls
        await c.login(USER, PASSWORD)
        z = await _compress(c)
        await _exercise(c, z)


async def test_compress_pipelined_command_is_inflated(imap_server: Any) -> None:
    """RFC 4978 §3: the client compresses right after its COMPRESS line, so a command
    sent in the same packet is compressed and must be read as such."""
    with trio.fail_after(20):
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        z = ClientDeflate(c.stream)
        await c.send(b"z COMPRESS DEFLATE\r\n" + z.deflate(b"n NOOP\r\n"))
        assert (await c.line()).startswith(b"z OK")
        c.stream = z
        # Whatever plain bytes followed the OK in our buffer are compressed: inflate them.
        c.buf = z.z_in.decompress(c.buf)
        lines = await c.until_tagged(b"n")
        assert lines[-1].startswith(b"n OK"), lines


async def test_compress_refuses_unknown_mechanism_and_before_login(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        lines = await c.command(b"a", b"COMPRESS DEFLATE")
        assert lines[-1].startswith(b"a BAD"), lines
        await c.login(USER, PASSWORD)
        lines = await c.command(b"b", b"COMPRESS LZW")
        assert lines[-1].startswith(b"b BAD"), lines
        # Still uncompressed: a plain command works.
        lines = await c.command(b"n", b"NOOP")
        assert lines[-1].startswith(b"n OK"), lines


async def test_inflate_is_bounded_per_read() -> None:
    """A decompression bomb: 8 MiB of zeros, ~8 KiB compressed, comes out in reads of
    at most MAX_INFLATE octets, and all of it arrives."""
    left, right = trio.testing.memory_stream_pair()
    server = DeflateStream(right)
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    size = 8 * 1024 * 1024
    packed = bomb.compress(b"\0" * size) + bomb.flush(zlib.Z_SYNC_FLUSH)
    assert len(packed) < size // 100
    with trio.fail_after(10):
        await left.send_all(packed)
        got = 0
        while got < size:
            chunk = await server.receive_some(1 << 30)
            assert 0 < len(chunk) <= MAX_INFLATE
            got += len(chunk)
        assert got == size


async def test_corrupt_deflate_breaks_the_stream() -> None:
    left, right = trio.testing.memory_stream_pair()
    server = DeflateStream(right)
    with trio.fail_after(10):
        await left.send_all(b"\xff\xff\xff\xff garbage")
        try:
            await server.receive_some()
        except trio.BrokenResourceError:
            pass
        else:
            raise AssertionError("corrupt input was accepted")
