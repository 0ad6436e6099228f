"""isync/mbsync syncs a mailbox another user shares (``Other Users/<user>/INBOX``) as a
second channel beside the user's own INBOX: the reader's \\Seen stays the reader's,
other flags and new messages reach the owner's mailbox (charged to the owner)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

from .conftest import PASSWORD, USER
from .test_mbsync import _maildir, _mbsync, _message, _server_messages

pytestmark = pytest.mark.skipif(
    shutil.which("mbsync") is None, reason="mbsync (Debian package isync) is not installed"
)

BOB = "bob@example.com"


def _config(tmp: Path, server: Any) -> Path:
    own, shared = tmp / "mail", tmp / "shared"
    own.mkdir()
    shared.mkdir()
    cert = server.config.data_dir / "tls" / "cert.pem"
    cfg = tmp / "mbsyncrc"
    cfg.write_text(f"""
IMAPAccount bob
Host localhost
Port {server.ports["imaps"]}
User {BOB}
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {cert}
AuthMechs LOGIN

IMAPStore remote
Account bob

MaildirStore local
Path {own}/
Inbox {own}/INBOX

MaildirStore shared
Path {shared}/
SubFolders Verbatim

Channel own
Far :remote:INBOX
Near :local:INBOX
Create Both
SyncState *
Sync All

Channel alice
Far :remote:"Other Users/{USER}/INBOX"
Near :shared:alice
Create Near
Expunge Both
SyncState *
Sync All
""")
    return cfg


async def test_mbsync_second_channel_on_a_shared_mailbox(imap_server: Any,
                                                         tmp_path: Path) -> None:
    with trio.fail_after(90):
        store = imap_server.store
        alice = await store.users.by_username(USER)
        bob = await store.users.create(BOB, PASSWORD)
        await store.messages.append(bob.id, "INBOX", _message(9))
        await store.messages.append(alice.id, "INBOX", _message(1), ["\\Seen"])
        await store.messages.append(alice.id, "INBOX", _message(2))
        inbox = await store.mailboxes.get(alice.id, "INBOX")
        await store.acl.set_rights(inbox.id, BOB, "lrswite")
        cfg = _config(tmp_path, imap_server)

        await _mbsync(cfg)
        assert set(_maildir(tmp_path / "mail" / "INBOX")) == {b"Message-ID: <sync9@example.com>"}
        shared_dir = tmp_path / "shared" / "alice"
        local = _maildir(shared_dir)
        assert set(local) == {b"Message-ID: <sync1@example.com>",
                              b"Message-ID: <sync2@example.com>"}
        # Alice's \Seen is hers: bob has read nothing.
        assert all("S" not in flags for _, flags in local.values()), local

        # Bob reads 2, flags 1 and files a new message into the shared mailbox.
        path2, _ = local[b"Message-ID: <sync2@example.com>"]
        path2.rename(path2.with_name(path2.name.split(":2,")[0] + ":2,S"))
        path1, _ = local[b"Message-ID: <sync1@example.com>"]
        path1.rename(path1.with_name(path1.name.split(":2,")[0] + ":2,F"))
        (shared_dir / "new" / "1700000000.local.host").write_bytes(
            _message(3).replace(b"\r\n", b"\n"))
        used_before = (await store.users.get(alice.id)).storage_used
        bob_before = (await store.users.get(bob.id)).storage_used
        await _mbsync(cfg)

        remote = await _server_messages(imap_server, "INBOX")  # alice's INBOX
        assert set(remote) == {f"Message-ID: <sync{n}@example.com>".encode() for n in (1, 2, 3)}
        flags = {mid: set(f) for mid, (_, f) in remote.items()}
        assert flags[b"Message-ID: <sync1@example.com>"] == {"\\Seen", "\\Flagged"}
        assert "\\Seen" not in flags[b"Message-ID: <sync2@example.com>"]
        # (UID 2 is message 2: appended second.)
        assert await store.acl.seen(inbox.id, bob.id) == {2}
        # The message bob filed counts toward alice's quota, not his.
        assert (await store.users.get(alice.id)).storage_used > used_before
        assert (await store.users.get(bob.id)).storage_used == bob_before

        # A second run changes nothing and keeps bob's \Seen.
        await _mbsync(cfg)
        local = _maildir(shared_dir)
        assert "S" in local[b"Message-ID: <sync2@example.com>"][1]
        assert "S" not in local[b"Message-ID: <sync1@example.com>"][1]
