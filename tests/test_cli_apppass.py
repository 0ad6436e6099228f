"""``duck apppass create|list|revoke`` against a running server, which then accepts
or refuses the application password over IMAP. ``apppass create`` runs as
``python -m duck.cli`` (a separate process finds the server); the others run
``duck.cli.main`` in this process (test_admin_cli.duck)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_admin_cli import _imap_login, duck, spawn


async def test_apppass_commands(duck_server: Any, tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("main-secret\n")
    made = await duck(duck_server, "user", "create", "ann@example.com",
                      "--password-file", str(password))
    assert made.returncode == 0, made.stderr
    created = await spawn(duck_server, "apppass", "create", "ann@example.com",
                         "--description", "phone", "--scope", "imap")
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    secret = next(ln for ln in lines if ln.startswith("password: "))[10:]
    ident = next(ln for ln in lines if ln.startswith("id: "))[4:]
    assert await _imap_login(duck_server, "ann@example.com", secret)
    listed = await duck(duck_server, "apppass", "list", "ann@example.com")
    assert listed.returncode == 0, listed.stderr
    assert ident in listed.stdout and "phone" in listed.stdout
    assert "127.0.0.1" in listed.stdout  # where it was last used
    assert secret not in listed.stdout and secret.replace(" ", "") not in listed.stdout
    revoked = await duck(duck_server, "apppass", "revoke", "ann@example.com", ident)
    assert revoked.returncode == 0, revoked.stderr
    assert not await _imap_login(duck_server, "ann@example.com", secret)
    again = await duck(duck_server, "apppass", "revoke", "ann@example.com", ident)
    assert again.returncode == 1 and again.stderr.strip(), again
    nobody = await duck(duck_server, "apppass", "list", "nobody@example.com")
    assert nobody.returncode == 1 and nobody.stderr.strip(), nobody
