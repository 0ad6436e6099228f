"""Response codes (``resp-text-code``): RFC 3501 §7.1, RFC 5530, UIDPLUS RFC 4315,
CONDSTORE RFC 7162, OBJECTID RFC 8474, METADATA RFC 5464, and friends."""

from __future__ import annotations

import re

import attrs

from .cmd_base import is_token, to_perm_flags, to_tuple, to_upper
from .encode import Encoder
from .lexer import Cursor
from .sequence import SequenceSet

#: Codes that are a bare atom.
SIMPLE_CODES = frozenset({
    "ALERT", "PARSE", "READ-ONLY", "READ-WRITE", "TRYCREATE", "NOMODSEQ", "CLOSED",
    "UIDNOTSTICKY", "NOTSAVED", "HASCHILDREN", "UNAVAILABLE", "AUTHENTICATIONFAILED",
    "AUTHORIZATIONFAILED", "EXPIRED", "PRIVACYREQUIRED", "CONTACTADMIN", "NOPERM", "INUSE",
    "EXPUNGEISSUED", "CORRUPTION", "SERVERBUG", "CLIENTBUG", "CANNOT", "LIMIT", "OVERQUOTA",
    "ALREADYEXISTS", "NONEXISTENT", "TOOBIG", "COMPRESSIONACTIVE", "UNKNOWN-CTE", "USEATTR",
    "NOTIFICATIONOVERFLOW",
})


def _check_name(instance: object, attribute: object, value: str) -> None:
    if not is_token(value) or value.upper() != value:
        raise ValueError(f"bad response code name {value!r}")


@attrs.frozen
class Code:
    """A response code that is a bare atom, e.g. ``Code("TOOBIG")``."""

    name: str = attrs.field(converter=to_upper, validator=_check_name)


@attrs.frozen
class PermanentFlags:
    """``PERMANENTFLAGS (flag-perm ...)`` (``\\*`` allowed)."""

    flags: tuple[str, ...] = attrs.field(converter=to_perm_flags)


@attrs.frozen
class UidNext:
    """``UIDNEXT n``."""

    value: int = attrs.field(validator=attrs.validators.ge(1))


@attrs.frozen
class UidValidity:
    """``UIDVALIDITY n``."""

    value: int = attrs.field(validator=attrs.validators.ge(1))


@attrs.frozen
class Unseen:
    """``UNSEEN n``."""

    value: int = attrs.field(validator=attrs.validators.ge(1))


@attrs.frozen
class HighestModseq:
    """``HIGHESTMODSEQ n`` (RFC 7162)."""

    value: int = attrs.field(validator=attrs.validators.ge(1))


@attrs.frozen
class Modified:
    """``MODIFIED sequence-set`` (RFC 7162)."""

    set: SequenceSet


@attrs.frozen
class AppendUid:
    """``APPENDUID uidvalidity uid-set`` (RFC 4315)."""

    uidvalidity: int
    uids: SequenceSet


@attrs.frozen
class CopyUid:
    """``COPYUID uidvalidity source-uids dest-uids`` (RFC 4315)."""

    uidvalidity: int
    source: SequenceSet
    destination: SequenceSet


@attrs.frozen
class CapabilityCode:
    """``CAPABILITY cap ...`` inside a status response."""

    capabilities: tuple[str, ...] = attrs.field(converter=to_tuple)


@attrs.frozen
class BadCharset:
    """``BADCHARSET [(charset ...)]``."""

    charsets: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)


@attrs.frozen
class MailboxId:
    """``MAILBOXID (objectid)`` (RFC 8474)."""

    id: str


@attrs.frozen
class MetadataCode:
    """``METADATA (LONGENTRIES n / MAXSIZE n / TOOMANY / NOPRIVATE)`` (RFC 5464 §4.2.1)."""

    kind: str = attrs.field(
        converter=to_upper,
        validator=attrs.validators.in_(("LONGENTRIES", "MAXSIZE", "TOOMANY", "NOPRIVATE")),
    )
    value: int | None = None

    def __attrs_post_init__(self) -> None:
        if (self.kind in ("LONGENTRIES", "MAXSIZE")) != (self.value is not None):
            raise ValueError("LONGENTRIES and MAXSIZE, and only they, take a number")


_CODE_TEXT_RE = re.compile(rb"[^\]\r\n\x00]+")


@attrs.frozen
class OtherCode:
    """Any other ``atom [SP 1*<any TEXT-CHAR except "]">]``."""

    name: str = attrs.field(converter=to_upper, validator=_check_name)
    text: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.text is not None and not _CODE_TEXT_RE.fullmatch(
                self.text.encode("utf-8", "surrogateescape")):
            raise ValueError(f"bad response code text {self.text!r}")
        if self.text is None and self.name in SIMPLE_CODES:
            raise ValueError("use Code for argument-less codes")


ResponseCode = (
    Code | PermanentFlags | UidNext | UidValidity | Unseen | HighestModseq | Modified
    | AppendUid | CopyUid | CapabilityCode | BadCharset | MailboxId | MetadataCode | OtherCode
)


_NUMBER_CODES: dict[str, type[UidNext | UidValidity | Unseen | HighestModseq]] = {
    "UIDNEXT": UidNext, "UIDVALIDITY": UidValidity, "UNSEEN": Unseen,
    "HIGHESTMODSEQ": HighestModseq,
}


def encode_code(e: Encoder, code: ResponseCode) -> None:
    """Write ``"[" resp-text-code "]"``."""
    e.raw(b"[")
    if isinstance(code, Code):
        e.text(code.name)
    elif isinstance(code, PermanentFlags):
        e.raw(b"PERMANENTFLAGS ")
        e.flag_list(code.flags)
    elif isinstance(code, UidNext | UidValidity | Unseen | HighestModseq):
        name = {UidNext: "UIDNEXT", UidValidity: "UIDVALIDITY", Unseen: "UNSEEN",
                HighestModseq: "HIGHESTMODSEQ"}[type(code)]
        e.text(f"{name} {code.value}")
    elif isinstance(code, Modified):
        e.text(f"MODIFIED {code.set}")
    elif isinstance(code, AppendUid):
        e.text(f"APPENDUID {code.uidvalidity} {code.uids}")
    elif isinstance(code, CopyUid):
        e.text(f"COPYUID {code.uidvalidity} {code.source} {code.destination}")
    elif isinstance(code, CapabilityCode):
        e.text(" ".join(("CAPABILITY", *code.capabilities)))
    elif isinstance(code, BadCharset):
        e.raw(b"BADCHARSET")
        if code.charsets:
            e.raw(b" (")
            for i, cs in enumerate(code.charsets):
                if i:
                    e.sp()
                e.astring(cs)
            e.raw(b")")
    elif isinstance(code, MailboxId):
        e.text(f"MAILBOXID ({code.id})")
    elif isinstance(code, MetadataCode):
        e.text(f"METADATA {code.kind}" + ("" if code.value is None else f" {code.value}"))
    else:
        e.text(code.name)
        if code.text is not None:
            e.raw(b" " + code.text.encode("utf-8", "surrogateescape"))
    e.raw(b"]")


_CAP_RE = re.compile(rb"[!#$&'+-\[^-z|}~]+")


def parse_code(c: Cursor) -> ResponseCode:
    """``"[" resp-text-code "]"`` (the "[" already seen at the cursor)."""
    c.expect(b"[")
    name = c.keyword()
    code: ResponseCode
    if name in SIMPLE_CODES:
        code = Code(name)
    elif name == "PERMANENTFLAGS":
        c.sp()
        code = PermanentFlags(tuple(c.paren_list(c.flag_perm)))
    elif name in ("UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ"):
        c.sp()
        n = c.nz_number(2**63 - 1 if name == "HIGHESTMODSEQ" else 2**32 - 1)
        code = _NUMBER_CODES[name](n)
    elif name == "MODIFIED":
        c.sp()
        code = Modified(c.sequence_set(allow_saved=False))
    elif name == "APPENDUID":
        c.sp()
        validity = c.nz_number()
        c.sp()
        code = AppendUid(validity, c.sequence_set(allow_saved=False))
    elif name == "COPYUID":
        c.sp()
        validity = c.nz_number()
        c.sp()
        src = c.sequence_set(allow_saved=False)
        c.sp()
        code = CopyUid(validity, src, c.sequence_set(allow_saved=False))
    elif name == "CAPABILITY":
        caps = []
        while c.accept(b" "):
            caps.append(c.match(_CAP_RE, "capability").decode("ascii"))
        code = CapabilityCode(tuple(caps))
    elif name == "BADCHARSET":
        charsets: list[str] = []
        if c.accept(b" "):
            charsets = c.paren_list(c.astring_text, allow_empty=False)
        code = BadCharset(tuple(charsets))
    elif name == "MAILBOXID":
        c.sp()
        c.expect(b"(")
        code = MailboxId(c.atom().decode("ascii"))
        c.expect(b")")
    elif name == "METADATA":
        c.sp()
        kind = c.keyword()
        value = None
        if kind in ("LONGENTRIES", "MAXSIZE"):
            c.sp()
            value = c.number()
        code = MetadataCode(kind, value)
    else:
        text = None
        if c.accept(b" "):
            text = c.match(_CODE_TEXT_RE, "code text").decode("utf-8", "surrogateescape")
        code = OtherCode(name, text) if text is not None or name in SIMPLE_CODES else Code(name)
    c.expect(b"]")
    return code

