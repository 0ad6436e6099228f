"""Users: accounts, password check, address routing."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pymongo.errors
from bson import ObjectId

from ..engine import schema
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import (
    AlreadyExists,
    AuthenticationFailed,
    InvalidInput,
    NotFound,
)
from .addresses import normalize_address, split_detail
from .passwords import VerifiedCache, hash_password, verify_password
from .scram import derive_keys

log = logging.getLogger(__name__)

MAX_PASSWORD = 1024
#: The account that owns the mailboxes of the "Shared" namespace (mail/acl.py): its
#: name is no address, so nobody logs in as it, and user listings leave it out.
SHARED_OWNER = "536861726564000000000000"
SHARED_OWNER_NAME = "#shared"
#: Default storage quota for new users, in bytes (configurable per user).
DEFAULT_QUOTA = 1024**3
#: Most users one listing page holds.
MAX_PAGE = 1000
#: Longest filter a listing accepts (a regex over every user name).
MAX_FILTER = 256


@attrs.frozen
class User:
    """A user account as the protocols see it (never carries the password hash)."""

    id: str
    username: str
    quota: int
    storage_used: int
    created: dt.datetime
    disabled: bool = False
    #: The folder POP3 serves as the maildrop (a per-user setting).
    pop3_folder: str = "INBOX"


@attrs.frozen
class ResolvedAddress:
    """The result of routing an address: whose mailbox it reaches."""

    user_id: str
    address: str
    detail: str | None = None


def user_from_document(doc: dict[str, Any]) -> User:
    """The protocols' view of a ``users`` document."""
    return _user(doc)


def _user(doc: dict[str, Any]) -> User:
    return User(
        id=str(doc["_id"]),
        username=doc["username"],
        quota=int(doc.get("quota", DEFAULT_QUOTA)),
        storage_used=int(doc.get("storage_used", 0)),
        created=doc["created"],
        disabled=bool(doc.get("disabled", False)),
        pop3_folder=str(doc.get("pop3_folder") or "INBOX"),
    )


#: Called inside the user-creation transaction with (session, user ObjectId); the
#: mailbox module uses it to create the default folders atomically with the user.
CreateHook = Callable[[Any, ObjectId], None]


class Users:
    """User accounts in the ``users`` and ``addresses`` collections."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.create_hooks: list[CreateHook] = []
        #: Successful password checks remembered for a while (passwords.py).
        self.verified = VerifiedCache()

    @property
    def _users(self) -> Any:
        return self._database.collection(schema.USERS)

    @property
    def _addresses(self) -> Any:
        return self._database.collection(schema.ADDRESSES)

    async def create(self, username: str, password: str, *, quota: int | None = None) -> User:
        """Create a user whose first address is ``username``.

        Raises InvalidInput for a bad address or password, AlreadyExists when the
        name or address is taken. Nothing is left half-written on failure.
        """
        name = normalize_address(username)
        if not isinstance(password, str) or not password:
            raise InvalidInput("password must be a non-empty string")
        if len(password) > MAX_PASSWORD:
            raise InvalidInput("password too long")
        if quota is not None and (not isinstance(quota, int) or quota < 0):
            raise InvalidInput("quota must be a non-negative integer")
        password_hash = await self._database.run_threaded(hash_password, password)
        scram = await self._database.run_threaded(
            lambda: derive_keys(password).document())
        doc = {
            "_id": ObjectId(),
            "username": name,
            "password": password_hash,
            "scram": scram,
            "quota": DEFAULT_QUOTA if quota is None else quota,
            "storage_used": 0,
            "created": dt.datetime.now(dt.UTC).replace(microsecond=0),
            "disabled": False,
        }
        await self._database.run(self._create_sync, doc)
        return _user(doc)

    def _create_sync(self, doc: dict[str, Any]) -> None:
        def body(session: Any) -> None:
            self._users.insert_one(doc, session=session)
            self._addresses.insert_one(
                {"address": doc["username"], "user": doc["_id"], "main": True}, session=session
            )
            for hook in self.create_hooks:
                hook(session, doc["_id"])

        try:
            self._database.in_transaction(body)
        except pymongo.errors.DuplicateKeyError as exc:
            if not self._database.transactions:
                # No transaction to roll back: remove what this attempt wrote.
                self._users.delete_one({"_id": doc["_id"]})
                self._addresses.delete_many({"user": doc["_id"]})
            raise AlreadyExists(f"user {doc['username']} already exists") from exc

    async def get(self, user_id: str) -> User:
        """The user with this id, or NotFound."""
        doc = await self._database.run(self._users.find_one, {"_id": parse_id(user_id)})
        if doc is None:
            raise NotFound("no such user")
        return _user(doc)

    async def by_username(self, username: str) -> User:
        """The user with this user name (normalised), or NotFound."""
        try:
            name = normalize_address(username)
        except InvalidInput as exc:
            raise NotFound("no such user") from exc
        doc = await self._database.run(self._users.find_one, {"username": name})
        if doc is None:
            raise NotFound("no such user")
        return _user(doc)

    async def lookup(self, key: str) -> User:
        """The user named by its id (24 hex digits), user name or any of its
        addresses (``user+tag@`` included), or NotFound."""
        if re.fullmatch(r"[0-9a-f]{24}", key or ""):
            # User names are addresses (they have an "@"): this can only be an id.
            return await self.get(key)
        found = await self.recipient(key)
        if found is None or found[1] is None:
            raise NotFound(f"no such user: {key}")
        return found[1]

    async def list(self, query: str | None = None, *, limit: int = 100,
                   after: str | None = None) -> tuple[list[User], str | None]:
        """A page of users sorted by user name: those whose name contains ``query``
        (case-insensitive), after the name ``after``; and the name to pass as
        ``after`` for the next page (None on the last one)."""
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be 1 to {MAX_PAGE}")
        filt: dict[str, Any] = {"username": {"$ne": SHARED_OWNER_NAME}}
        if query:
            if len(query) > MAX_FILTER:
                raise InvalidInput("query too long")
            filt["username"]["$regex"] = re.escape(query.lower())
        if after:
            filt.setdefault("username", {})["$gt"] = after
        docs = await self._database.run(lambda: list(
            self._users.find(filt, {"password": 0}).sort("username", 1).limit(limit + 1)))
        more = len(docs) > limit
        users = [_user(d) for d in docs[:limit]]
        return users, (users[-1].username if more and users else None)

    async def authenticate(self, username: str, password: str) -> User:
        """Check the main password only; AuthenticationFailed for an unknown user or a
        wrong one. Protocols use ``store.authenticate`` (authenticate.py) instead: it
        adds application passwords, the two-factor rule, the throttle and the auth log.

        An unknown user costs as much as a known one (a dummy hash is checked), so
        response times do not reveal which user names exist. A password verified
        recently for the same stored hash is not hashed again (``verified``).
        """
        try:
            name = normalize_address(username)
        except InvalidInput:
            name = None
        doc = None
        if name is not None:
            doc = await self._database.run(self._users.find_one, {"username": name})
        if doc is not None:
            stored = doc["password"]
            key = self.verified.key(password, stored)
            ok = self.verified.fresh(key, now=time.monotonic())
            if not ok:
                ok = await self._database.run_threaded(verify_password, password, stored)
                if ok:
                    self.verified.remember(key, now=time.monotonic())
        else:
            ok = await self._database.run_threaded(
                lambda: verify_password(password, _dummy_hash()))
        if doc is None or not ok or doc.get("disabled"):
            raise AuthenticationFailed("invalid credentials")
        return _user(doc)

    async def has_domain(self, domain: str) -> bool:
        """True when some address routed to a user is in ``domain`` (the MTA asks
        which domains are ours). A scan of the address index: callers cache it."""
        try:
            name = normalize_address(f"x@{domain}").partition("@")[2]
        except InvalidInput:
            return False
        pattern = f"@{re.escape(name)}$"
        doc = await self._database.run(
            self._addresses.find_one, {"address": {"$regex": pattern}}, {"_id": 1})
        return doc is not None

    async def resolve_address(self, address: str) -> ResolvedAddress | None:
        """Route an address to its user: exact match first, then ``user+tag@`` → user."""
        found = await self.recipient(address, with_user=False)
        return None if found is None else found[0]

    async def recipient(self, address: str, *, with_user: bool = True,
                        ) -> tuple[ResolvedAddress, User | None] | None:
        """``resolve_address`` and the user it routes to, in one query (a delivery
        asks both for every recipient); None for an unknown address. The user is
        None when it vanished meanwhile (or ``with_user`` is false)."""
        found = await self.recipient_with(address, with_user=with_user)
        return None if found is None else found[:2]

    async def recipient_with(
        self, address: str, stages: Sequence[dict[str, Any]] = (), *,
        with_user: bool = True,
    ) -> tuple[ResolvedAddress, User | None, dict[str, Any]] | None:
        """``recipient``, with ``stages`` (``$lookup`` stages on the address
        document's ``user``) run in the same query; the third element is the
        address document they filled in."""
        try:
            normal = normalize_address(address)
        except InvalidInput:
            return None
        base, detail = split_detail(normal)
        candidates = [normal] if base == normal else [normal, base]
        pipeline: list[dict[str, Any]] = [{"$match": {"address": {"$in": candidates}}}]
        if with_user:
            pipeline.append({"$lookup": {"from": schema.USERS, "localField": "user",
                                         "foreignField": "_id", "as": "owner"}})
        pipeline.extend(stages)
        docs = await self._database.run(
            lambda: list(self._addresses.aggregate(pipeline)))
        by_address = {d["address"]: d for d in docs}
        if normal in by_address:
            doc, resolved = by_address[normal], ResolvedAddress(
                str(by_address[normal]["user"]), normal, None)
        elif base in by_address:
            doc, resolved = by_address[base], ResolvedAddress(
                str(by_address[base]["user"]), base, detail)
        else:
            return None
        owners = doc.get("owner") or []
        return resolved, (_user(owners[0]) if owners else None), doc


@functools.cache
def _dummy_hash() -> str:
    return hash_password("duck-dummy-password")
