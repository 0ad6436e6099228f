"""Mailbox commands: SELECT/EXAMINE (with CONDSTORE/QRESYNC, RFC 7162), CREATE
(CREATE-SPECIAL-USE, RFC 6154), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST
(LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819), LSUB, STATUS (STATUS=SIZE RFC 8438)."""

from __future__ import annotations

import enum

import attrs

from .cmd_base import Command, to_flags, to_mailbox, to_tuple, upper_tuple
from .encode import Encoder
from .lexer import Cursor
from .sequence import SequenceSet


class StatusItem(enum.Enum):
    """``status-att`` names (RFC 3501, 7162, 8438, 8474, 7889, 9051)."""

    __hash__ = object.__hash__  # (as FetchAttr's: grammar/fetch_items.py)

    MESSAGES = "MESSAGES"
    RECENT = "RECENT"
    UIDNEXT = "UIDNEXT"
    UIDVALIDITY = "UIDVALIDITY"
    UNSEEN = "UNSEEN"
    DELETED = "DELETED"
    SIZE = "SIZE"
    HIGHESTMODSEQ = "HIGHESTMODSEQ"
    MAILBOXID = "MAILBOXID"
    APPENDLIMIT = "APPENDLIMIT"
    DELETED_STORAGE = "DELETED-STORAGE"


_STATUS_BY_NAME = {item.value: item for item in StatusItem}


def parse_status_att(c: Cursor) -> StatusItem:
    """``status-att``."""
    item = _STATUS_BY_NAME.get(c.keyword())
    if item is None:
        raise c.error("unknown status item")
    return item


def _status_items(c: Cursor) -> tuple[StatusItem, ...]:
    return tuple(c.paren_list(lambda: parse_status_att(c), allow_empty=False))


def _encode_status_items(e: Encoder, items: tuple[StatusItem, ...]) -> None:
    e.text("(" + " ".join(i.value for i in items) + ")")


@attrs.frozen
class QresyncParams:
    """``(QRESYNC (uidvalidity modseq [known-uids] [(seq-set uid-set)]))`` (RFC 7162 §3.2.5)."""

    uidvalidity: int = attrs.field(validator=attrs.validators.ge(1))
    modseq: int = attrs.field(validator=attrs.validators.ge(1))
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@attrs.frozen
class _SelectBase(Command):
    mailbox: str = attrs.field(converter=to_mailbox)
    condstore: bool = False
    qresync: QresyncParams | None = None

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> _SelectBase:
        c.sp()
        mailbox = c.mailbox()
        condstore = False
        qresync = None
        if c.accept(b" "):
            c.open()
            while True:
                if c.accept_word(b"CONDSTORE"):
                    condstore = True
                elif c.accept_word(b"QRESYNC") and qresync is None:
                    c.sp()
                    qresync = _parse_qresync(c)
                else:
                    raise c.error("unknown select parameter")
                if c.accept(b")"):
                    break
                c.sp()
            c.depth -= 1
        return cls(tag, mailbox, condstore, qresync)

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.mailbox(self.mailbox)
        params = []
        if self.condstore:
            params.append(b"CONDSTORE")
        if self.qresync is not None:
            q = self.qresync
            inner = b"%d %d" % (q.uidvalidity, q.modseq)
            if q.known_uids is not None:
                inner += b" " + str(q.known_uids).encode()
            if q.seq_match is not None:
                inner += b" (%s %s)" % (str(q.seq_match[0]).encode(), str(q.seq_match[1]).encode())
            params.append(b"QRESYNC (" + inner + b")")
        if params:
            e.raw(b" (" + b" ".join(params) + b")")


def _parse_qresync(c: Cursor) -> QresyncParams:
    c.open()
    uidvalidity = c.nz_number()
    c.sp()
    modseq = c.nz_number(2**63 - 1)
    known = None
    match = None
    if c.accept(b" "):
        if c.peek() != 0x28:
            known = c.sequence_set(allow_saved=False)
            if c.accept(b" "):
                match = _parse_seq_match(c)
        else:
            match = _parse_seq_match(c)
    c.close()
    return QresyncParams(uidvalidity, modseq, known, match)


def _parse_seq_match(c: Cursor) -> tuple[SequenceSet, SequenceSet]:
    c.open()
    seqs = c.sequence_set(allow_saved=False)
    c.sp()
    uids = c.sequence_set(allow_saved=False)
    c.close()
    return (seqs, uids)


@attrs.frozen
class Select(_SelectBase):
    """``SELECT SP mailbox [SP "(" select-param *(SP select-param) ")"]`` (RFC 4466)."""

    VERB = "SELECT"


@attrs.frozen
class Examine(_SelectBase):
    """``EXAMINE``: SELECT read-only, same parameters."""

    VERB = "EXAMINE"


_USE_ATTRS = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")


@attrs.frozen
class Create(Command):
    """``CREATE SP mailbox [SP "(" USE SP "(" use-attrs ")" ")"]`` (RFC 6154 §3)."""

    VERB = "CREATE"

    mailbox: str = attrs.field(converter=to_mailbox)
    special_use: tuple[str, ...] = attrs.field(default=(), converter=to_flags)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Create:
        c.sp()
        mailbox = c.mailbox()
        use: tuple[str, ...] = ()
        if c.accept(b" "):
            c.open()
            if not c.accept_word(b"USE"):
                raise c.error("unknown CREATE parameter")
            c.sp()
            use = c.flag_list()
            c.close()
        return cls(tag, mailbox, use)

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.mailbox(self.mailbox)
        if self.special_use:
            e.raw(b" (USE ")
            e.flag_list(self.special_use)
            e.raw(b")")


@attrs.frozen
class _OneMailbox(Command):
    mailbox: str = attrs.field(converter=to_mailbox)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> _OneMailbox:
        c.sp()
        return cls(tag, c.mailbox())

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.mailbox(self.mailbox)


@attrs.frozen
class Delete(_OneMailbox):
    """``DELETE SP mailbox``."""

    VERB = "DELETE"


@attrs.frozen
class Subscribe(_OneMailbox):
    """``SUBSCRIBE SP mailbox``."""

    VERB = "SUBSCRIBE"


@attrs.frozen
class Unsubscribe(_OneMailbox):
    """``UNSUBSCRIBE SP mailbox``."""

    VERB = "UNSUBSCRIBE"


@attrs.frozen
class GetQuotaRoot(_OneMailbox):
    """``GETQUOTAROOT SP mailbox`` (RFC 9208)."""

    VERB = "GETQUOTAROOT"


@attrs.frozen
class Rename(Command):
    """``RENAME SP mailbox SP mailbox``."""

    VERB = "RENAME"

    old: str = attrs.field(converter=to_mailbox)
    new: str = attrs.field(converter=to_mailbox)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Rename:
        c.sp()
        old = c.mailbox()
        c.sp()
        return cls(tag, old, c.mailbox())

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.mailbox(self.old)
        e.sp()
        e.mailbox(self.new)


LIST_SELECT_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
LIST_RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "MYRIGHTS"})


def _check_select_opts(instance: object, attribute: object, value: tuple[str, ...]) -> None:
    for opt in value:
        if opt not in LIST_SELECT_OPTIONS:
            raise ValueError(f"unknown LIST selection option {opt!r}")
    # RFC 5258 §3: RECURSIVEMATCH only together with a base option that it modifies.
    if "RECURSIVEMATCH" in value and not ({"SUBSCRIBED", "SPECIAL-USE"} & set(value)):
        raise ValueError("RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE")


def _check_return_opts(instance: object, attribute: object, value: tuple[str, ...]) -> None:
    for opt in value:
        if opt not in LIST_RETURN_OPTIONS:
            raise ValueError(f"unknown LIST return option {opt!r}")


def _check_patterns(instance: object, attribute: object, value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("LIST needs at least one pattern")


@attrs.frozen
class List(Command):
    """``LIST [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]``.

    ``return_status`` holds the items of ``RETURN (STATUS (...))`` (RFC 5819), None
    when not asked; other return options are in ``return_options``.
    """

    VERB = "LIST"

    reference: str
    patterns: tuple[str, ...] = attrs.field(converter=to_tuple, validator=_check_patterns)
    selection_options: tuple[str, ...] = attrs.field(
        default=(), converter=upper_tuple, validator=_check_select_opts
    )
    return_options: tuple[str, ...] = attrs.field(
        default=(), converter=upper_tuple, validator=_check_return_opts
    )
    return_status: tuple[StatusItem, ...] | None = None

    @property
    def extended(self) -> bool:
        """Whether this is an extended LIST (RFC 5258 §3)."""
        return bool(
            self.selection_options or self.return_options or self.return_status is not None
            or len(self.patterns) > 1
        )

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> List:
        c.sp()
        select: list[str] = []
        if c.peek() == 0x28:
            select = c.paren_list(c.keyword)
            c.sp()
        reference = c.decode_mailbox(c.astring())
        c.sp()
        if c.peek() == 0x28:
            patterns = tuple(c.paren_list(c.list_mailbox, allow_empty=False))
        else:
            patterns = (c.list_mailbox(),)
        returns: list[str] = []
        status = None
        if c.accept(b" "):
            if not c.accept_word(b"RETURN"):
                raise c.error("expected RETURN")
            c.sp()
            c.open()
            if not c.accept(b")"):
                while True:
                    opt = c.keyword()
                    if opt == "STATUS" and status is None:
                        c.sp()
                        status = _status_items(c)
                    elif opt in LIST_RETURN_OPTIONS:
                        returns.append(opt)
                    else:
                        raise c.error("unknown LIST return option")
                    if c.accept(b")"):
                        break
                    c.sp()
            c.depth -= 1
        try:
            return cls(tag, reference, patterns, tuple(select), tuple(returns), status)
        except ValueError as exc:
            raise c.error(str(exc)) from None

    def encode_args(self, e: Encoder) -> None:
        if self.selection_options:
            e.text(" (" + " ".join(self.selection_options) + ")")
        e.sp()
        e.astring(e.mailbox_bytes(self.reference))
        e.sp()
        if len(self.patterns) == 1 and not self.extended:
            e.list_mailbox(self.patterns[0])
        else:
            e.raw(b"(")
            for i, p in enumerate(self.patterns):
                if i:
                    e.sp()
                e.list_mailbox(p)
            e.raw(b")")
        if self.return_options or self.return_status is not None:
            opts = list(self.return_options)
            if self.return_status is not None:
                opts.append("STATUS (" + " ".join(i.value for i in self.return_status) + ")")
            e.text(" RETURN (" + " ".join(opts) + ")")


@attrs.frozen
class Lsub(Command):
    """``LSUB SP mailbox SP list-mailbox``."""

    VERB = "LSUB"

    reference: str
    pattern: str

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Lsub:
        c.sp()
        reference = c.decode_mailbox(c.astring())
        c.sp()
        return cls(tag, reference, c.list_mailbox())

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.astring(e.mailbox_bytes(self.reference))
        e.sp()
        e.list_mailbox(self.pattern)


def _nonempty(instance: object, attribute: attrs.Attribute[tuple[object, ...]],
              value: tuple[object, ...]) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


@attrs.frozen
class Status(Command):
    """``STATUS SP mailbox SP "(" status-att *(SP status-att) ")"``."""

    VERB = "STATUS"

    mailbox: str = attrs.field(converter=to_mailbox)
    items: tuple[StatusItem, ...] = attrs.field(converter=to_tuple, validator=_nonempty)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Status:
        c.sp()
        mailbox = c.mailbox()
        c.sp()
        return cls(tag, mailbox, _status_items(c))

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.mailbox(self.mailbox)
        e.sp()
        _encode_status_items(e, self.items)

