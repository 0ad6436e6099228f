"""Where the running server's database is: the state file of ``duck serve``.

``duck serve`` writes ``<data dir>/server.json`` once its database answers (the
embedded one or the configured deployment) and removes it when it stops: its pid,
the database URI and name. The admin commands read it, so that they work on the
database the server uses, never on a second embedded database started by accident
in another directory (issue 15). The file is private to its owner (the URI may
hold credentials).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs
import trio

STATE_FILE = "server.json"


class NoServer(RuntimeError):
    """No running server was found; the message says what to do."""


@attrs.frozen
class ServerState:
    """What a running ``duck serve`` says about itself."""

    pid: int
    mongo_uri: str
    database: str

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))


def write_state(data_dir: Path, state: ServerState) -> Path:
    """Write the state file (atomically, mode 0600)."""
    path = data_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(state.to_json() + "\n")
    tmp.replace(path)
    return path


def remove_state(data_dir: Path, pid: int) -> None:
    """Remove the state file if this process (``pid``) wrote it."""
    path = data_dir / STATE_FILE
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def read_state(data_dir: Path) -> ServerState:
    """The state of the server running on ``data_dir``, or NoServer."""
    hint = f"no duck server is running on {data_dir}; start it or pass --mongo-uri"
    path = data_dir / STATE_FILE
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        state = ServerState(pid=int(data["pid"]), mongo_uri=str(data["mongo_uri"]),
                            database=str(data["database"]))
    except FileNotFoundError as exc:
        raise NoServer(hint) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NoServer(f"cannot read {path}: {exc}") from exc
    if not _alive(state.pid):
        raise NoServer(f"{hint} (the server that wrote {path} has stopped)")
    return state


async def keep_state(data_dir: Path, state: ServerState, *,
                     task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Hold the state file while this task runs (until cancelled)."""
    write_state(data_dir, state)
    try:
        task_status.started()
        await trio.sleep_forever()
    finally:
        remove_state(data_dir, state.pid)
