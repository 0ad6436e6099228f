"""The MTA's recipient check: the socketmap server spoken to as Postfix speaks it
(netstrings, several requests on one connection, one reply each, waiting for each
reply), and the same question over HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from duck.config import Config
from duck.mta.netstring import NetstringError, NetstringReader, encode
from duck.server import Server
from duck.store import Store
from tests.serving import serving


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def server(mongo_uri: str, db_name: str, tmp_path: Path, nursery: Any
                 ) -> AsyncIterator[Server]:
    """A server with its socketmap listener on."""
    config = Config(data_dir=tmp_path / "data", imap_port=0, imaps_port=0, lmtp_port=0,
                    pop3_port=0, pop3s_port=0, managesieve_port=0, api_port=0, mongo_uri=mongo_uri,
                    database=db_name, shutdown_grace=2.0, socketmap_port=_free_port())
    async with serving(nursery, config) as server:
        yield server


class PostfixClient:
    """What Postfix's dict_sockmap does: write ``len:name key,``, read one netstring."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.reader = NetstringReader(100000)  # Postfix's reply limit
        self.pending: list[bytes] = []

    async def lookup(self, name: str, key: str) -> str:
        await self.stream.send_all(encode(f"{name} {key}".encode()))
        return await self.reply()

    async def reply(self) -> str:
        while not self.pending:
            data = await self.stream.receive_some(4096)
            assert data, "the server closed the connection"
            self.pending += self.reader.feed(data)
        return self.pending.pop(0).decode()

    async def closed(self) -> bool:
        return await self.stream.receive_some(4096) == b""


async def test_postfix_lookups_on_one_connection(server: Server) -> None:
    store: Store = server.store  # type: ignore[assignment]
    user = await store.users.create("rita@example.com", "pw")
    await store.admin.add_address(user.id, "sales@example.net")
    with trio.fail_after(20):
        stream = await trio.open_tcp_stream("127.0.0.1", server.ports["socketmap"])
        client = PostfixClient(stream)
        # virtual_mailbox_maps with recipient_delimiter = +: the full address first,
        # then without the extension, then the domain's catch-all.
        assert await client.lookup("recipient", "rita@example.com") == "OK rita@example.com"
        assert await client.lookup("recipient", "Rita+news@Example.COM") == "OK rita@example.com"
        assert await client.lookup("recipient", "sales@example.net") == "OK sales@example.net"
        assert await client.lookup("recipient", "nobody@example.com") == "NOTFOUND "
        assert await client.lookup("recipient", "@example.com") == "NOTFOUND "
        # virtual_mailbox_domains.
        assert await client.lookup("domain", "example.net") == "OK example.net"
        assert await client.lookup("domain", "EXAMPLE.com") == "OK EXAMPLE.com"
        assert await client.lookup("domain", "example.org") == "NOTFOUND "
        # A map this server does not have: PERM, and the connection stays usable.
        assert (await client.lookup("aliases", "x")).startswith("PERM unknown map")
        assert await client.lookup("recipient", "rita@example.com") == "OK rita@example.com"
        # Two requests in one write get two replies, in order.
        await stream.send_all(encode(b"recipient nobody@example.com")
                              + encode(b"recipient rita@example.com"))
        assert [await client.reply(), await client.reply()] == ["NOTFOUND ",
                                                                 "OK rita@example.com"]
        await stream.aclose()


GARBAGE = [
    b"hello\r\n",                       # not a netstring at all
    b"5:recipient x@example.com,",      # the length does not match: no comma there
    b"99999999:x",                      # longer than any request may be
    b"01:x,",                           # a leading zero
    encode(b"recipient"),               # no key
    encode(b"\xff\xfe x"),              # not UTF-8
]


async def test_malformed_input_gets_perm_and_a_closed_connection(server: Server) -> None:
    for garbage in GARBAGE:
        with trio.fail_after(20):
            stream = await trio.open_tcp_stream("127.0.0.1", server.ports["socketmap"])
            client = PostfixClient(stream)
            await stream.send_all(garbage)
            assert (await client.reply()).startswith("PERM "), garbage
            assert await client.closed(), garbage
            await stream.aclose()
    # The listener keeps serving.
    stream = await trio.open_tcp_stream("127.0.0.1", server.ports["socketmap"])
    assert await PostfixClient(stream).lookup("recipient", "a@b.example") == "NOTFOUND "
    await stream.aclose()


async def test_http_recipient_check(server: Server) -> None:
    store: Store = server.store  # type: ignore[assignment]
    user = await store.users.create("sam@example.com", "pw")
    base = f"http://127.0.0.1:{server.ports['api']}"
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=base) as client:
            r = await client.get("/recipients/sam+x@example.com")
            assert r.status_code == 200
            assert r.json() == {"address": "sam@example.com", "user": user.id, "success": True}
            assert (await client.get("/recipients/tom@example.com")).status_code == 404


@given(st.lists(st.binary(max_size=300), max_size=5), st.integers(1, 7))
def test_netstrings_round_trip_in_any_chunking(payloads: list[bytes], step: int) -> None:
    data = b"".join(encode(p) for p in payloads)
    reader = NetstringReader(1000)
    out = []
    for i in range(0, len(data), step):
        out += reader.feed(data[i:i + step])
    assert out == payloads


@given(st.binary(max_size=40))
def test_netstring_reader_is_total(data: bytes) -> None:
    try:
        NetstringReader(100).feed(data)
    except NetstringError:
        pass
