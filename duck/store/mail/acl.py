"""Access control lists of mailboxes (RFC 4314), shared mailboxes and per-reader \\Seen.

The list lives on the mailbox document (``acl``: ``[{"id": identifier, "rights":
"lrs"}]``), so the read that finds a mailbox brings its rights along: resolving a
shared mailbox costs no query of its own, and a user's own mailboxes (whose rights
are implicit) never look at it. An index on ``acl.id`` answers "what is shared with
this user" for LIST.

A change of a list allocates a modseq of the mailbox and writes a journal entry of
kind ``acl`` in the same transaction, like any other change: sessions that have the
mailbox selected (in any process) are woken by the notifier and re-read their
rights before their next command. The entry names the user it concerns (``users``)
so that the notifier wakes that user's per-user subscribers too.

Mailboxes of the "Shared" namespace (owned by no user) belong to one reserved
account, :data:`SHARED_OWNER`, that cannot log in (its name is no address) and has no
quota limit: every user reaches them through their ACL only.

Each reader of a mailbox that is not theirs keeps their own \\Seen state (RFC 4314
§5.4's advice for shared mailboxes): a ``seen`` document per (mailbox, user) holding
UID ranges. The stored ``\\Seen`` flag stays the owner's.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

import attrs
import pymongo.errors
from bson import ObjectId
from pymongo import ReturnDocument

from .. import rights as acl_rights
from ..accounts.users import SHARED_OWNER, SHARED_OWNER_NAME
from ..engine import schema
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import InvalidInput, NotFound
from ..limits import MAX_MAILBOXES
from ..models import Mailbox
from ..push import journal
from .mailboxes import mailbox_from_doc, normalize_path

#: Per-reader \\Seen state of mailboxes that are not the reader's.
SEEN = "seen"

schema.register(
    schema.MAILBOXES, [schema.IndexModel([("acl.id", schema.ASCENDING)], name="acl_id")])
schema.register(
    SEEN, [schema.IndexModel([("mailbox", schema.ASCENDING), ("user", schema.ASCENDING)],
                             unique=True, name="mailbox_user")])


@attrs.frozen
class SharedMailbox:
    """A mailbox of another owner that a user may see (``l`` among its rights)."""

    mailbox: Mailbox
    #: The owner's user name; None for the "Shared" namespace.
    owner: str | None
    rights: frozenset[str]


def acl_of(mailbox: Mailbox) -> dict[str, str]:
    """The stored list of a mailbox as identifier -> rights."""
    return dict(mailbox.acl)


def rights_of(mailbox: Mailbox, user_id: str, username: str) -> frozenset[str]:
    """What a user may do with a mailbox: everything when it is theirs (RFC 4314 §2:
    the owner's rights are implicit), else what its list grants."""
    if mailbox.user_id == user_id:
        return acl_rights.ALL_RIGHTS
    return acl_rights.effective(acl_of(mailbox), username)


def _ranges(uids: Iterable[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for uid in sorted(set(uids)):
        if out and out[-1][1] + 1 == uid:
            out[-1][1] = uid
        else:
            out.append([uid, uid])
    return out


#: Seconds a "nothing is shared with this user" answer is reused while no ACL change
#: is heard of: the longest a new grant waits to show in LIST when the change stream
#: holds it back or the deployment has none (the notifier polls).
NOTHING_SHARED_FOR = 10.0
#: Most users remembered with nothing shared (all forgotten beyond).
NOTHING_SHARED_USERS = 100_000


class Acl:
    """ACLs, the shared namespace's owner and per-reader \\Seen (``store.acl``)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        #: user id -> (``database.acl_generation`` before the read, when it expires):
        #: users the last read found nothing shared with. Most users have nothing
        #: shared, and LIST would ask for every one of them each time.
        self._nothing_shared: dict[str, tuple[int, float]] = {}

    @property
    def _boxes(self) -> Any:
        return self._database.collection(schema.MAILBOXES)

    # -- the list ---------------------------------------------------------------------

    async def set_rights(self, mailbox_id: str, identifier: str, rights: str,
                  mode: str = "replace") -> int:
        """SETACL (RFC 4314 §3.1): ``mode`` "replace", "add" (``+rights``) or "remove"
        (``-rights``); an entry left empty is removed. Returns the change's modseq."""
        acl_rights.check_identifier(identifier)
        wanted = acl_rights.parse(rights)

        def change(entries: dict[str, str]) -> None:
            now = set(entries.get(identifier, ""))
            if mode == "add":
                now |= wanted
            elif mode == "remove":
                now -= wanted
            else:
                now = set(wanted)
            if now:
                entries[identifier] = "".join(r for r in acl_rights.ALL if r in now)
            else:
                entries.pop(identifier, None)

        return await self._database.run(self._change_sync, parse_id(mailbox_id), identifier,
                                        change)

    async def delete(self, mailbox_id: str, identifier: str) -> int:
        """DELETEACL (RFC 4314 §3.2): drop the entry (none is no error)."""
        acl_rights.check_identifier(identifier)
        return await self._database.run(self._change_sync, parse_id(mailbox_id), identifier,
                                        lambda entries: entries.pop(identifier, None))

    def _change_sync(self, oid: ObjectId, identifier: str, change: Any) -> int:
        name = identifier.lstrip("-")
        users = self._database.collection(schema.USERS)

        def body(session: Any) -> int:
            doc = self._boxes.find_one({"_id": oid}, {"acl": 1, "user": 1}, session=session)
            if doc is None:
                raise NotFound("no such mailbox")
            entries = {e["id"]: e["rights"] for e in doc.get("acl", ())}
            change(entries)
            if len(entries) > acl_rights.MAX_ENTRIES:
                raise InvalidInput("too many access control entries")
            after = self._boxes.find_one_and_update(
                {"_id": oid},
                {"$set": {"acl": [{"id": k, "rights": v} for k, v in sorted(entries.items())]},
                 "$inc": {"modseq": 1}},
                projection={"modseq": 1}, return_document=ReturnDocument.AFTER,
                session=session,
            )
            modseq = int(after["modseq"])
            entry = journal.entry_doc(oid, modseq, "acl", user=doc["user"])
            grantee = users.find_one({"username": name}, {"_id": 1}, session=session)
            if grantee is not None:
                # The notifier wakes the grantee's per-user subscribers too.
                entry["users"] = [grantee["_id"]]
            journal.write(self._database, [entry], session)
            return modseq

        result: int = self._database.in_transaction(body)
        self._database.acl_changed()
        return result

    async def shared_with(self, user_id: str, username: str) -> list[SharedMailbox]:
        """Mailboxes of other owners this user may list (``l``), with their owners'
        names (one query, two when something is shared; LIST asks, SELECT of a known
        name does not). Nothing, without a query, when a read found nothing and no
        ACL change was heard of since in this process (one made here, or another
        process's through the change stream), for up to NOTHING_SHARED_FOR seconds."""
        generation = self._database.acl_generation
        known = self._nothing_shared.get(user_id)
        if known is not None and known[0] == generation and time.monotonic() < known[1]:
            return []
        me = parse_id(user_id)
        idents = [username, acl_rights.ANYONE, acl_rights.AUTHENTICATED]

        def run() -> list[tuple[dict[str, Any], str | None]]:
            docs = [d for d in self._boxes.find({"acl.id": {"$in": idents}})
                    .limit(MAX_MAILBOXES) if d["user"] != me]
            owners = {d["user"] for d in docs}
            # (Nothing shared, the common case: no second query.)
            names = {u["_id"]: u["username"] for u in self._database.collection(
                schema.USERS).find({"_id": {"$in": list(owners)}}, {"username": 1})
            } if owners else {}
            shared = parse_id(SHARED_OWNER)
            return [(d, None if d["user"] == shared else names.get(d["user"], ""))
                    for d in docs if d["user"] == shared or d["user"] in names]

        out = []
        for doc, owner in await self._database.run(run):
            mailbox = mailbox_from_doc(doc)
            granted = acl_rights.effective(acl_of(mailbox), username)
            if "l" in granted:
                out.append(SharedMailbox(mailbox, owner, granted))
        if out:
            self._nothing_shared.pop(user_id, None)
        else:
            if len(self._nothing_shared) >= NOTHING_SHARED_USERS:
                self._nothing_shared.clear()
            # (The generation read before the query: a change heard of meanwhile
            # makes this answer one that is not reused.)
            self._nothing_shared[user_id] = (generation,
                                             time.monotonic() + NOTHING_SHARED_FOR)
        return out

    def forget_user_sync(self, username: str) -> None:
        """A deleted user's entries leave every list (blocking): a later account of
        the same name must not inherit them."""
        self._boxes.update_many(
            {"acl.id": {"$in": [username, "-" + username]}},
            {"$pull": {"acl": {"id": {"$in": [username, "-" + username]}}}},
        )
        self._database.acl_changed()

    async def rights(self, mailbox_id: str, user_id: str, username: str) -> frozenset[str]:
        """A user's rights on a mailbox by id (one read): the check Sieve's
        ``fileinto`` and other writers into another owner's mailbox make (``i``)."""
        doc = await self._database.run(self._boxes.find_one, {"_id": parse_id(mailbox_id)})
        if doc is None:
            raise NotFound("no such mailbox")
        return rights_of(mailbox_from_doc(doc), user_id, username)

    async def target(self, user_id: str, name: str) -> tuple[Mailbox, frozenset[str]]:
        """Another owner's mailbox as a user names it (``Other Users/<owner>/<path>``
        or ``Shared/<path>``) and the user's rights on it: what a writer on the
        user's behalf (Sieve ``fileinto``) checks for ``i`` before filing there.
        NotFound for a name of the personal namespace, an unknown owner or mailbox,
        and a mailbox the user has no right on (its existence is not told)."""
        kind, owner_name, path = acl_rights.split_name(name)
        if kind == "personal" or not path:
            raise NotFound("not another owner's mailbox")
        users = self._database.collection(schema.USERS)
        me = await self._database.run(users.find_one, {"_id": parse_id(user_id)},
                                      {"username": 1})
        if me is None:
            raise NotFound("no such user")
        if owner_name is None:
            owner_id = SHARED_OWNER
        else:
            owner = await self._database.run(users.find_one, {"username": owner_name},
                                             {"_id": 1})
            if owner is None or owner["_id"] == me["_id"]:
                raise NotFound("no such mailbox")
            owner_id = str(owner["_id"])
        try:
            key = normalize_path(path)
        except InvalidInput:
            raise NotFound("no such mailbox") from None
        doc = await self._database.run(self._boxes.find_one,
                                       {"user": parse_id(owner_id), "path": key})
        if doc is None:
            raise NotFound("no such mailbox")
        mailbox = mailbox_from_doc(doc)
        granted = rights_of(mailbox, user_id, str(me["username"]))
        if not granted:
            raise NotFound("no such mailbox")
        return mailbox, granted

    # -- the "Shared" namespace -----------------------------------------------------------

    async def shared_owner(self) -> str:
        """The id of the account owning the "Shared" namespace, created on first use."""
        oid = parse_id(SHARED_OWNER)

        def run() -> None:
            try:
                self._database.collection(schema.USERS).update_one(
                    {"_id": oid},
                    {"$setOnInsert": {
                        "username": SHARED_OWNER_NAME, "password": "!", "quota": 2**62,
                        "storage_used": 0, "disabled": True, "shared": True,
                        "created": dt.datetime.now(dt.UTC).replace(microsecond=0),
                    }},
                    upsert=True,
                )
            except pymongo.errors.DuplicateKeyError:
                pass  # made meanwhile by another process

        await self._database.run(run)
        return SHARED_OWNER

    # -- per-reader \Seen -----------------------------------------------------------------

    async def seen(self, mailbox_id: str, user_id: str) -> set[int]:
        """The UIDs a reader has seen in a mailbox that is not theirs (one read)."""
        doc = await self._database.run(
            self._database.collection(SEEN).find_one,
            {"mailbox": parse_id(mailbox_id), "user": parse_id(user_id)})
        out: set[int] = set()
        for lo, hi in (doc or {}).get("uids", ()):
            out.update(range(int(lo), int(hi) + 1))
        return out

    async def set_seen(self, mailbox_id: str, user_id: str, add: Iterable[int] = (),
                       remove: Iterable[int] = ()) -> set[int]:
        """Mark UIDs seen / unseen for one reader; the reader's whole set after."""
        box, user = parse_id(mailbox_id), parse_id(user_id)
        plus, minus = set(add), set(remove)
        coll = self._database.collection(SEEN)

        def run() -> set[int]:
            doc = coll.find_one({"mailbox": box, "user": user}) or {}
            now: set[int] = set()
            for lo, hi in doc.get("uids", ()):
                now.update(range(int(lo), int(hi) + 1))
            now = (now | plus) - minus
            coll.update_one({"mailbox": box, "user": user},
                            {"$set": {"uids": _ranges(now)}}, upsert=True)
            return now

        result: set[int] = await self._database.run(run)
        return result
