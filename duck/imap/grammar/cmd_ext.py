"""QUOTA (RFC 9208), METADATA (RFC 5464) and NOTIFY (RFC 5465) commands."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .cmd_base import Command, is_token, to_mailbox, to_pairs, to_tuple, to_upper
from .encode import Encoder
from .fetch_items import FetchItem, encode_fetch_att, parse_fetch_att
from .lexer import Cursor, decode_text


@attrs.frozen
class GetQuota(Command):
    """``GETQUOTA SP quota-root-name``."""

    VERB = "GETQUOTA"

    root: str

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> GetQuota:
        c.sp()
        return cls(tag, c.astring_text())

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.astring(self.root)


def _check_resources(instance: object, attribute: object,
                     value: tuple[tuple[str, int], ...]) -> None:
    for name, limit in value:
        if not is_token(name) or not 0 <= limit <= 2**63 - 1:
            raise ValueError(f"bad quota resource {name!r} {limit!r}")


def _to_resources(value: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    return tuple((n.upper(), lim) for n, lim in value)


@attrs.frozen
class SetQuota(Command):
    """``SETQUOTA SP quota-root-name SP "(" [resource-name SP limit ...] ")"``."""

    VERB = "SETQUOTA"

    root: str
    limits: tuple[tuple[str, int], ...] = attrs.field(
        converter=_to_resources, validator=_check_resources
    )

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> SetQuota:
        c.sp()
        root = c.astring_text()
        c.sp()

        def resource() -> tuple[str, int]:
            name = c.keyword()
            c.sp()
            return (name, c.number64())

        return cls(tag, root, tuple(c.paren_list(resource)))

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.astring(self.root)
        e.text(" (" + " ".join(f"{n} {lim}" for n, lim in self.limits) + ")")


def _check_entries(instance: object, attribute: object, value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("at least one metadata entry")
    for entry in value:
        _check_entry(entry)


def _check_entry(entry: str) -> None:
    # RFC 5464 §3.2: entry names start with "/" and avoid wildcards and "//".
    if (not entry.startswith("/") or "//" in entry or entry.endswith("/") or "*" in entry
            or "%" in entry or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in entry)):
        raise ValueError(f"bad metadata entry name {entry!r}")


def _parse_entry(c: Cursor) -> str:
    entry = decode_text(c.astring())
    try:
        _check_entry(entry)
    except ValueError as exc:
        raise c.error(str(exc)) from None
    return entry


@attrs.frozen
class GetMetadata(Command):
    """``GETMETADATA [SP "(" options ")"] SP mailbox SP entries``; ``mailbox`` "" is the
    server. ``depth`` is "0", "1" or "infinity" when given."""

    VERB = "GETMETADATA"

    mailbox: str = attrs.field(converter=to_mailbox)
    entries: tuple[str, ...] = attrs.field(converter=to_tuple, validator=_check_entries)
    maxsize: int | None = None
    depth: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.in_(("0", "1", "infinity"))),
    )

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> GetMetadata:
        c.sp()
        maxsize = None
        depth = None
        if c.peek() == 0x28:
            c.open()
            while True:
                if c.accept_word(b"MAXSIZE") and maxsize is None:
                    c.sp()
                    maxsize = c.number()
                elif c.accept_word(b"DEPTH") and depth is None:
                    c.sp()
                    word = c.atom().decode("ascii").lower()
                    if word not in ("0", "1", "infinity"):
                        raise c.error("bad DEPTH")
                    depth = word
                else:
                    raise c.error("unknown GETMETADATA option")
                if c.accept(b")"):
                    break
                c.sp()
            c.depth -= 1
            c.sp()
        mailbox = c.mailbox()
        c.sp()
        if c.peek() == 0x28:
            entries = tuple(c.paren_list(lambda: _parse_entry(c), allow_empty=False))
        else:
            entries = (_parse_entry(c),)
        return cls(tag, mailbox, entries, maxsize, depth)

    def encode_args(self, e: Encoder) -> None:
        opts = []
        if self.maxsize is not None:
            opts.append(f"MAXSIZE {self.maxsize}")
        if self.depth is not None:
            opts.append(f"DEPTH {self.depth}")
        if opts:
            e.text(" (" + " ".join(opts) + ")")
        e.sp()
        e.mailbox(self.mailbox)
        e.raw(b" (")
        for i, entry in enumerate(self.entries):
            if i:
                e.sp()
            e.astring(entry)
        e.raw(b")")


def _check_entry_values(instance: object, attribute: object,
                        value: tuple[tuple[str, bytes | None], ...]) -> None:
    if not value:
        raise ValueError("at least one metadata entry")
    for entry, _ in value:
        _check_entry(entry)


@attrs.frozen
class SetMetadata(Command):
    """``SETMETADATA SP mailbox SP "(" entry SP value *(...) ")"``; value None is NIL
    (remove the entry)."""

    VERB = "SETMETADATA"

    mailbox: str = attrs.field(converter=to_mailbox)
    entries: tuple[tuple[str, bytes | None], ...] = attrs.field(
        converter=to_pairs, validator=_check_entry_values
    )

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> SetMetadata:
        c.sp()
        mailbox = c.mailbox()
        c.sp()

        def entry_value() -> tuple[str, bytes | None]:
            entry = _parse_entry(c)
            c.sp()
            if c.peek() == 0x7E:  # "~": literal8
                return (entry, c.literal(binary_ok=True))
            return (entry, c.nstring())

        return cls(tag, mailbox, tuple(c.paren_list(entry_value, allow_empty=False)))

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.mailbox(self.mailbox)
        e.raw(b" (")
        for i, (entry, value) in enumerate(self.entries):
            if i:
                e.sp()
            e.astring(entry)
            e.sp()
            if value is not None and b"\0" in value:
                e.literal(value, binary=True)
            else:
                e.nstring(value)
        e.raw(b")")


NOTIFY_EVENTS = {
    name.upper(): name
    for name in (
        "MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange", "MailboxName",
        "SubscriptionChange", "MailboxMetadataChange", "ServerMetadataChange",
    )
}
NOTIFY_FILTERS = ("SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED",
                  "SUBTREE", "MAILBOXES")


def _event_name(name: str) -> str:
    return NOTIFY_EVENTS.get(name.upper(), name)


def _to_mailboxes(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(to_mailbox(m) for m in value)


def _to_groups(value: Iterable[NotifyGroup] | None) -> tuple[NotifyGroup, ...] | None:
    return None if value is None else tuple(value)


@attrs.frozen
class NotifyEvent:
    """One ``event``; ``fetch_items`` only for MessageNew (RFC 5465 §5)."""

    name: str = attrs.field(converter=_event_name)
    fetch_items: tuple[FetchItem, ...] = attrs.field(default=(), converter=to_tuple)

    def __attrs_post_init__(self) -> None:
        if self.name not in NOTIFY_EVENTS.values():
            raise ValueError(f"unknown NOTIFY event {self.name!r}")
        if self.fetch_items and self.name != "MessageNew":
            raise ValueError("only MessageNew takes fetch items")


@attrs.frozen
class NotifyGroup:
    """``"(" filter-mailboxes SP events ")"``; ``events`` None is NONE. ``mailboxes``
    only for SUBTREE and MAILBOXES."""

    filter: str = attrs.field(converter=to_upper,
                              validator=attrs.validators.in_(NOTIFY_FILTERS))
    events: tuple[NotifyEvent, ...] | None
    mailboxes: tuple[str, ...] = attrs.field(
        default=(), converter=_to_mailboxes
    )

    def __attrs_post_init__(self) -> None:
        if (self.filter in ("SUBTREE", "MAILBOXES")) != bool(self.mailboxes):
            raise ValueError("SUBTREE and MAILBOXES, and only they, name mailboxes")
        if self.events is not None and not self.events:
            raise ValueError("an empty event list is written NONE")


def _check_groups(instance: object, attribute: object,
                  value: tuple[NotifyGroup, ...] | None) -> None:
    if value is not None and not value:
        raise ValueError("NOTIFY SET needs an event group")


@attrs.frozen
class Notify(Command):
    """``NOTIFY NONE`` (``groups`` None) or ``NOTIFY SET [STATUS] event-groups``."""

    VERB = "NOTIFY"

    groups: tuple[NotifyGroup, ...] | None = attrs.field(
        converter=_to_groups, validator=_check_groups
    )
    status: bool = False

    def __attrs_post_init__(self) -> None:
        if self.groups is None and self.status:
            raise ValueError("NOTIFY NONE has no STATUS")

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Notify:
        c.sp()
        if c.accept_word(b"NONE"):
            return cls(tag, None)
        if not c.accept_word(b"SET"):
            raise c.error("expected SET or NONE")
        c.sp()
        status = c.accept_word(b"STATUS")
        if status:
            c.sp()
        groups = [_parse_group(c)]
        while c.accept(b" "):
            groups.append(_parse_group(c))
        return cls(tag, tuple(groups), status)

    def encode_args(self, e: Encoder) -> None:
        if self.groups is None:
            e.raw(b" NONE")
            return
        e.raw(b" SET STATUS" if self.status else b" SET")
        for g in self.groups:
            e.raw(b" (")
            e.text(g.filter)
            if g.mailboxes:
                e.raw(b" (")
                for i, m in enumerate(g.mailboxes):
                    if i:
                        e.sp()
                    e.mailbox(m)
                e.raw(b")")
            if g.events is None:
                e.raw(b" NONE)")
                continue
            e.raw(b" (")
            for i, ev in enumerate(g.events):
                if i:
                    e.sp()
                e.text(ev.name)
                if ev.fetch_items:
                    e.raw(b" (")
                    for j, item in enumerate(ev.fetch_items):
                        if j:
                            e.sp()
                        encode_fetch_att(e, item)
                    e.raw(b")")
            e.raw(b"))")


def _parse_group(c: Cursor) -> NotifyGroup:
    c.open()
    filt = c.keyword()
    if filt not in NOTIFY_FILTERS:
        raise c.error("unknown NOTIFY filter")
    mailboxes: tuple[str, ...] = ()
    if filt in ("SUBTREE", "MAILBOXES"):
        c.sp()
        if c.peek() == 0x28:
            mailboxes = tuple(c.paren_list(c.mailbox, allow_empty=False))
        else:
            mailboxes = (c.mailbox(),)
    c.sp()
    events: tuple[NotifyEvent, ...] | None
    if c.accept_word(b"NONE"):
        events = None
    else:
        events = tuple(c.paren_list(lambda: _parse_event(c), allow_empty=False))
    c.close()
    return NotifyGroup(filt, events, mailboxes)


def _parse_event(c: Cursor) -> NotifyEvent:
    name = c.keyword()
    if name not in NOTIFY_EVENTS:
        raise c.error("unknown NOTIFY event")
    items: tuple[FetchItem, ...] = ()
    if name == "MESSAGENEW" and c.peek_is(b" ("):
        c.sp()
        items = tuple(c.paren_list(lambda: parse_fetch_att(c), allow_empty=False))
    return NotifyEvent(name, items)

