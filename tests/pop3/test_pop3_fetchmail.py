"""Debian's fetchmail (an independent POP3 client) downloads a 200-message mailbox
through an MDA into files, byte-identical to IMAP's BODY[] of the same messages:
once keeping the mail (POP3S, UIDL), once deleting it (STLS)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import trio

from .conftest import PASSWORD, USER, Pop3TestServer, blocking, fill
from .test_pop3_clients import _imap_bodies

pytestmark = pytest.mark.skipif(shutil.which("fetchmail") is None,
                                reason="needs Debian's fetchmail")

COUNT = 200


def _corpus() -> list[bytes]:
    """Messages of several shapes: plain, dot-led lines, no final CRLF, 8-bit, and a
    few with a base64 attachment of some hundred kilobytes."""
    out = []
    for n in range(COUNT):
        head = (f"From: sender{n}@example.com\r\nTo: {USER}\r\nSubject: message {n}\r\n"
                f"Message-ID: <fm{n}@example.com>\r\n").encode()
        kind = n % 5
        if kind == 0:
            body = f"plain body {n}\r\n".encode() * (1 + n % 7)
        elif kind == 1:
            body = b".\r\n..dots\r\n.leading\r\n" + f"line {n}\r\n.".encode() + b"\r\n"
        elif kind == 2:
            body = "8-bit: h\u00e9 \u00e7a \u2713\r\n".encode() * 3
        elif kind == 3:
            body = base64.encodebytes(os.urandom(60_000 + n * 500)).replace(b"\n", b"\r\n")
            head += (b"MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Transfer-Encoding: base64\r\n")
        else:
            body = f"ends without a line break {n}".encode()
        out.append(head + b"\r\n" + body)
    return out


def _fetchmail(server: Pop3TestServer, home: Path, *,
               keep: bool) -> subprocess.CompletedProcess[str]:
    """Run fetchmail once with a generated rc file; messages land in home/mail."""
    mail = home / "mail"
    mail.mkdir(exist_ok=True)
    if keep:
        # Implicit TLS on the POP3S port, the mail left on the server (UIDL remembers it).
        port, tls, mode, uidl = server.ports["pop3s"], "ssl", "keep", " uidl"
    else:
        # The plain port, upgraded with STLS (fetchmail's default when offered).
        port, tls, mode, uidl = (server.ports["pop3"], "sslproto tls1.2+", "nokeep fetchall",
                                  "")
    rc = home / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        "set invisible\n"
        f"set idfile \"{home / 'fetchids'}\"\n"
        f"poll localhost via 127.0.0.1 with proto POP3 port {port}{uidl}\n"
        f"  user \"{USER}\" there with password \"{PASSWORD}\" is \"root\" here\n"
        f"  {tls} sslcertck sslcertfile \"{server.cert}\" sslcommonname localhost\n"
        f"  {mode} no rewrite no stripcr no mimedecode\n"
        f"  mda \"/bin/sh -c 'cat > $(mktemp {mail}/msg.XXXXXX)'\"\n"
    )
    rc.chmod(0o600)
    env = {**os.environ, "HOME": str(home), "FETCHMAILHOME": str(home), "LC_ALL": "C"}
    return subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "-v"],
                          capture_output=True, text=True, timeout=120, env=env)


def _downloaded(home: Path) -> list[bytes]:
    return sorted(p.read_bytes() for p in (home / "mail").iterdir())


async def test_fetchmail_keep_then_delete(pop3_server: Pop3TestServer, tmp_path: Path) -> None:
    corpus = _corpus()
    await fill(pop3_server, corpus)
    with trio.fail_after(120):
        imap = await blocking(lambda: _imap_bodies(pop3_server))
    assert len(imap) == COUNT
    expected = sorted(imap.values())

    keep_home = tmp_path / "keep"
    keep_home.mkdir()
    with trio.fail_after(150):
        run = await blocking(lambda: _fetchmail(pop3_server, keep_home, keep=True))
    assert run.returncode == 0, run.stderr[-3000:]
    got = _downloaded(keep_home)
    # Messages without a final line break get one: a POP3 multi-line reply ends
    # with CRLF "." CRLF (RFC 1939 §3); every other byte is as stored.
    assert got == sorted(b if b.endswith(b"\r\n") else b + b"\r\n" for b in expected)
    assert [m for m in corpus if m.endswith(b"\r\n")] and all(
        g.count(b"\r\n") == g.count(b"\n") for g in got)
    # A second run with the same UIDL memory fetches nothing new (exit status 1).
    with trio.fail_after(150):
        again = await blocking(lambda: _fetchmail(pop3_server, keep_home, keep=True))
    assert again.returncode == 1, again.stderr[-3000:]
    assert len(_downloaded(keep_home)) == COUNT
    inbox = await pop3_server.store.mailboxes.get(pop3_server.user.id, "INBOX")
    assert inbox.message_count == COUNT

    delete_home = tmp_path / "delete"
    delete_home.mkdir()
    with trio.fail_after(150):
        run = await blocking(lambda: _fetchmail(pop3_server, delete_home, keep=False))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "POP3> STLS" in run.stdout, run.stdout[:3000]
    assert _downloaded(delete_home) == got
    inbox = await pop3_server.store.mailboxes.get(pop3_server.user.id, "INBOX")
    assert inbox.message_count == 0
