"""Debian's swaks as an independent LMTP client against the trio server."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import trio

from duck.lmtp.backend import trace_headers

from .test_lmtp_server import make_backend, running

SWAKS = shutil.which("swaks")
pytestmark = pytest.mark.skipif(
    SWAKS is None, reason="swaks is not installed (apt-get install swaks; .ci/run installs it)")

# swaks ends the data with CRLF "." CRLF of its own, so the file has no final CRLF
# and what swaks sends (see its transcript) is BODY + CRLF.
BODY = b"From: a@x.org\r\nSubject: swaks\r\n\r\n.dot first\r\nline two"
SENT = BODY + b"\r\n"


async def _swaks(port: int, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    message = tmp_path / "message.eml"
    message.write_bytes(BODY)
    assert SWAKS is not None
    return await trio.run_process(
        [SWAKS, "--server", "127.0.0.1", "--port", str(port), "--protocol", "LMTP",
         "--from", "a@x.org", "--helo", "mta.example", "--data", str(message), *extra],
        capture_stdout=True, capture_stderr=True, check=False)


@pytest.mark.parametrize("pipeline", [False, True])
async def test_swaks_delivers_to_two_recipients(tmp_path: Path, pipeline: bool) -> None:
    backend = make_backend()
    with trio.fail_after(30):
        async with running(backend) as server:
            extra = ["--to", "b@example.com,c+tag@example.com"]
            if pipeline:
                extra.append("--pipeline")
            result = await _swaks(server.ports()[0], tmp_path, *extra)
    transcript = result.stdout.decode(errors="replace")
    assert result.returncode == 0, transcript + result.stderr.decode(errors="replace")
    assert [c.user for c in backend.stored] == ["user-b", "user-c"]
    assert backend.stored[1].detail == "tag"
    for copy in backend.stored:
        assert copy.data == trace_headers("a@x.org", copy.address) + SENT


async def test_swaks_sees_the_unknown_recipient(tmp_path: Path) -> None:
    backend = make_backend()
    with trio.fail_after(30):
        async with running(backend) as server:
            result = await _swaks(server.ports()[0], tmp_path, "--to", "nobody@example.com")
    transcript = result.stdout.decode(errors="replace")
    assert result.returncode != 0
    assert "550 5.1.1" in transcript
    assert backend.stored == []
