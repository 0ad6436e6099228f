"""Serializing server responses: whole bytes, or chunks with streamed literals."""

from __future__ import annotations

from collections.abc import Iterator

from .bodystructure import (
    Address,
    BodyExt,
    BodyStructure,
    Disposition,
    Envelope,
    MultiPart,
    SinglePart,
)
from .cmd_acl import AclData, ListRightsData, MyRightsData
from .encode import Encoder, LiteralBody
from .resp_fetch import FetchData
from .responses import (
    CapabilityData,
    Continuation,
    EnabledData,
    ESearchData,
    ExistsData,
    ExpungeData,
    FlagsData,
    IdData,
    ListData,
    LsubData,
    MetadataChanged,
    MetadataData,
    NamespaceData,
    QuotaData,
    QuotaRootData,
    RecentData,
    SaslChallenge,
    SearchData,
    SortData,
    StatusData,
    TaggedStatus,
    ThreadData,
    UntaggedStatus,
    VanishedData,
)

Response = (
    TaggedStatus | UntaggedStatus | Continuation | SaslChallenge | CapabilityData | EnabledData
    | ListData | LsubData | StatusData | SearchData | SortData | ESearchData | FlagsData
    | ExistsData | RecentData | ExpungeData | VanishedData | FetchData | ThreadData | QuotaData
    | QuotaRootData | MetadataData | MetadataChanged | NamespaceData | IdData
    | AclData | ListRightsData | MyRightsData
)

__all__ = [
    "Address", "BodyExt", "BodyStructure", "Disposition", "Envelope", "MultiPart", "Response",
    "SinglePart", "serialize", "serialize_chunks",
]


def serialize(response: Response, *, utf8: bool = False) -> bytes:
    """The wire form of ``response``, CRLF-terminated.

    Strings are written as atom, quoted string or literal as their content allows
    (8-bit, CR, LF or NUL data always as a literal; literal8 for BINARY data with
    NUL). ``utf8`` (after ENABLE UTF8=ACCEPT) writes mailbox names as UTF-8 and
    allows UTF-8 in quoted strings. Raises TypeError if the response holds a
    :class:`LiteralBody` (use :func:`serialize_chunks`).
    """
    e = Encoder(utf8=utf8)
    response.encode(e)
    e.raw(b"\r\n")
    return e.join()


def serialize_chunks(response: Response, *, utf8: bool = False) -> Iterator[bytes | LiteralBody]:
    """Like :func:`serialize`, but yields bytes chunks and, for each streamed
    literal, the :class:`LiteralBody` placeholder right after its ``{size}\\r\\n``
    prefix: the caller then writes exactly ``size`` octets from its ``source``."""
    e = Encoder(utf8=utf8)
    response.encode(e)
    e.raw(b"\r\n")
    pending: list[bytes] = []
    for part in e.out:
        if isinstance(part, bytes):
            pending.append(part)
        else:
            if pending:
                yield b"".join(pending)
                pending = []
            yield part
    if pending:
        yield b"".join(pending)
