"""Sieve ``fileinto`` into another user's shared mailbox (RFC 4314 ``i``): filed into
the owner's mailbox (counted toward the owner's quota) when the recipient may insert
there, with only the flags the recipient may set; INBOX otherwise, and ``:create``
makes nothing in another user's tree."""

from __future__ import annotations

from duck.server import Server

from .test_sieve_delivery import (  # noqa: F401  (the fixtures are used by name)
    _deliver,
    _mail,
    _mailbox,
    relay,
    server,
)

SCRIPT = r"""require ["fileinto", "mailbox", "imap4flags"];
if header :contains "subject" "team" {
    fileinto :flags ["\\Flagged", "\\Seen", "\\Deleted"] "Other Users/alice@example.com/Team";
} elsif header :contains "subject" "secret" {
    fileinto "Other Users/alice@example.com/Private";
} elsif header :contains "subject" "new" {
    fileinto :create "Other Users/alice@example.com/New";
}
"""


async def test_fileinto_a_shared_mailbox(server: Server) -> None:  # noqa: F811
    store = server.store
    assert store is not None
    alice = await store.users.create("alice@example.com", "pw")
    bob = await store.users.create("bob@example.com", "pw")
    team = await store.mailboxes.create(alice.id, "Team")
    await store.mailboxes.create(alice.id, "Private")
    await store.acl.set_rights(team.id, bob.username, "lriw")
    await store.sieve.put(bob.id, "main", SCRIPT)
    await store.sieve.activate(bob.id, "main")
    before = (await store.users.get(alice.id)).storage_used

    for subject in ("team news", "secret plan", "new folder"):
        replies = await _deliver(server, "x@example.net", ["bob@example.com"],
                                 _mail("x@example.net", subject))
        assert [r[0] for r in replies] == [250], replies

    (filed,) = await _mailbox(store, alice.id, "Team")
    # w but not t, and \Seen is never the owner's to get from a reader's script.
    assert set(filed[1]) == {"\\Flagged"}
    assert b"Subject: team news" in filed[0]
    assert await _mailbox(store, alice.id, "Private") == []
    subjects = sorted(m[0].split(b"Subject: ")[1].split(b"\r\n")[0]
                      for m in await _mailbox(store, bob.id, "INBOX"))
    assert subjects == [b"new folder", b"secret plan"]
    assert [m.path for m in await store.mailboxes.list(alice.id)
            if m.path in ("New", "Other Users/alice@example.com/New")] == []
    assert [m.path for m in await store.mailboxes.list(bob.id) if "Other Users" in m.path] == []
    assert (await store.users.get(alice.id)).storage_used > before
