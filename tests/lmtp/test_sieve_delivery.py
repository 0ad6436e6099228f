"""Sieve on LMTP delivery, end to end: a real duck server, a real LMTP client, a real
SMTP sink as the relay (issue 14's "Done when")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from duck.config import Config
from duck.server import Server
from duck.store import Store
from tests.lmtp.client import LmtpClient
from tests.outbound.smtp_sink import SmtpSink
from tests.serving import serving

SCRIPT = r"""require ["fileinto", "mailbox", "imap4flags", "reject", "copy", "vacation"];
if header :contains "List-Id" "dev.example.org" {
    fileinto :create "Lists/dev";
    stop;
}
if address :is "from" "spammer@bad.example" {
    reject "We do not want your mail";
    stop;
}
if header :contains "subject" "urgent" {
    addflag "\\Flagged";
}
redirect :copy "forward@elsewhere.example";
vacation :days 7 :subject "Away" "I am away until Monday.";
"""


@pytest.fixture
async def relay(nursery: trio.Nursery) -> tuple[SmtpSink, int]:
    sink = SmtpSink()
    port = await nursery.start(sink.serve)
    return sink, port


@pytest.fixture
async def server(mongo_uri: str, db_name: str, tmp_path: Path, nursery: trio.Nursery,
                 relay: tuple[SmtpSink, int]) -> AsyncIterator[Server]:
    config = Config(data_dir=tmp_path / "data", imap_port=0, imaps_port=0, lmtp_port=0,
                    pop3_port=0, pop3s_port=0, managesieve_port=0, api_port=0,
                    mongo_uri=mongo_uri, database=db_name, shutdown_grace=1.0,
                    smtp_relay=f"127.0.0.1:{relay[1]}", smtp_relay_tls="none").validate()
    async with serving(nursery, config) as server:
        yield server


async def _deliver(server: Server, sender: str, rcpts: list[str], message: bytes
                   ) -> list[tuple[int, str | None, str]]:
    with trio.fail_after(30):
        client = await LmtpClient.connect(server.ports["lmtp"])
        assert (await client.read_reply()).code == 220
        assert (await client.command("LHLO test")).code == 250
        _, data = await client.deliver(sender, rcpts, message)
        await client.aclose()
    return [(r.code, r.status, r.text) for r in data]


async def _mailbox(store: Store, user_id: str, path: str) -> list[tuple[bytes, tuple[str, ...]]]:
    box = await store.mailboxes.get(user_id, path)
    view = await store.messages.view(box.id)
    records = await store.messages.fetch(box.id, [m.uid for m in view], ["content"])
    contents = [await store.messages.read(r) for r in records]
    return list(zip(contents, [m.flags for m in view], strict=True))


def _mail(sender: str, subject: str, extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: alice@example.com, bob@example.com\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '.')}@x>\r\n"
            f"{extra}\r\nHello.\r\n").encode()


async def test_done_when_file_flag_reject_redirect_vacation(
        server: Server, relay: tuple[SmtpSink, int]) -> None:
    sink = relay[0]
    store = server.store
    assert store is not None
    alice = await store.users.create("alice@example.com", "pw")
    bob = await store.users.create("bob@example.com", "pw")
    await store.sieve.put(alice.id, "main", SCRIPT)
    await store.sieve.activate(alice.id, "main")
    rcpts = ["alice@example.com", "bob@example.com"]

    # List mail goes into a folder made on demand; bob (no script) gets it in INBOX.
    replies = await _deliver(server, "dev-bounces@dev.example.org", rcpts,
                             _mail("dev@dev.example.org", "list post",
                                   "List-Id: <dev.example.org>\r\n"))
    assert [r[0] for r in replies] == [250, 250]
    assert len(await _mailbox(store, alice.id, "Lists/dev")) == 1
    assert await _mailbox(store, alice.id, "INBOX") == []
    assert len(await _mailbox(store, bob.id, "INBOX")) == 1

    # A refused sender: the refusal is alice's alone.
    replies = await _deliver(server, "spammer@bad.example", rcpts,
                             _mail("spammer@bad.example", "buy now"))
    assert replies[0][:2] == (550, "5.7.1") and "do not want" in replies[0][2]
    assert replies[1][0] == 250
    assert len(await _mailbox(store, bob.id, "INBOX")) == 2

    # A friend's urgent mail: flagged in INBOX, a copy redirected, a vacation reply.
    first = _mail("Friend <friend@example.net>", "urgent matter")
    replies = await _deliver(server, "friend@example.net", ["alice@example.com"], first)
    assert [r[0] for r in replies] == [250]
    (stored,) = await _mailbox(store, alice.id, "INBOX")
    assert "\\Flagged" in stored[1] and stored[0].endswith(first)
    got = await sink.wait_for(2)
    by_rcpt = {g.recipients: g for g in got}
    redirected = by_rcpt[("forward@elsewhere.example",)]
    assert redirected.sender == "friend@example.net"
    assert redirected.data.startswith(b"Delivered-To: alice@example.com\r\n")
    assert b"Subject: urgent matter" in redirected.data
    reply = by_rcpt[("friend@example.net",)]
    assert reply.sender == ""  # the null reverse-path (RFC 3834 section 3.3)
    assert b"Auto-Submitted: auto-replied" in reply.data
    assert b"Subject: Away" in reply.data and b"In-Reply-To: <urgent.matter@x>" in reply.data
    assert b"I am away until Monday." in reply.data

    # A second message from the same sender within :days: redirected, not answered.
    replies = await _deliver(server, "friend@example.net", ["alice@example.com"],
                             _mail("friend@example.net", "urgent again"))
    assert [r[0] for r in replies] == [250]
    got = await sink.wait_for(3)
    await trio.sleep(1.0)  # anything more would be sent at once (the sender is woken)
    assert len(sink.received) == 3
    assert sum(1 for g in sink.received if g.recipients == ("friend@example.net",)) == 1


async def test_broken_scripts_keep_the_mail_and_say_why(server: Server) -> None:
    store = server.store
    assert store is not None
    carol = await store.users.create("carol@example.com", "pw")
    dave = await store.users.create("dave@example.com", "pw")
    # A script stored past the checks (an older duck, a restore): a syntax error.
    await store.sieve.put(carol.id, "broken", 'require "fileinto";\nfileinto "a"\n')
    await store.sieve.activate(carol.id, "broken")
    await store.sieve.put(dave.id, "runtime",
                          'require "variables";\nset "a" "not an address";\nredirect "${a}";')
    await store.sieve.activate(dave.id, "runtime")
    message = _mail("x@example.net", "hello")
    replies = await _deliver(server, "x@example.net", ["carol@example.com", "dave@example.com"],
                             message)
    assert [r[0] for r in replies] == [250, 250]
    for user, name, line in ((carol, "broken", 3), (dave, "runtime", 3)):
        (stored,) = await _mailbox(store, user.id, "INBOX")
        assert stored[0].endswith(message)
        error = (await store.sieve.get(user.id, name)).error
        assert error is not None and error.line == line, error


async def test_discard_and_missing_folder(server: Server) -> None:
    store = server.store
    assert store is not None
    erin = await store.users.create("erin@example.com", "pw")
    await store.sieve.put(erin.id, "s", 'require "fileinto";\n'
                          'if header :is "subject" "junk" { discard; }\n'
                          'else { fileinto "Nowhere"; }')
    await store.sieve.activate(erin.id, "s")
    replies = await _deliver(server, "x@example.net", ["erin@example.com"],
                             _mail("x@example.net", "junk"))
    assert replies[0][0] == 250 and "discarded" in replies[0][2]
    assert await _mailbox(store, erin.id, "INBOX") == []
    await _deliver(server, "x@example.net", ["erin@example.com"], _mail("x@example.net", "ok"))
    # fileinto a mailbox that does not exist (no :create): INBOX, nothing lost.
    assert len(await _mailbox(store, erin.id, "INBOX")) == 1


async def test_autoreply_and_forwarding_resources(
        server: Server, relay: tuple[SmtpSink, int]) -> None:
    """The JSON resources become rules run before the user's script: forwarding
    (here without a kept copy), then a one-a-day autoreply with HTML."""
    import datetime as dt

    from duck.store import Autoreply, Forwarding

    sink = relay[0]
    store = server.store
    assert store is not None
    fay = await store.users.create("fay@example.com", "pw")
    now = dt.datetime.now(dt.UTC)
    await store.sieve.set_forwarding(fay.id, Forwarding(("fay@elsewhere.example",), False))
    await store.sieve.set_autoreply(fay.id, Autoreply(
        True, "Out until Monday.", "Away", "<p>Out until <b>Monday</b>.</p>",
        now - dt.timedelta(hours=1), now + dt.timedelta(days=2)))
    # The user's own script files list mail; its fileinto still stores a copy.
    await store.sieve.put(fay.id, "s", 'require ["fileinto", "mailbox"];\n'
                          'if header :contains "subject" "[list]" '
                          '{ fileinto :create "Lists"; }\n')
    await store.sieve.activate(fay.id, "s")
    first = (b"From: gil@example.net\r\nTo: fay@example.com\r\nSubject: hello\r\n"
             b"Message-ID: <hello@x>\r\n\r\nHi.\r\n")
    assert [r[0] for r in await _deliver(server, "gil@example.net", ["fay@example.com"],
                                         first)] == [250]
    got = await sink.wait_for(2)
    forwarded = next(g for g in got if g.recipients == ("fay@elsewhere.example",))
    assert forwarded.sender == "gil@example.net" and forwarded.data.endswith(first)
    reply = next(g for g in got if g.recipients == ("gil@example.net",))
    assert reply.sender == "" and b"Auto-Submitted: auto-replied" in reply.data
    assert b"Subject: Away" in reply.data and b"multipart/alternative" in reply.data
    # Forwarding without keep: nothing in INBOX.
    assert await _mailbox(store, fay.id, "INBOX") == []
    # The script's explicit fileinto still stores; one reply a day per sender.
    listed = (b"From: gil@example.net\r\nTo: fay@example.com\r\nSubject: [list] news\r\n"
              b"Message-ID: <news@x>\r\n\r\nNews.\r\n")
    await _deliver(server, "gil@example.net", ["fay@example.com"], listed)
    await sink.wait_for(3)
    assert len(await _mailbox(store, fay.id, "Lists")) == 1
    await trio.sleep(1.0)
    assert sum(1 for g in sink.received if g.recipients == ("gil@example.net",)) == 1
