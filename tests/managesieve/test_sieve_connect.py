"""Debian's sieve-connect as a real ManageSieve client (STARTTLS, SASL PLAIN)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import trio

from .conftest import PASSWORD, USER, SieveServer

pytestmark = pytest.mark.skipif(shutil.which("sieve-connect") is None,
                                reason="sieve-connect is not installed (apt sieve-connect)")


def _run(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.write(write, PASSWORD.encode() + b"\n")
    os.close(write)
    try:
        return subprocess.run(
            ["sieve-connect", "--server", "127.0.0.1", "--port", str(port), "--user", USER,
             "--passwordfd", str(read), "--notlsverify", "--authmech", "PLAIN", *args],
            pass_fds=(read,), capture_output=True, text=True, timeout=30, check=False)
    finally:
        os.close(read)


async def test_upload_list_activate_download_delete(sieve_server: SieveServer,
                                                     tmp_path: Path) -> None:
    port = sieve_server.ports["plain"]
    script = tmp_path / "vacation.sieve"
    source = ('require ["vacation", "fileinto"];\r\n'
              'if header :contains "List-Id" "x" { fileinto "Lists"; }\r\n'
              'vacation :days 3 "Away";\r\n')
    script.write_text(source)

    async def run(*args: str) -> subprocess.CompletedProcess[str]:
        return await trio.to_thread.run_sync(lambda: _run(port, *args))

    with trio.fail_after(120):
        done = await run("--upload", "--localsieve", str(script), "--remotesieve", "away")
        assert done.returncode == 0, done.stderr
        done = await run("--activate", "--remotesieve", "away")
        assert done.returncode == 0, done.stderr
        done = await run("--list")
        assert done.returncode == 0 and "away" in done.stdout, done
        active = await sieve_server.store.sieve.active(sieve_server.user.id)
        assert active is not None and active.source.replace("\r\n", "\n") == \
            source.replace("\r\n", "\n")
        copy = tmp_path / "copy.sieve"
        done = await run("--download", "--remotesieve", "away", "--localsieve", str(copy))
        assert done.returncode == 0, done.stderr
        assert copy.read_text().replace("\r\n", "\n") == source.replace("\r\n", "\n")
        bad = tmp_path / "bad.sieve"
        bad.write_text('require "fileinto";\nkeep;\nfileinto "x"\n')
        done = await run("--upload", "--localsieve", str(bad), "--remotesieve", "bad")
        assert done.returncode != 0 and "line 4" in (done.stdout + done.stderr), done
        done = await run("--deactivate")
        assert done.returncode == 0, done.stderr
        done = await run("--delete", "--remotesieve", "away")
        assert done.returncode == 0, done.stderr
    assert await sieve_server.store.sieve.scripts(sieve_server.user.id) == []
