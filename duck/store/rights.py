"""Access rights on mailboxes (RFC 4314): the vocabulary every room and protocol shares.

A right is one letter of ``lrswipkxtea``. An access control list maps identifiers to
rights; an identifier is a user name, ``anyone`` or ``authenticated``, and a leading
``-`` makes the entry negative (RFC 4314 §2: rights in negative entries are taken away
from what the positive entries grant).

The owner of a mailbox has every right implicitly and always (RFC 4314 §2 advises
that the owner never loses ``a``; duck goes further and keeps the owner's rights out
of the stored list, so the owner's own traffic never reads an ACL).

RFC 2086 compatibility (RFC 4314 §2.1.1): duck takes the first definition of the
virtual rights: ``c`` (create) is ``k`` + ``x``, ``d`` (delete) is ``e`` + ``t``. A
client sending ``c`` or ``d`` is treated as having sent all of its members; lists sent
back carry ``c``/``d`` when all of their members are granted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .errors import InvalidInput, require_utf8

#: Every right, in RFC 4314 §2.1 order.
ALL = "lrswipkxtea"
ALL_RIGHTS = frozenset(ALL)
#: The virtual rights of RFC 4314 §2.1.1 and what each stands for.
VIRTUAL = {"c": "kx", "d": "et"}
#: Identifiers with a meaning of their own (RFC 4314 §2).
ANYONE = "anyone"
AUTHENTICATED = "authenticated"
#: Rights that make a SELECT read-write (RFC 4314 §4: without any of them the
#: mailbox is opened READ-ONLY).
WRITE_RIGHTS = frozenset("swte")
#: Longest identifier and most entries one mailbox's list keeps (a cap per resource).
MAX_IDENTIFIER = 320
MAX_ENTRIES = 256

Rights = frozenset[str]

#: The namespaces (RFC 2342) in which another owner's mailboxes are named: IMAP
#: shows them under these prefixes and the API and the change feed name them so.
OTHER_USERS = "Other Users"
SHARED = "Shared"


def split_name(name: str) -> tuple[str, str | None, str]:
    """(namespace, owner's user name or None, path in the owner's tree) of a name as
    a user gives it: the namespace is "personal", "other" or "shared"; the path may
    be "" (a namespace or user node, which is no mailbox)."""
    for prefix, kind in ((OTHER_USERS, "other"), (SHARED, "shared")):
        if name == prefix or name.startswith(prefix + "/"):
            rest = name[len(prefix) + 1:]
            if kind == "shared":
                return kind, None, rest
            user, _, path = rest.partition("/")
            return kind, user, path
    return "personal", None, name


def shared_name(owner: str | None, path: str) -> str:
    """How a user names another owner's mailbox: ``Other Users/<owner>/<path>``, or
    ``Shared/<path>`` for the Shared namespace (``owner`` None)."""
    if owner is None:
        return f"{SHARED}/{path}"
    return f"{OTHER_USERS}/{owner}/{path}"


def parse(text: str) -> Rights:
    """The rights a client's rights string names (``c``/``d`` expanded); InvalidInput
    for a letter that is no right (RFC 4314 §3.1: SETACL then fails)."""
    out: set[str] = set()
    for ch in text:
        low = ch.lower()
        if low in VIRTUAL:
            out.update(VIRTUAL[low])
        elif low in ALL_RIGHTS:
            out.add(low)
        else:
            raise InvalidInput(f"unknown right {ch!r}")
    return frozenset(out)


def render(rights: Iterable[str]) -> str:
    """A rights string in canonical order, with ``c``/``d`` when all of their members
    are in it (RFC 4314 §2.1.1)."""
    have = set(rights)
    text = "".join(r for r in ALL if r in have)
    for virtual, members in VIRTUAL.items():
        if have.issuperset(members):
            text += virtual
    return text


def check_identifier(identifier: str) -> str:
    """A valid identifier (sign kept) or InvalidInput."""
    if not isinstance(identifier, str):
        raise InvalidInput("identifier must be a string")
    name = identifier[1:] if identifier.startswith("-") else identifier
    if not name or len(name) > MAX_IDENTIFIER or any(ord(ch) < 0x21 for ch in name):
        raise InvalidInput("invalid identifier")
    require_utf8(name, "identifier")
    return identifier


def effective(acl: Mapping[str, str], username: str) -> Rights:
    """What ``username`` (an authenticated user who is not the owner) may do under
    ``acl`` (identifier -> rights string): the union of the positive entries that
    apply, less the union of the negative ones (RFC 4314 §2)."""
    applies = (username, ANYONE, AUTHENTICATED)
    granted: set[str] = set()
    denied: set[str] = set()
    for identifier in applies:
        granted.update(acl.get(identifier, ""))
        denied.update(acl.get("-" + identifier, ""))
    return frozenset(granted - denied)


__all__ = [
    "ALL",
    "ALL_RIGHTS",
    "ANYONE",
    "AUTHENTICATED",
    "MAX_ENTRIES",
    "OTHER_USERS",
    "SHARED",
    "VIRTUAL",
    "WRITE_RIGHTS",
    "Rights",
    "check_identifier",
    "effective",
    "parse",
    "render",
    "shared_name",
    "split_name",
]
