"""A user's autoreply and forwarding resources as a Sieve script of duck's own, run
before the user's script (docs/sieve.md, "Autoreply and forwarding")."""

from __future__ import annotations

import base64
import datetime as dt

from ..store import MailRules

#: The vacation handle of the autoreply: its once-a-day memory is its own.
HANDLE = "duck-autoreply"
BOUNDARY = "duck-autoreply-alternative"


def quote(value: str) -> str:
    """A Sieve quoted string (RFC 5228 section 2.4.2)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _base64_part(content_type: str, text: str) -> str:
    encoded = base64.encodebytes(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    return (f"Content-Type: {content_type}; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}")


def script(rules: MailRules, now: dt.datetime) -> str | None:
    """The Sieve source for ``rules`` at ``now``, or None when there is nothing to do.
    Forwarding is ``redirect :copy`` to each target; the autoreply, while it is on,
    a ``vacation`` of one day per sender (with ``:mime`` when it has HTML)."""
    lines: list[str] = []
    forwarding = rules.forwarding
    if forwarding is not None:
        lines += [f"redirect :copy {quote(t)};" for t in forwarding.targets]
    auto = rules.autoreply
    if auto is not None and auto.active_at(now):
        args = [":days 1", f":handle {quote(HANDLE)}"]
        if auto.subject:
            args.append(f":subject {quote(auto.subject)}")
        if auto.html is not None:
            entity = (f'Content-Type: multipart/alternative; boundary="{BOUNDARY}"\r\n\r\n'
                      f"--{BOUNDARY}\r\n{_base64_part('text/plain', auto.text)}"
                      f"--{BOUNDARY}\r\n{_base64_part('text/html', auto.html)}"
                      f"--{BOUNDARY}--\r\n")
            args.append(":mime")
            lines.append(f"vacation {' '.join(args)} {quote(entity)};")
        else:
            lines.append(f"vacation {' '.join(args)} {quote(auto.text)};")
    if not lines:
        return None
    return 'require ["copy", "vacation"];\r\n' + "\r\n".join(lines) + "\r\n"
