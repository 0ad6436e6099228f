"""Commands valid in any state or before selection (RFC 3501 §6.1-6.3, RFC 9051 §6.1-6.3),
plus ENABLE (RFC 5161), ID (RFC 2971), COMPRESS (RFC 4978), UNAUTHENTICATE (RFC 8437),
IDLE (RFC 2177), NAMESPACE (RFC 2342)."""

from __future__ import annotations

import base64
import binascii
import re

import attrs

from .cmd_base import Command, is_token, to_pairs, to_upper, upper_tuple
from .encode import Encoder
from .lexer import Cursor, decode_text

_BASE64_RE = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


@attrs.frozen
class Capability(Command):
    """CAPABILITY."""

    VERB = "CAPABILITY"


@attrs.frozen
class Noop(Command):
    """NOOP."""

    VERB = "NOOP"


@attrs.frozen
class Logout(Command):
    """LOGOUT."""

    VERB = "LOGOUT"


@attrs.frozen
class StartTLS(Command):
    """STARTTLS."""

    VERB = "STARTTLS"


@attrs.frozen
class Namespace(Command):
    """NAMESPACE (RFC 2342)."""

    VERB = "NAMESPACE"


@attrs.frozen
class Idle(Command):
    """IDLE (RFC 2177); the server then reads ``DONE`` with ``CommandReader.next_line``."""

    VERB = "IDLE"


@attrs.frozen
class Check(Command):
    """CHECK."""

    VERB = "CHECK"


@attrs.frozen
class Close(Command):
    """CLOSE."""

    VERB = "CLOSE"


@attrs.frozen
class Unselect(Command):
    """UNSELECT (RFC 3691)."""

    VERB = "UNSELECT"


@attrs.frozen
class Unauthenticate(Command):
    """UNAUTHENTICATE (RFC 8437)."""

    VERB = "UNAUTHENTICATE"


def _atom_text(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not is_token(value):
        raise ValueError(f"{attribute.name} must be an atom: {value!r}")


@attrs.frozen
class Authenticate(Command):
    """``AUTHENTICATE SP auth-type [SP initial-resp]`` (RFC 3501 §6.2.2, RFC 4959 SASL-IR).

    ``initial_response`` is the decoded SASL initial response: None when absent,
    ``b""`` when sent as ``=``.
    """

    VERB = "AUTHENTICATE"

    mechanism: str = attrs.field(converter=to_upper, validator=_atom_text)
    initial_response: bytes | None = None

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Authenticate:
        c.sp()
        mechanism = c.keyword()
        initial = None
        if c.accept(b" "):
            if c.accept(b"="):
                initial = b""
            else:
                raw = c.match(_BASE64_RE, "base64")
                if not raw:
                    raise c.error("expected base64 or '='")
                try:
                    initial = base64.b64decode(raw, validate=True)
                except binascii.Error:
                    raise c.error("bad base64") from None
        return cls(tag, mechanism, initial)

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.text(self.mechanism)
        if self.initial_response is not None:
            e.sp()
            e.raw(base64.b64encode(self.initial_response) if self.initial_response else b"=")


@attrs.frozen
class Login(Command):
    """``LOGIN SP userid SP password``; both decoded as UTF-8 (undecodable octets kept
    as surrogates, so the exact bytes are recoverable)."""

    VERB = "LOGIN"

    username: str
    password: str = attrs.field(repr=False)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Login:
        c.sp()
        user = c.astring_text()
        c.sp()
        return cls(tag, user, c.astring_text())

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.astring(self.username)
        e.sp()
        e.astring(self.password)


def _nonempty_atoms(instance: object, attribute: attrs.Attribute[tuple[str, ...]],
                    value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")
    for v in value:
        if not is_token(v):
            raise ValueError(f"{attribute.name}: not an atom: {v!r}")


@attrs.frozen
class Enable(Command):
    """``ENABLE 1*(SP capability)`` (RFC 5161); capabilities upper-cased."""

    VERB = "ENABLE"

    capabilities: tuple[str, ...] = attrs.field(converter=upper_tuple, validator=_nonempty_atoms)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Enable:
        caps = []
        while c.accept(b" "):
            caps.append(c.keyword())
        if not caps:
            raise c.error("ENABLE needs a capability")
        return cls(tag, tuple(caps))

    def encode_args(self, e: Encoder) -> None:
        for cap in self.capabilities:
            e.sp()
            e.text(cap)


@attrs.frozen
class Id(Command):
    """``ID SP ("(" string SP nstring ... ")" / nil)`` (RFC 2971). ``params`` None is NIL."""

    VERB = "ID"

    params: tuple[tuple[str, str | None], ...] | None = attrs.field(
        converter=to_pairs
    )

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Id:
        c.sp()
        if c.nil():
            return cls(tag, None)
        c.open()
        params: list[tuple[str, str | None]] = []
        if not c.accept(b")"):
            while True:
                key = decode_text(c.string())
                c.sp()
                value = c.nstring()
                params.append((key, None if value is None else decode_text(value)))
                if c.accept(b")"):
                    break
                c.sp()
        c.depth -= 1
        return cls(tag, tuple(params))

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        if self.params is None:
            e.raw(b"NIL")
            return
        e.raw(b"(")
        for i, (key, value) in enumerate(self.params):
            if i:
                e.sp()
            e.string(key)
            e.sp()
            e.nstring(value)
        e.raw(b")")


@attrs.frozen
class Compress(Command):
    """``COMPRESS SP algorithm`` (RFC 4978)."""

    VERB = "COMPRESS"

    mechanism: str = attrs.field(converter=to_upper, validator=_atom_text)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Compress:
        c.sp()
        return cls(tag, c.keyword())

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.text(self.mechanism)
