"""Running a script against a small message, for the Sieve tests."""

from __future__ import annotations

import datetime as dt

import trio

from duck.sieve import Message, NoHooks, Outcome, compile_script, run


def message(headers: str, body: str = "Hello\r\n", *, sender: str = "sender@example.org",
            recipient: str = "me@example.com", now: dt.datetime | None = None) -> Message:
    """A Message from header lines (LF or CRLF) and a body."""
    head = headers.strip("\n").replace("\r\n", "\n").replace("\n", "\r\n") + "\r\n\r\n"
    data = (head + body).encode()
    return Message.from_bytes(data, envelope_from=sender, envelope_to=recipient,
                              with_body=True,
                              now=now or dt.datetime(2026, 12, 4, 10, 30, tzinfo=dt.UTC))


def outcome(script: str, msg: Message, hooks: NoHooks | None = None) -> Outcome:
    """Compile and run ``script`` (synchronously, for tests)."""
    compiled = compile_script(script)
    return trio.run(run, compiled, msg, hooks or NoHooks())
