"""The command table: verb → command class, and whole-command parse and serialize.

``command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF``
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from .cmd_acl import DeleteAcl, GetAcl, ListRights, MyRights, SetAcl
from .cmd_any import (
    Authenticate,
    Capability,
    Check,
    Close,
    Compress,
    Enable,
    Id,
    Idle,
    Login,
    Logout,
    Namespace,
    Noop,
    StartTLS,
    Unauthenticate,
    Unselect,
)
from .cmd_append import Append
from .cmd_base import Command
from .cmd_ext import GetMetadata, GetQuota, Notify, SetMetadata, SetQuota
from .cmd_mailbox import (
    Create,
    Delete,
    Examine,
    GetQuotaRoot,
    List,
    Lsub,
    Rename,
    Select,
    Status,
    Subscribe,
    Unsubscribe,
)
from .cmd_message import Copy, Expunge, Fetch, Move, Store
from .cmd_search import CancelUpdate, Search, Sort, Thread
from .cmd_urlauth import GenUrlAuth, ResetKey, UrlFetch
from .encode import Encoder
from .errors import ImapProtocolError, ParseError, UnknownCommand
from .lexer import TAG_RE, Cursor

COMMAND_CLASSES: tuple[type[Command], ...] = (
    Capability, Noop, Logout, StartTLS, Authenticate, Login, Enable, Id, Compress,
    Unauthenticate, Idle, Namespace, Check, Close, Unselect, Select, Examine, Create, Delete,
    Rename, Subscribe, Unsubscribe, List, Lsub, Status, Append, Expunge, Search, Fetch, Store,
    Copy, Move, Sort, Thread, GetQuota, GetQuotaRoot, SetQuota, GetMetadata, SetMetadata,
    Notify, CancelUpdate, SetAcl, DeleteAcl, GetAcl, ListRights, MyRights, GenUrlAuth,
    ResetKey, UrlFetch,
)
COMMANDS: dict[str, type[Command]] = {cls.VERB: cls for cls in COMMAND_CLASSES}
UID_COMMANDS: dict[str, type[Command]] = {
    cls.VERB: cls for cls in COMMAND_CLASSES if cls.UID_FORM
}

_VERB_RE = re.compile(rb"[A-Za-z]+")
_HEAD_RE = re.compile(rb"([!#$&',-\[\]^-z|}~]+) (?:([Uu][Ii][Dd]) )?([A-Za-z]+)(?![A-Za-z])")


def parse_tag(buf: bytes) -> tuple[str, int]:
    """The tag at the start of ``buf`` and the index after the following SP."""
    m = TAG_RE.match(buf)
    if m is None:
        raise ParseError("missing or invalid tag", tag=None)
    tag = m.group().decode("ascii")
    if buf[m.end() : m.end() + 1] != b" ":
        raise ParseError("expected SP after tag", tag=tag)
    return tag, m.end() + 1


def parse_command(buf: bytes, *, utf8: bool = False, max_depth: int = 64) -> Command:
    """Parse one framed command (without its final CRLF; literals inline as
    ``{n}\\r\\n<octets>``). Raises only :class:`ImapProtocolError` subclasses."""
    head = _HEAD_RE.match(buf)
    if head is not None:
        # Fast path: "tag SP [UID SP] verb" in one match.
        tag = head.group(1).decode("ascii")
        verb = head.group(3).decode("ascii").upper()
        uid = head.group(2) is not None
        cls = (UID_COMMANDS if uid else COMMANDS).get(verb)
        if cls is not None:
            rest = buf[head.end():]
            key = None
            if cls in _REMEMBERED and len(rest) <= _REMEMBER_MAX and b"{" not in rest:
                key = (cls, uid, rest, utf8, max_depth)
                known = _PARSED.get(key)
                if known is not None:
                    return _retagged(known, tag)
            c = Cursor(buf, head.end(), tag=tag, max_depth=max_depth, utf8=utf8)
            cmd = _parse_args(c, cls, tag, verb, uid)
            if key is not None:
                if len(_PARSED) >= _REMEMBER_COMMANDS:
                    _PARSED.clear()
                _PARSED[key] = cmd
            return cmd
    tag, pos = parse_tag(buf)
    c = Cursor(buf, pos, tag=tag, max_depth=max_depth, utf8=utf8)
    m = _VERB_RE.match(buf, pos)
    if m is None:
        raise UnknownCommand("missing command name", tag=tag)
    verb = m.group().decode("ascii").upper()
    c.pos = m.end()
    uid = False
    if verb == "UID":
        c.sp()
        m = _VERB_RE.match(buf, c.pos)
        verb = m.group().decode("ascii").upper() if m else ""
        cls = UID_COMMANDS.get(verb)
        if m is None or cls is None:
            raise UnknownCommand(f"unknown UID command {verb!r}", tag=tag)
        c.pos = m.end()
        uid = True
    else:
        found = COMMANDS.get(verb)
        if found is None:
            raise UnknownCommand(f"unknown command {verb!r}", tag=tag)
        cls = found
    return _parse_args(c, cls, tag, verb, uid)


# Clients send the same few commands again and again (a FETCH of the same items,
# STATUS of the same mailbox, the same LIST), and parsing one was ~10% of a simple
# command's CPU: a command parsed is remembered by its bytes after the verb, and the
# same bytes give its copy with the new tag. Parsing is a function of those bytes
# (and of UTF8=ACCEPT and the nesting cap, in the key) alone, and a parsed command is
# immutable (frozen, its fields tuples and frozen values). Only commands of these
# classes, without a literal, are remembered: never LOGIN's or AUTHENTICATE's
# credentials, nor an APPEND's message.
_REMEMBERED: frozenset[type[Command]] = frozenset({
    Fetch, Store, Status, List, Lsub, Select, Examine, Search, Copy, Move, Expunge,
    Noop, Check, Idle, Close, Unselect})
#: Longest argument bytes remembered; most commands remembered at once.
_REMEMBER_MAX = 512
_REMEMBER_COMMANDS = 2048
_PARSED: dict[tuple[Any, ...], Command] = {}
_FIELD_NAMES: dict[type[Command], tuple[str, ...]] = {}


def _retagged(cmd: Command, tag: str) -> Command:
    """``cmd`` with ``tag`` (a tag the caller's match has checked, as the class's own
    validator would): its other fields shared, as they are immutable."""
    cls = type(cmd)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(a.name for a in attrs.fields(cls)
                                          if a.name != "tag")
    copy = object.__new__(cls)
    setter = object.__setattr__
    setter(copy, "tag", tag)
    for name in names:
        setter(copy, name, getattr(cmd, name))
    return copy


def _parse_args(c: Cursor, cls: type[Command], tag: str, verb: str, uid: bool) -> Command:
    try:
        cmd = cls.parse_args(c, tag, uid)
    except ImapProtocolError:
        raise
    except (ValueError, TypeError) as exc:
        # Value validation of the typed classes (e.g. a bad flag) is a syntax error
        # from the client's point of view.
        raise ParseError(f"invalid {verb} arguments: {exc}", tag=tag) from None
    except RecursionError:
        raise ParseError("command nested too deeply", tag=tag) from None
    c.end()
    return cmd  # type: ignore[no-any-return]


def encode_command(e: Encoder, cmd: Command) -> None:
    """Write ``cmd`` (tag, optional UID, verb, arguments) without the final CRLF."""
    e.text(cmd.tag)
    e.raw(b" UID " if getattr(cmd, "uid", False) else b" ")
    e.text(cmd.VERB)
    cmd.encode_args(e)


def serialize_command(cmd: Command, *, literal_plus: bool = False, utf8: bool = False) -> bytes:
    """The wire form of a client command, CRLF-terminated.

    Literals are synchronizing (``{n}``) unless ``literal_plus``; a client must then
    wait for ``+`` after each ``{n}\\r\\n``. Mailbox names are modified UTF-7 unless
    ``utf8`` (after ENABLE UTF8=ACCEPT).
    """
    e = Encoder(utf8=utf8, literal_plus=literal_plus)
    encode_command(e, cmd)
    e.raw(b"\r\n")
    return e.join()
