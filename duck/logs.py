"""Log set-up for every duck process: text lines (the default) or JSON lines.

Modules log with plain ``logging.getLogger("duck.<area>")``; this module alone
decides where lines go and how they look (``--log-format text|json``). Event lines
carry their fields as ``extra=`` (``duck/observe.py``: ``duck.conn``,
``duck.delivery``, ``duck.api.access``; ``duck.auth`` for logins): in JSON they
become keys of the line's object, in text they are already in the message.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

FORMATS = ("text", "json")

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ``extra`` fields."""

    def __init__(self, process: str | None = None) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.process:
            line["process"] = self.process
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str = "INFO", fmt: str = "text", process: str = "") -> None:
    """Send every logger's lines to stderr at ``level`` in format ``fmt``;
    ``process`` names this process in each line (``worker-2``).

    As ``logging.basicConfig``, this leaves alone a root logger that something else
    (a test runner, an embedding program) already gave handlers; a handler of its
    own from an earlier call is replaced."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    root = logging.getLogger()
    if any(not getattr(h, "duck", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.duck = True  # type: ignore[attr-defined]
    if fmt == "json":
        handler.setFormatter(JsonFormatter(process or None))
    else:
        tag = f"{process} " if process else ""
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s"))
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
