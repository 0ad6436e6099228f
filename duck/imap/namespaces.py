"""Namespaces (RFC 2342) and access rights (RFC 4314) as IMAP names see them.

Three namespaces, all with ``/`` as the delimiter:

- personal (prefix ""): the user's own mailboxes, where every right is implicit;
- "Other Users/" : ``Other Users/<username>/<path>`` is ``<path>`` of that user's
  mailboxes, reached through its access control list;
- "Shared/": ``Shared/<path>`` is a mailbox of the "Shared" namespace (owned by no
  user; made by an administrator through the HTTP API).

Resolving a personal name asks the database nothing: the commands read the mailbox
as they always did. Only names in the other two namespaces look up an owner and
compute rights, from the ACL that comes with the mailbox document.

Existence is not leaked (RFC 4314 §4, §6): a mailbox of another owner on which the
user has neither ``l`` nor ``r`` is answered exactly like one that does not exist,
and so is an unknown user name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from duck.store import (
    DELIMITER,
    SHARED_OWNER,
    Mailbox,
    NotFound,
    rights,
    rights_of,
)

from .errors import CommandError, no

if TYPE_CHECKING:
    from .context import CommandContext

OTHER_USERS = rights.OTHER_USERS
SHARED = rights.SHARED
#: Rights text of a mailbox of one's own (RFC 4314 §2.1.1's c and d included).
ALL_TEXT = rights.render(rights.ALL_RIGHTS)


@attrs.frozen
class Place:
    """Where a client's mailbox name points."""

    #: The name as the client gave it.
    name: str
    owner_id: str
    #: The mailbox's path in its owner's tree.
    path: str
    own: bool
    #: The owner's user name ("Other Users"), None otherwise.
    owner_name: str | None = None


def flag_right(flag: str) -> str:
    """The right that setting or clearing a flag needs (RFC 4314 §4, STORE)."""
    if flag == "\\Seen":
        return "s"
    if flag == "\\Deleted":
        return "t"
    return "w"


def nonexistent() -> CommandError:
    """The one answer for a mailbox that does not exist or may not be known of."""
    return no("no such mailbox", "NONEXISTENT")


def split(name: str) -> tuple[str, str | None, str]:
    """(namespace, owner's user name or None, path in the owner's tree) of a name;
    the namespace is "personal", "other" or "shared"; the path may be "" (a
    namespace or user node, which is no mailbox)."""
    return rights.split_name(name)


def display(owner_name: str | None, path: str) -> str:
    """The client's name of another owner's mailbox (None: the Shared namespace)."""
    return rights.shared_name(owner_name, path)


def in_other_namespace(name: str) -> bool:
    """Whether a name lies in "Other Users" or "Shared" (no database query)."""
    return split(name)[0] != "personal"


async def locate(s: CommandContext, name: str) -> Place:
    """Where ``name`` points; NO [NONEXISTENT] for a node that is no mailbox or an
    unknown owner (one query for "Other Users", none otherwise)."""
    assert s.user is not None
    kind, user, path = split(name)
    if kind == "personal":
        return Place(name, s.user.id, name, own=True)
    if not path:
        raise nonexistent()
    if kind == "shared":
        return Place(name, SHARED_OWNER, path, own=False)
    assert user is not None
    if user == s.user.username:
        # One's own mailboxes have one name only: the personal one.
        raise nonexistent()
    try:
        owner = await s.store.users.by_username(user)
    except NotFound:
        raise nonexistent() from None
    return Place(name, owner.id, path, own=False, owner_name=user)


def require(granted: frozenset[str], needed: str) -> None:
    """NO unless every right in ``needed`` is granted: [NONEXISTENT] when the user
    may not even know the mailbox exists (neither l nor r), else [NOPERM]."""
    if set(needed) <= granted:
        return
    if not granted & {"l", "r"}:
        raise nonexistent()
    raise no(f"permission denied (needs {rights.render(set(needed) - granted)})", "NOPERM")


async def open_mailbox(s: CommandContext, name: str, needed: str = ""
                       ) -> tuple[Mailbox, Place, frozenset[str]]:
    """The mailbox a name points to, where it is, and the user's rights on it;
    NO unless the user has ``needed``. A personal name costs one read, as before."""
    return await open_located(s, await locate(s, name), needed)


async def open_located(s: CommandContext, place: Place, needed: str = ""
                       ) -> tuple[Mailbox, Place, frozenset[str]]:
    """``open_mailbox`` of a name already located."""
    assert s.user is not None
    if place.own:
        return (await s.store.mailboxes.get(place.owner_id, place.path), place,
                rights.ALL_RIGHTS)
    try:
        mailbox = await s.store.mailboxes.get(place.owner_id, place.path)
    except NotFound:
        raise nonexistent() from None
    granted = rights_of(mailbox, s.user.id, s.user.username)
    if not granted:
        raise nonexistent()
    require(granted, needed)
    return mailbox, place, granted


async def parent_rights(s: CommandContext, place: Place) -> frozenset[str]:
    """The user's rights on the parent of a mailbox of another owner, which decide
    CREATE and RENAME into it (RFC 4314 §4: ``k`` on the parent). A mailbox at the
    top of another owner's tree has no parent: nothing may be made there."""
    assert s.user is not None
    parent, _, _ = place.path.rpartition(DELIMITER)
    if not parent:
        return frozenset()
    try:
        mailbox = await s.store.mailboxes.get(place.owner_id, parent)
    except NotFound:
        return frozenset()
    return rights_of(mailbox, s.user.id, s.user.username)
