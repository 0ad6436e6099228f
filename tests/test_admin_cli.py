"""The admin commands against a running server.

The server runs in this process (``duck_server``, on the session's shared database);
the commands find its database through the state file in its data directory, as
an administrator's would. Each test's first command runs as ``python -m duck.cli``
(the process boundary: a separate process finds the server); the others run
``duck.cli.main`` in this process, which is what they test, without a Python
start-up each. tests/test_cli_session.py runs each of them as a subprocess once,
in an administrator's session.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from duck.cli import main
from duck.ctl.locate import STATE_FILE
from duck.store import AuthenticationFailed, NotFound, Store

ROOT = Path(__file__).resolve().parent.parent


async def spawn(server: Any, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    """Run ``python -m duck.cli ARGS --data-dir <the server's>`` as a subprocess; its
    exit code, stdout and stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "duck.cli", *args, "--data-dir", str(server.config.data_dir)]
    with trio.fail_after(60):
        done = await trio.run_process(cmd, stdin=stdin, capture_stdout=True,
                                      capture_stderr=True, check=False, env=env)
    result = subprocess.CompletedProcess(cmd, done.returncode, done.stdout.decode(),
                                         done.stderr.decode())
    assert "Traceback" not in result.stderr, result.stderr
    return result


async def duck(server: Any, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    """``duck ARGS --data-dir <the server's>`` run by ``duck.cli.main`` in this process
    (in a worker thread: the command has its own trio.run), with ``stdin`` as its
    standard input; its exit code, stdout and stderr as a subprocess's would be."""
    argv = [*args, "--data-dir", str(server.config.data_dir)]
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        saved = sys.stdin
        sys.stdin = io.StringIO(stdin.decode())
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                return int(main(argv))
        finally:
            sys.stdin = saved

    with trio.fail_after(60):
        code = await trio.to_thread.run_sync(run)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


async def _imap_login(server: Any, user: str, password: str) -> bool:
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", server.ports["imap"])
        data = b""
        await stream.send_all(f'a LOGIN "{user}" "{password}"\r\nb LOGOUT\r\n'.encode())
        while b"\r\nb OK" not in data and b"\r\nb NO" not in data:
            chunk = await stream.receive_some(4096)
            if not chunk:
                break
            data += chunk
        await stream.aclose()
    return b"\r\na OK" in data


async def test_user_commands(duck_server: Any, tmp_path: Path) -> None:
    store: Store = duck_server.store
    pw = tmp_path / "pw"
    pw.write_text("first-pass\n")
    created = await spawn(duck_server, "user", "create", "Ann@Example.com",
                         "--password-file", str(pw), "--quota", "10M")
    assert created.returncode == 0, created.stderr
    user_id = created.stdout.strip()
    # The running server sees the user: the command used its database, found in the
    # server's state file (private: a deployment's URI may hold a password).
    assert (await store.users.get(user_id)).quota == 10 * 1024**2
    assert (duck_server.config.data_dir / STATE_FILE).stat().st_mode & 0o777 == 0o600
    await store.users.create("bob@example.com", "pw")

    listed = await duck(duck_server, "user", "list", "--limit", "1")
    assert listed.returncode == 0
    assert listed.stdout.split("\t")[:2] == ["ann@example.com", user_id]
    assert "--after ann@example.com" in listed.stderr
    page = json.loads((await duck(duck_server, "user", "list", "--json", "--query", "BOB")).stdout)
    assert [u["username"] for u in page["users"]] == ["bob@example.com"] and page["next"] is None

    await store.admin.add_address(user_id, "sales@example.com")
    shown = json.loads((await duck(duck_server, "user", "show", "sales+x@example.com",
                                   "--json")).stdout)
    assert shown["id"] == user_id and shown["addresses"] == ["ann@example.com",
                                                              "sales@example.com"]
    missing = await duck(duck_server, "user", "show", "nobody@example.com")
    assert missing.returncode == 1 and "no such user" in missing.stderr

    changed = await duck(duck_server, "user", "passwd", user_id, "--password-file", "-",
                         stdin=b"second-pass\n")
    assert changed.returncode == 0, changed.stderr
    assert await _imap_login(duck_server, "ann@example.com", "second-pass")

    quota = await duck(duck_server, "user", "quota", "ann@example.com", "2G")
    assert quota.returncode == 0 and "0 of 2147483648 bytes" in quota.stdout
    assert "of 2147483648" in (await duck(duck_server, "user", "quota", user_id)).stdout

    assert (await duck(duck_server, "user", "disable", "ann@example.com")).returncode == 0
    assert (await store.users.get(user_id)).disabled
    assert not await _imap_login(duck_server, "ann@example.com", "second-pass")
    with pytest.raises(AuthenticationFailed):  # POP3 logs in through the same check
        await store.users.authenticate("ann@example.com", "second-pass")
    assert (await duck(duck_server, "user", "enable", user_id)).returncode == 0
    assert await _imap_login(duck_server, "ann@example.com", "second-pass")

    refused = await duck(duck_server, "user", "delete", "ann@example.com")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    deleted = await duck(duck_server, "user", "delete", "ann@example.com", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    with pytest.raises(NotFound):
        await store.users.get(user_id)


async def test_address_and_mailbox_commands(duck_server: Any) -> None:
    store: Store = duck_server.store
    user = await store.users.create("carl@example.com", "pw")
    added = await spawn(duck_server, "address", "add", "carl@example.com", "Info@Example.com")
    assert added.returncode == 0 and added.stdout.strip() == "info@example.com"
    assert (await store.users.resolve_address("info@example.com")) is not None
    taken = await duck(duck_server, "address", "add", user.id, "info@example.com")
    assert taken.returncode == 1 and "taken" in taken.stderr
    listed = await duck(duck_server, "address", "list", "info@example.com")
    assert listed.stdout.splitlines() == ["carl@example.com  (main)", "info@example.com"]
    removed = await duck(duck_server, "address", "remove", user.id, "info@example.com")
    assert removed.returncode == 0
    assert (await store.users.resolve_address("info@example.com")) is None

    await store.messages.append(user.id, "INBOX", b"Subject: hi\r\n\r\nhello\r\n")
    boxes = await duck(duck_server, "mailbox", "list", "carl@example.com")
    assert boxes.returncode == 0
    inbox = next(line for line in boxes.stdout.splitlines() if line.startswith("INBOX\t"))
    assert "1 messages, 1 unseen, 22 bytes" in inbox


async def test_doctor_command(duck_server: Any) -> None:
    store: Store = duck_server.store
    user = await store.users.create("dora@example.com", "pw")
    await store.messages.append(user.id, "INBOX", b"Subject: hi\r\n\r\nhello\r\n")
    healthy = await spawn(duck_server, "doctor")
    assert healthy.returncode == 0 and healthy.stdout.splitlines()[-1] == "ok"
    users = store.database.collection("users")
    await store.database.run(users.update_one, {"_id": users.find_one()["_id"]},
                             {"$set": {"storage_used": 999}})
    sick = await duck(duck_server, "doctor")
    assert sick.returncode == 1
    assert "quota: user dora@example.com: storage used 999 bytes, messages hold 22 " \
           "[not fixed]" in sick.stdout
    fixed = await duck(duck_server, "doctor", "--fix", "--grace", "0")
    assert fixed.returncode == 0 and "[fixed]" in fixed.stdout
    assert (await store.quota(user.id))[0] == 22


async def test_commands_need_a_running_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "nothing-here"
    cmd = [sys.executable, "-m", "duck.cli", "user", "list", "--data-dir", str(data_dir)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with trio.fail_after(60):
        done = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True,
                                      check=False, env=env)
    assert done.returncode == 3
    assert done.stderr.decode().strip() == (
        f"duck: no duck server is running on {data_dir}; start it or pass --mongo-uri")
    # No second database was started on the way.
    assert not data_dir.exists()


def test_stale_state_and_bad_input_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # A server that died without cleaning up: its pid is gone.
    (data_dir / STATE_FILE).write_text(json.dumps(
        {"pid": 2**22 + 1, "mongo_uri": "mongodb://127.0.0.1:1/", "database": "duck"}))
    assert main(["user", "show", "x@example.com", "--data-dir", str(data_dir)]) == 3
    assert "has stopped" in capsys.readouterr().err
    missing = ["user", "create", "x@example.com", "--data-dir", str(data_dir),
               "--password-file", str(tmp_path / "absent")]
    assert main(missing) == 2
    assert "cannot read the password file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["user", "quota", "x@example.com", "ten", "--data-dir", str(data_dir)])
    assert exc.value.code == 2
    assert main(["doctor", "--mongo-uri",
                 "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200"]) == 3
    assert "the database does not answer" in capsys.readouterr().err


async def test_offline_start_with_a_small_log_file(tmp_path: Path) -> None:
    """``--offline`` starts the embedded database when no server runs; its log file
    is preallocated at 100 MB, not the engine's 2 GiB default (issue 15)."""
    data_dir = tmp_path / "data"
    pw = tmp_path / "pw"
    pw.write_text("pw-offline\n")
    cmd = [sys.executable, "-m", "duck.cli", "user", "create", "olga@example.com",
           "--password-file", str(pw), "--data-dir", str(data_dir), "--offline"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with trio.fail_after(90):
        done = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True,
                                      check=False, env=env)
    assert done.returncode == 0, done.stderr.decode()
    assert len(done.stdout.strip()) == 24
    assert b"starting the embedded database" in done.stderr
    logs = list((data_dir / "db").glob("WiredTigerLog.*"))
    assert logs and all(p.stat().st_size <= 100 * 1024**2 for p in logs)
    # It stopped its database again: nothing left claims the data directory.
    assert not (data_dir / "db.pid").exists() and not (data_dir / STATE_FILE).exists()
