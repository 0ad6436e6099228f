"""POP3 commands as typed values, and the parser of one command line.

RFC 1939 §3: a command is a case-insensitive keyword of three or four
characters, then arguments separated by single spaces, each at most 40
characters. Message numbers are decimal; RFC 1939 does not bound them, duck
refuses any above 10 digits (no maildrop is that large) rather than build a
huge integer from a hostile line.
"""

from __future__ import annotations

import attrs

#: RFC 1939 §3: "each argument may be up to 40 characters long".
MAX_ARGUMENT = 40
#: Longest decimal number accepted as a message number or line count.
MAX_DIGITS = 10


class CommandError(Exception):
    """A line that is not a valid command; the text says why (sent with ``-ERR``)."""


@attrs.frozen
class Command:
    """Base of every command."""

    VERB = ""


@attrs.frozen
class User(Command):
    """USER name (RFC 1939 §7)."""

    name: str
    VERB = "USER"


@attrs.frozen
class Pass(Command):
    """PASS string (RFC 1939 §7): the rest of the line, spaces included."""

    password: str = attrs.field(repr=False)
    VERB = "PASS"


@attrs.frozen
class Apop(Command):
    """APOP name digest (RFC 1939 §7): recognised, not offered."""

    VERB = "APOP"


@attrs.frozen
class Auth(Command):
    """AUTH [mechanism [initial-response]] (RFC 5034 §4; without a mechanism, the
    mechanism listing many clients probe with)."""

    mechanism: str | None = None
    initial_response: str | None = attrs.field(default=None, repr=False)
    VERB = "AUTH"


@attrs.frozen
class Stls(Command):
    """STLS (RFC 2595 §4)."""

    VERB = "STLS"


@attrs.frozen
class Capa(Command):
    """CAPA (RFC 2449 §5)."""

    VERB = "CAPA"


@attrs.frozen
class Stat(Command):
    """STAT (RFC 1939 §5)."""

    VERB = "STAT"


@attrs.frozen
class List(Command):
    """LIST [msg] (RFC 1939 §5)."""

    msg: int | None = None
    VERB = "LIST"


@attrs.frozen
class Retr(Command):
    """RETR msg (RFC 1939 §5)."""

    msg: int
    VERB = "RETR"


@attrs.frozen
class Dele(Command):
    """DELE msg (RFC 1939 §5)."""

    msg: int
    VERB = "DELE"


@attrs.frozen
class Noop(Command):
    """NOOP (RFC 1939 §5)."""

    VERB = "NOOP"


@attrs.frozen
class Rset(Command):
    """RSET (RFC 1939 §5)."""

    VERB = "RSET"


@attrs.frozen
class Quit(Command):
    """QUIT (RFC 1939 §4 and §6)."""

    VERB = "QUIT"


@attrs.frozen
class Top(Command):
    """TOP msg n (RFC 1939 §7)."""

    msg: int
    lines: int
    VERB = "TOP"


@attrs.frozen
class Uidl(Command):
    """UIDL [msg] (RFC 1939 §7)."""

    msg: int | None = None
    VERB = "UIDL"


def _number(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > MAX_DIGITS:
        raise CommandError(f"{what} must be a decimal number")
    return int(text)


def _msg(text: str) -> int:
    value = _number(text, "message number")
    if value == 0:
        raise CommandError("message numbers start at 1")
    return value


def _arity(args: list[str], low: int, high: int, verb: str) -> None:
    if not low <= len(args) <= high:
        raise CommandError(f"wrong number of arguments for {verb}")
    if any(not a or len(a) > MAX_ARGUMENT for a in args):
        raise CommandError(f"bad argument for {verb}")


def parse_command(line: bytes) -> Command:
    """One command line (without its CRLF) as a Command, or CommandError."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError("command is not UTF-8") from None
    if any(ch < " " or ch == "\x7f" for ch in text):
        raise CommandError("control characters in command")
    keyword, _, rest = text.partition(" ")
    verb = keyword.upper()
    if verb == "PASS":
        # RFC 1939 §7: a server may treat spaces in PASS's one argument as part of
        # the password.
        if not rest:
            raise CommandError("PASS needs a password")
        return Pass(rest)
    args = rest.split(" ") if rest else []
    simple: dict[str, type[Command]] = {
        "STAT": Stat, "NOOP": Noop, "RSET": Rset, "QUIT": Quit, "CAPA": Capa, "STLS": Stls,
    }
    if verb in simple:
        _arity(args, 0, 0, verb)
        return simple[verb]()
    if verb == "USER":
        # RFC 1939 gives USER one argument; a user name is never longer than an
        # address, which may exceed 40 characters, so only the address limit applies.
        if not rest or " " in rest or len(rest) > 320:
            raise CommandError("USER needs one user name")
        return User(rest)
    if verb in ("LIST", "UIDL"):
        _arity(args, 0, 1, verb)
        msg = _msg(args[0]) if args else None
        return List(msg) if verb == "LIST" else Uidl(msg)
    if verb in ("RETR", "DELE"):
        _arity(args, 1, 1, verb)
        return Retr(_msg(args[0])) if verb == "RETR" else Dele(_msg(args[0]))
    if verb == "TOP":
        _arity(args, 2, 2, verb)
        return Top(_msg(args[0]), _number(args[1], "line count"))
    if verb == "AUTH":
        # RFC 5034 §4: the initial response is a base64 string or "=" (empty); it
        # may be longer than 40 characters (the line cap bounds it).
        if len(args) > 2 or any(not a for a in args):
            raise CommandError("AUTH takes a mechanism and an optional initial response")
        return Auth(args[0].upper() if args else None, args[1] if len(args) > 1 else None)
    if verb == "APOP":
        return Apop()
    if not keyword:
        raise CommandError("empty command")
    raise CommandError(f"unknown command {keyword[:MAX_ARGUMENT]}")
