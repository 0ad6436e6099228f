"""ACL (RFC 4314 §3, §6): SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS and their
untagged responses ACL, LISTRIGHTS, MYRIGHTS.

The grammar keeps identifiers and rights as the strings the client sent: what a
rights letter means is the store's business (``duck/store/rights.py``).
"""

from __future__ import annotations

import attrs

from .cmd_base import Command, to_mailbox, to_pairs, to_tuple
from .encode import Encoder
from .lexer import Cursor


def _mailbox_identifier(c: Cursor) -> tuple[str, str]:
    c.sp()
    mailbox = c.mailbox()
    c.sp()
    return mailbox, c.astring_text()


@attrs.frozen
class SetAcl(Command):
    """``"SETACL" SP mailbox SP identifier SP mod-rights``; ``mod-rights`` is an
    astring whose first character may be ``+`` or ``-`` (RFC 4314 §3.1)."""

    VERB = "SETACL"

    mailbox: str = attrs.field(converter=to_mailbox)
    identifier: str
    rights: str

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> SetAcl:
        mailbox, identifier = _mailbox_identifier(c)
        c.sp()
        return cls(tag, mailbox, identifier, c.astring_text())

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.mailbox(self.mailbox)
        e.sp()
        e.astring(self.identifier)
        e.sp()
        e.astring(self.rights)


@attrs.frozen
class DeleteAcl(Command):
    """``"DELETEACL" SP mailbox SP identifier`` (RFC 4314 §3.2)."""

    VERB = "DELETEACL"

    mailbox: str = attrs.field(converter=to_mailbox)
    identifier: str

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> DeleteAcl:
        return cls(tag, *_mailbox_identifier(c))

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.mailbox(self.mailbox)
        e.sp()
        e.astring(self.identifier)


@attrs.frozen
class ListRights(Command):
    """``"LISTRIGHTS" SP mailbox SP identifier`` (RFC 4314 §3.4)."""

    VERB = "LISTRIGHTS"

    mailbox: str = attrs.field(converter=to_mailbox)
    identifier: str

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> ListRights:
        return cls(tag, *_mailbox_identifier(c))

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.mailbox(self.mailbox)
        e.sp()
        e.astring(self.identifier)


@attrs.frozen
class _AclMailbox(Command):
    mailbox: str = attrs.field(converter=to_mailbox)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> _AclMailbox:
        c.sp()
        return cls(tag, c.mailbox())

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.mailbox(self.mailbox)


@attrs.frozen
class GetAcl(_AclMailbox):
    """``"GETACL" SP mailbox`` (RFC 4314 §3.3)."""

    VERB = "GETACL"


@attrs.frozen
class MyRights(_AclMailbox):
    """``"MYRIGHTS" SP mailbox`` (RFC 4314 §3.5)."""

    VERB = "MYRIGHTS"


# -- responses ---------------------------------------------------------------------


@attrs.frozen
class AclData:
    """``"ACL" SP mailbox *(SP identifier SP rights)`` (RFC 4314 §3.6)."""

    mailbox: str
    entries: tuple[tuple[str, str], ...] = attrs.field(converter=to_pairs)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* ACL ")
        e.mailbox(self.mailbox)
        for identifier, rights in self.entries or ():
            e.sp()
            e.astring(identifier)
            e.sp()
            e.astring(rights)


@attrs.frozen
class ListRightsData:
    """``"LISTRIGHTS" SP mailbox SP identifier SP rights *(SP rights)`` (RFC 4314
    §3.7): the rights always granted, then groups of rights that may be granted."""

    mailbox: str
    identifier: str
    required: str
    optional: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* LISTRIGHTS ")
        e.mailbox(self.mailbox)
        e.sp()
        e.astring(self.identifier)
        e.sp()
        e.astring(self.required)
        for group in self.optional:
            e.sp()
            e.astring(group)


@attrs.frozen
class MyRightsData:
    """``"MYRIGHTS" SP mailbox SP rights`` (RFC 4314 §3.8; also after LIST with
    ``RETURN (MYRIGHTS)``, RFC 8440)."""

    mailbox: str
    rights: str

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* MYRIGHTS ")
        e.mailbox(self.mailbox)
        e.sp()
        e.astring(self.rights)


def parse_acl(c: Cursor) -> AclData:
    """``acl-data`` after its keyword."""
    c.sp()
    mailbox = c.decode_mailbox(c.astring())
    entries = []
    while c.accept(b" "):
        identifier = c.astring_text()
        c.sp()
        entries.append((identifier, c.astring_text()))
    return AclData(mailbox, tuple(entries))


def parse_listrights(c: Cursor) -> ListRightsData:
    """``listrights-data`` after its keyword."""
    c.sp()
    mailbox = c.decode_mailbox(c.astring())
    c.sp()
    identifier = c.astring_text()
    c.sp()
    required = c.astring_text()
    optional = []
    while c.accept(b" "):
        optional.append(c.astring_text())
    return ListRightsData(mailbox, identifier, required, tuple(optional))


def parse_myrights(c: Cursor) -> MyRightsData:
    """``myrights-data`` after its keyword."""
    c.sp()
    mailbox = c.decode_mailbox(c.astring())
    c.sp()
    return MyRightsData(mailbox, c.astring_text())
