"""THREAD=REFERENCES (RFC 5256 §4): threads from Message-ID, References and
In-Reply-To, then messages of one base subject gathered; THREAD=REFS without the
gathering. Pure: the THREAD command
gives one ``Threadable`` per message and sends what ``references`` returns.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs


@attrs.frozen
class Threadable:
    """What threading needs of one message."""

    number: int  # sequence number or UID, as the answer gives it
    message_id: str | None
    references: list[str]  # References, or else the first In-Reply-To id
    subject: str  # base subject (sortkeys.subject_info)
    reply: bool  # the subject was a reply or forward
    date: float  # sent date, seconds since the epoch (the internal date without one)
    order: int  # position in the mailbox, for ties


@attrs.define(eq=False)
class Container:
    """A node: a message, or a dummy (a message referred to but not present)."""

    msg: Threadable | None = None
    parent: Container | None = None
    children: list[Container] = attrs.Factory(list)

    def add(self, child: Container) -> None:
        child.parent = self
        self.children.append(child)

    def detach(self) -> None:
        if self.parent is not None:
            self.parent.children.remove(self)
            self.parent = None

    def has_descendant(self, other: Container) -> bool:
        node: Container | None = other
        while node is not None:
            if node is self:
                return True
            node = node.parent
        return False


def _key(c: Container) -> tuple[float, int]:
    if c.msg is not None:
        return (c.msg.date, c.msg.order)
    # A dummy sorts as its first child (its children are sorted first).
    return _key(c.children[0]) if c.children else (float("-inf"), 0)


def _sort(nodes: list[Container]) -> None:
    for c in nodes:
        _sort(c.children)
    nodes.sort(key=_key)


def _prune(nodes: list[Container], root: bool) -> list[Container]:
    """(4): dummies without children go; a dummy's children move up to its level,
    except at the root where only a single child does."""
    out: list[Container] = []
    for c in nodes:
        c.children = _prune(c.children, False)
        for child in c.children:
            child.parent = c
        if c.msg is not None:
            out.append(c)
        elif not c.children:
            continue
        elif root and len(c.children) > 1:
            out.append(c)
        else:
            for child in c.children:
                child.parent = None if root else c.parent
            out.extend(c.children)
    return out


def _take_place(result: list[Container], old: Container, new: Container) -> None:
    """``new`` where ``old`` is in the gathered roots (at the end if not there yet)."""
    index = next((i for i, r in enumerate(result) if r is old), None)
    if index is None:
        result.append(new)
    else:
        result[index] = new


def _linked(messages: Iterable[Threadable]) -> list[Container]:
    """RFC 5256 §4 REFERENCES steps 1-4: messages linked by their references, the
    root set, dummies pruned."""
    table: dict[str, Container] = {}
    unique = 0
    # (1) Link messages by their references.
    for msg in sorted(messages, key=lambda m: m.order):
        mid = msg.message_id
        if mid is not None and mid in table and table[mid].msg is None:
            own = table[mid]
            own.msg = msg
        else:
            if mid is None or mid in table:  # none, or a duplicate: a unique one
                unique += 1
                mid = f"\x00{unique}"
            own = table[mid] = Container(msg)
        previous: Container | None = None
        for ref in msg.references:
            node = table.get(ref)
            if node is None:
                node = table[ref] = Container()
            # (1B) link consecutive references unless linked already or a loop.
            if (previous is not None and node.parent is None and node is not previous
                    and not node.has_descendant(previous)):
                previous.add(node)
            previous = node
        # (1C) the last reference is the parent (replacing any), unless a loop.
        own.detach()
        if previous is not None and previous is not own and not own.has_descendant(previous):
            previous.add(own)
    # (2)-(3) The root set; (4) dummies pruned.
    return _prune([c for c in table.values() if c.parent is None], True)


def _latest(c: Container) -> tuple[float, int]:
    own = (c.msg.date, c.msg.order) if c.msg is not None else (float("-inf"), 0)
    return max([own, *(_latest(child) for child in c.children)])


def refs(messages: Iterable[Threadable]) -> list[Container]:
    """THREAD=REFS (draft-ietf-morg-inthread §3, as Dovecot serves it): REFERENCES'
    threads from the message ids alone, with no gathering by subject, and the
    threads in the order of their newest messages."""
    roots = _linked(messages)
    _sort(roots)
    roots.sort(key=_latest)
    return roots


def references(messages: Iterable[Threadable]) -> list[Container]:
    """The root set of threads, sorted, subjects gathered (RFC 5256 §4 steps 1-7)."""
    roots = _linked(messages)
    # (5) Sorted by sent date.
    _sort(roots)
    # (6) Gather roots of one base subject.
    by_subject: dict[str, Container] = {}

    def subject_of(c: Container) -> tuple[str, bool, bool]:
        msg = c.msg if c.msg is not None else (c.children[0].msg if c.children else None)
        if msg is None:
            return "", False, c.msg is None
        return msg.subject, msg.reply, c.msg is None

    for c in roots:
        subject, reply, dummy = subject_of(c)
        if not subject:
            continue
        old = by_subject.get(subject)
        if old is None:
            by_subject[subject] = c
            continue
        _, old_reply, old_dummy = subject_of(old)
        if (dummy and not old_dummy) or (not dummy and not old_dummy and old_reply
                                         and not reply):
            by_subject[subject] = c
    result: list[Container] = []
    for c in roots:
        if c.parent is not None:
            continue  # put under another root already
        subject, reply, dummy = subject_of(c)
        entry = by_subject.get(subject) if subject else None
        if entry is None or entry is c:
            result.append(c)
            continue
        _, entry_reply, entry_dummy = subject_of(entry)
        if dummy and entry_dummy:
            for child in list(c.children):
                entry.add(child)
        elif entry_dummy and not dummy:
            entry.add(c)
        elif dummy and not entry_dummy:
            # The dummy takes the table's place and the message becomes its child.
            _take_place(result, entry, c)
            c.add(entry)
            by_subject[subject] = c
        elif not entry_reply and reply:
            entry.add(c)
        else:
            # Both replies or neither: siblings under a new dummy.
            merged = Container()
            _take_place(result, entry, merged)
            merged.add(entry)
            merged.add(c)
            by_subject[subject] = merged
    # (7) Sorted again: the groups made above hold messages out of order.
    _sort(result)
    return result
