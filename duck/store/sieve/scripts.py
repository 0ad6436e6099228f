"""Sieve scripts: the ``sieve_scripts`` collection (``store.sieve``).

One document per script: ``user``, ``name`` (unique per user), ``source``,
``size`` (UTF-8 octets), ``active`` (at most one per user), ``updated`` and
``error`` (the last failure at delivery: message, line, time; cleared when the
script is replaced). A rename is a delete and an insert of the same ``_id`` in
one transaction (a field under a unique index is never changed in place: see
docs/architecture.md on the embedded engine).

Caps (per-user resources, announced by ManageSieve as MAXSCRIPTS/MAXSIZE):
:data:`MAX_SCRIPTS` scripts, :data:`MAX_SCRIPT_SIZE` octets each,
:data:`MAX_TOTAL_SIZE` octets together, names up to :data:`MAX_NAME` characters.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import attrs
import pymongo.errors
from bson import ObjectId

from ..engine import clock, schema
from ..engine.database import Database
from ..engine.ids import parse_id
from ..engine.upsert import upsert_returning
from ..errors import AlreadyExists, InvalidInput, NotFound, OverQuota
from .autoreply import COLLECTION as RULES_COLLECTION
from .autoreply import MailRules, MailRulesStore, rules_from_doc
from .autoreply import purge_user as purge_rules

COLLECTION = "sieve_scripts"
DUPLICATES = "sieve_duplicates"
MAX_SCRIPTS = 20
#: Where ``delivery_stages`` put what they bring.
_SCRIPTS, _RULES = "_active_scripts", "_mail_rules"
MAX_SCRIPT_SIZE = 64 * 1024
MAX_TOTAL_SIZE = 256 * 1024
MAX_NAME = 128
#: Longest error text kept on a script.
MAX_ERROR = 1000
#: Longest duplicate-tracking period (RFC 7352 lets a site cap :seconds).
MAX_DUPLICATE_PERIOD = 90 * 24 * 3600

schema.register(COLLECTION, [
    schema.IndexModel([("user", schema.ASCENDING), ("name", schema.ASCENDING)],
                      unique=True, name="user_name"),
])
schema.register(DUPLICATES, [
    schema.IndexModel([("expire", schema.ASCENDING)], expireAfterSeconds=0, name="ttl"),
    schema.IndexModel([("user", schema.ASCENDING)], name="user"),
])


class ScriptQuotaExceeded(OverQuota):
    """Storing this script would pass a cap; ``limit`` is "maxscripts" or "maxsize"
    (RFC 5804 section 1.3 response codes QUOTA/MAXSCRIPTS, QUOTA/MAXSIZE)."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class ScriptActive(InvalidInput):
    """The active script cannot be deleted (RFC 5804 section 2.10, code ACTIVE)."""


@attrs.frozen
class ScriptError:
    """Why a stored script failed at delivery."""

    message: str
    line: int
    at: dt.datetime


@attrs.frozen
class SieveScript:
    """A stored script; ``source`` is "" in listings."""

    name: str
    size: int
    active: bool
    updated: dt.datetime
    source: str = ""
    error: ScriptError | None = None


def valid_name(name: str) -> bool:
    """RFC 5804 section 1.6: a non-empty UTF-8 string without control characters
    (no CR, LF, NUL, U+007F..U+009F, U+2028, U+2029); duck also caps its length."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        return False
    return not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch in "\u2028\u2029"
                   for ch in name)


def _check_name(name: str) -> str:
    if not valid_name(name):
        raise InvalidInput(f"bad script name {str(name)[:80]!r}")
    return name


def _size(source: str) -> int:
    return len(source.encode("utf-8", "surrogatepass"))


def _script(doc: dict[str, Any]) -> SieveScript:
    err = doc.get("error")
    error = None
    if err:
        at = err["at"]
        error = ScriptError(err["message"], int(err["line"]),
                            at if at.tzinfo else at.replace(tzinfo=dt.UTC))
    updated = doc["updated"]
    return SieveScript(doc["name"], int(doc["size"]), bool(doc.get("active")),
                       updated if updated.tzinfo else updated.replace(tzinfo=dt.UTC),
                       doc.get("source", ""), error)


class SieveScripts(MailRulesStore):
    """Scripts, the autoreply and forwarding resources and the duplicate memory
    (``store.sieve``)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)

    @property
    def _coll(self) -> Any:
        return self._database.collection(COLLECTION)

    async def scripts(self, user_id: str) -> list[SieveScript]:
        """Every script of a user by name, without sources."""
        user = parse_id(user_id)
        docs = await self._database.run(lambda: list(self._coll.find(
            {"user": user}, {"source": 0}).sort("name", 1)))
        return [_script(d) for d in docs]

    async def get(self, user_id: str, name: str) -> SieveScript:
        """One script with its source; NotFound when there is none by that name."""
        user = parse_id(user_id)
        doc = await self._database.run(self._coll.find_one, {"user": user, "name": name})
        if doc is None:
            raise NotFound(f"no script {name[:80]!r}")
        return _script(doc)

    async def active(self, user_id: str) -> SieveScript | None:
        """The user's active script with its source, None when none is active."""
        found = await self.actives([user_id])
        return found.get(user_id)

    async def actives(self, user_ids: list[str]) -> dict[str, SieveScript]:
        """The active script of each user who has one (one query for a delivery's
        recipients)."""
        users = [parse_id(u) for u in set(user_ids)]
        if not users:
            return {}
        docs = await self._database.run(lambda: list(self._coll.find(
            {"user": {"$in": users}, "active": True})))
        return {str(d["user"]): _script(d) for d in docs}

    async def for_delivery(self, user_ids: list[str]
                           ) -> dict[str, tuple[SieveScript | None, MailRules]]:
        """For each user with an active script or autoreply/forwarding: both (one
        worker-thread call for a delivery's recipients)."""
        users = [parse_id(u) for u in set(user_ids)]
        if not users:
            return {}

        def run() -> dict[str, tuple[SieveScript | None, MailRules]]:
            scripts = {str(d["user"]): _script(d) for d in self._coll.find(
                {"user": {"$in": users}, "active": True})}
            rules = self.rules_sync(users)
            return {u: (scripts.get(u), rules.get(u, MailRules()))
                    for u in set(scripts) | set(rules)}

        return await self._database.run(run)

    @staticmethod
    def delivery_stages() -> list[dict[str, Any]]:
        """``$lookup`` stages that bring a recipient's active script and mail rules
        along with its address (``Users.recipient_with``): what ``for_delivery``
        reads, in the query a delivery makes at RCPT anyway. (A ``$lookup`` with
        both ``localField`` and ``pipeline`` needs MongoDB 5.0; both embedded
        engines take it.)"""
        return [
            {"$lookup": {"from": COLLECTION, "localField": "user", "foreignField": "user",
                         "pipeline": [{"$match": {"active": True}}], "as": _SCRIPTS}},
            {"$lookup": {"from": RULES_COLLECTION, "localField": "user",
                         "foreignField": "_id", "as": _RULES}},
        ]

    @staticmethod
    def delivery_rules(doc: dict[str, Any]) -> tuple[SieveScript | None, MailRules] | None:
        """From an address document ``delivery_stages`` filled in: what
        ``for_delivery`` gives for its user (None when it has neither a script nor
        rules, as ``for_delivery`` leaves such a user out)."""
        scripts, rules = doc.get(_SCRIPTS) or [], doc.get(_RULES) or []
        if not scripts and not rules:
            return None
        return (_script(scripts[0]) if scripts else None,
                rules_from_doc(rules[0] if rules else None))

    async def check_space(self, user_id: str, name: str, size: int) -> None:
        """Raise ScriptQuotaExceeded when a script ``name`` of ``size`` octets would
        not fit (RFC 5804 HAVESPACE); a script replacing one of the same name counts
        once."""
        _check_name(name)
        user = parse_id(user_id)
        docs = await self._database.run(lambda: list(self._coll.find(
            {"user": user}, {"name": 1, "size": 1})))
        self._fits(docs, name, size)

    @staticmethod
    def _fits(docs: list[dict[str, Any]], name: str, size: int) -> None:
        if size > MAX_SCRIPT_SIZE:
            raise ScriptQuotaExceeded(f"a script is at most {MAX_SCRIPT_SIZE} octets",
                                      "maxsize")
        others = [d for d in docs if d["name"] != name]
        if len(others) + 1 > MAX_SCRIPTS:
            raise ScriptQuotaExceeded(f"at most {MAX_SCRIPTS} scripts", "maxscripts")
        if sum(int(d["size"]) for d in others) + size > MAX_TOTAL_SIZE:
            raise ScriptQuotaExceeded(f"scripts take at most {MAX_TOTAL_SIZE} octets together",
                                      "maxsize")

    async def put(self, user_id: str, name: str, source: str) -> SieveScript:
        """Store (or replace) a script; an active one stays active; its recorded
        error is cleared. The caller has checked the script is valid Sieve."""
        _check_name(name)
        if not isinstance(source, str):
            raise InvalidInput("a script is text")
        user = parse_id(user_id)
        size = _size(source)
        now = clock.now()

        def body(session: Any) -> dict[str, Any]:
            docs = list(self._coll.find({"user": user}, {"name": 1, "size": 1},
                                        session=session))
            self._fits(docs, name, size)
            return upsert_returning(
                self._coll, {"user": user, "name": name},
                {"$set": {"source": source, "size": size, "updated": now, "error": None},
                 "$setOnInsert": {"active": False}}, session=session)

        doc = await self._database.run(self._database.in_transaction, body)
        return _script(doc)

    async def delete(self, user_id: str, name: str) -> None:
        """Delete a script; NotFound if missing, ScriptActive if it is the active one."""
        user = parse_id(user_id)

        def run() -> None:
            doc = self._coll.find_one({"user": user, "name": name}, {"active": 1})
            if doc is None:
                raise NotFound(f"no script {name[:80]!r}")
            if doc.get("active"):
                raise ScriptActive("the active script cannot be deleted")
            self._coll.delete_one({"_id": doc["_id"], "active": {"$ne": True}})

        await self._database.run(run)

    async def rename(self, user_id: str, old: str, new: str) -> None:
        """Rename a script (keeping whether it is active); NotFound, AlreadyExists."""
        _check_name(new)
        user = parse_id(user_id)
        if old == new:
            await self.get(user_id, old)
            return

        def body(session: Any) -> None:
            doc = self._coll.find_one({"user": user, "name": old}, session=session)
            if doc is None:
                raise NotFound(f"no script {old[:80]!r}")
            if self._coll.find_one({"user": user, "name": new}, {"_id": 1},
                                   session=session) is not None:
                raise AlreadyExists(f"a script {new[:80]!r} exists")
            self._coll.delete_one({"_id": doc["_id"]}, session=session)
            doc["name"] = new
            doc["updated"] = clock.now()
            self._coll.insert_one(doc, session=session)

        try:
            await self._database.run(self._database.in_transaction, body)
        except pymongo.errors.DuplicateKeyError as exc:
            raise AlreadyExists(f"a script {new[:80]!r} exists") from exc

    async def activate(self, user_id: str, name: str | None) -> None:
        """Make ``name`` the active script (None or "": none is active)."""
        user = parse_id(user_id)

        def body(session: Any) -> None:
            target: ObjectId | None = None
            if name:
                doc = self._coll.find_one({"user": user, "name": name}, {"_id": 1},
                                          session=session)
                if doc is None:
                    raise NotFound(f"no script {name[:80]!r}")
                target = doc["_id"]
            self._coll.update_many({"user": user, "active": True, "_id": {"$ne": target}},
                                   {"$set": {"active": False}}, session=session)
            if target is not None:
                self._coll.update_one({"_id": target}, {"$set": {"active": True}},
                                      session=session)

        await self._database.run(self._database.in_transaction, body)

    async def record_error(self, user_id: str, name: str, message: str, line: int) -> None:
        """Remember why a script failed at delivery (shown to the user in the API)."""
        user = parse_id(user_id)
        error = {"message": message[:MAX_ERROR], "line": int(line), "at": clock.now()}
        await self._database.run(lambda: self._coll.update_one(
            {"user": user, "name": name}, {"$set": {"error": error}}))

    async def duplicate(self, user_id: str, key: str, seconds: int, last: bool) -> bool:
        """RFC 7352: was ``key`` seen for this user within its period? Records it now
        (with ``last``, the period restarts at every sighting, section 3.4)."""
        if not 0 <= seconds <= MAX_DUPLICATE_PERIOD:
            raise InvalidInput(f"the period is 0 to {MAX_DUPLICATE_PERIOD} seconds")
        user = parse_id(user_id)
        digest = hashlib.sha256(f"{user_id}\0{key}".encode("utf-8", "surrogatepass")
                                ).hexdigest()
        coll = self._database.collection(DUPLICATES)

        def run() -> bool:
            now = clock.now()
            expire = now + dt.timedelta(seconds=seconds)
            doc = coll.find_one({"_id": digest})
            if doc is not None and _aware(doc["expire"]) > now:
                if last:
                    coll.update_one({"_id": digest}, {"$set": {"expire": expire}})
                return True
            try:
                coll.update_one({"_id": digest}, {"$set": {"expire": expire, "user": user}},
                                upsert=True)
            except pymongo.errors.DuplicateKeyError:
                return True  # another delivery recorded it at the same moment
            return False

        return await self._database.run(run)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def purge_user(database: Database, user: ObjectId) -> None:
    """Forget a deleted user's scripts and duplicate memory (blocking)."""
    database.collection(COLLECTION).delete_many({"user": user})
    database.collection(DUPLICATES).delete_many({"user": user})
    purge_rules(database, user)
