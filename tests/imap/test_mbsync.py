"""isync/mbsync against the server (implicit TLS, and STARTTLS on the plain port),
syncing both ways: server → Maildir and back, with flag changes, deletions and new
messages on either side."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

from .conftest import PASSWORD, USER

pytestmark = pytest.mark.skipif(
    shutil.which("mbsync") is None, reason="mbsync (Debian package isync) is not installed"
)


def _message(n: int) -> bytes:
    return (
        f"From: peer{n}@example.com\r\nTo: {USER}\r\nSubject: sync {n}\r\n"
        f"Message-ID: <sync{n}@example.com>\r\n\r\nbody {n}\r\n"
    ).encode()


def _without_tuid(data: bytes) -> bytes:
    """mbsync marks the copies it propagates with an X-TUID header; the rest is intact."""
    return re.sub(rb"(?m)^X-TUID: [^\r\n]*\r?\n", b"", data)


def _config(tmp: Path, server: Any, tls: str) -> Path:
    maildir = tmp / "mail"
    maildir.mkdir()
    cert = server.config.data_dir / "tls" / "cert.pem"
    cfg = tmp / "mbsyncrc"
    cfg.write_text(f"""
IMAPAccount duck
Host localhost
Port {server.ports["imaps" if tls == "IMAPS" else "imap"]}
User {USER}
Pass "{PASSWORD}"
SSLType {tls}
CertificateFile {cert}
AuthMechs LOGIN

IMAPStore remote
Account duck

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns INBOX Archive
Create Both
Expunge Both
SyncState *
Sync All
""")
    return cfg


async def _mbsync(cfg: Path) -> None:
    result = await trio.run_process(
        ["mbsync", "-c", str(cfg), "-a"], capture_stdout=True, capture_stderr=True, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")


def _maildir(folder: Path) -> dict[bytes, tuple[Path, str]]:
    """Message-ID line -> (file, maildir flags) of every message in a Maildir folder."""
    out = {}
    for sub in ("cur", "new"):
        for path in (folder / sub).iterdir():
            data = path.read_bytes()
            mid = next(line for line in data.splitlines() if line.startswith(b"Message-ID:"))
            flags = path.name.split(":2,")[1] if ":2," in path.name else ""
            out[mid] = (path, flags)
    return out


async def _server_messages(server: Any, path: str) -> dict[bytes, tuple[bytes, tuple[str, ...]]]:
    user = await server.store.users.by_username(USER)
    mailbox = await server.store.mailboxes.get(user.id, path)
    summaries = await server.store.messages.view(mailbox.id)
    records = await server.store.messages.fetch(
        mailbox.id, [s.uid for s in summaries], ["content", "flags"]
    )
    out = {}
    for rec in records:
        data = await server.store.messages.read(rec)
        mid = next(line for line in data.splitlines() if line.startswith(b"Message-ID:"))
        out[mid] = (data, rec.flags or ())
    return out


@pytest.mark.parametrize("tls", ["IMAPS", "STARTTLS"])
async def test_mbsync_both_ways(imap_server: Any, tmp_path: Path, tls: str) -> None:
    with trio.fail_after(90):
        store = imap_server.store
        user = await store.users.by_username(USER)
        for n in (1, 2, 3):
            await store.messages.append(user.id, "INBOX", _message(n),
                                        ["\\Flagged"] if n == 1 else [])
        await store.messages.append(user.id, "Archive", _message(4), ["\\Seen"])
        cfg = _config(tmp_path, imap_server, tls)

        # 1. Server -> Maildir: everything arrives, byte-identical, with flags.
        await _mbsync(cfg)
        inbox_dir = tmp_path / "mail" / "INBOX"
        local = _maildir(inbox_dir)
        assert len(local) == 3
        for n in (1, 2, 3):
            path, flags = local[f"Message-ID: <sync{n}@example.com>".encode()]
            # mbsync stores Maildir files with LF line ends (its CRLF conversion).
            assert _without_tuid(path.read_bytes()).replace(b"\n", b"\r\n") == _message(n)
            assert ("F" in flags) == (n == 1)
        archive = _maildir(tmp_path / "mail" / "Archive")
        assert "S" in archive[b"Message-ID: <sync4@example.com>"][1]

        # 2. Maildir -> server: a flag change, a deletion and a new message.
        path2, _ = local[b"Message-ID: <sync2@example.com>"]
        path2.rename(path2.with_name(path2.name.split(":2,")[0] + ":2,S"))
        path3, _ = local[b"Message-ID: <sync3@example.com>"]
        path3.rename(path3.with_name(path3.name.split(":2,")[0] + ":2,T"))
        (inbox_dir / "new" / "1700000000.local.host").write_bytes(
            _message(5).replace(b"\r\n", b"\n"))
        await _mbsync(cfg)
        remote = await _server_messages(imap_server, "INBOX")
        assert set(remote) == {f"Message-ID: <sync{n}@example.com>".encode() for n in (1, 2, 5)}
        assert "\\Seen" in remote[b"Message-ID: <sync2@example.com>"][1]
        assert _without_tuid(remote[b"Message-ID: <sync5@example.com>"][0]) == _message(5)

        # 3. Server-side changes flow back: flag via STORE, expunge of another.
        inbox = await store.mailboxes.get(user.id, "INBOX")
        view = await store.messages.view(inbox.id)
        recs = await store.messages.fetch(inbox.id, [s.uid for s in view], ["content"])
        by_mid = {}
        for rec in recs:
            data = await store.messages.read(rec)
            mid = next(x for x in data.splitlines() if x.startswith(b"Message-ID:"))
            by_mid[mid] = rec.uid
        await store.messages.store_flags(inbox.id, [by_mid[b"Message-ID: <sync5@example.com>"]],
                                         "add", ["\\Answered"])
        await store.messages.store_flags(inbox.id, [by_mid[b"Message-ID: <sync1@example.com>"]],
                                         "add", ["\\Deleted"])
        await store.messages.expunge(inbox.id)
        await _mbsync(cfg)
        local = _maildir(inbox_dir)
        assert set(local) == {b"Message-ID: <sync2@example.com>",
                              b"Message-ID: <sync5@example.com>"}
        assert "R" in local[b"Message-ID: <sync5@example.com>"][1]
        assert "S" in local[b"Message-ID: <sync2@example.com>"][1]
