"""Account administration: password and quota changes, addresses, user deletion.

Addresses are under a unique index, so an address is only ever inserted or
deleted, never changed in place (docs/architecture.md, the Rust engine's stale unique keys).
"""

from __future__ import annotations

import logging
from typing import Any

import pymongo.errors
from bson import ObjectId

from .accounts.addresses import normalize_address
from .accounts.apitokens import API_TOKENS
from .accounts.apppasswords import APP_PASSWORDS
from .accounts.passwords import hash_password
from .accounts.scram import derive_keys
from .accounts.users import MAX_PASSWORD
from .engine import schema
from .engine.database import Database
from .engine.ids import parse_id
from .errors import AlreadyExists, InvalidInput, NotFound
from .mail import acl, metadata, urlauth
from .mail.archive import Archive
from .mail.mailboxes import Mailboxes, normalize_path, record_purge
from .push import journal
from .sieve import scripts as sieve_scripts

log = logging.getLogger(__name__)

#: Most addresses one user may have (a per-user cap).
MAX_ADDRESSES = 1000


class Admin:
    """Administrative writes on users (``store.admin``)."""

    def __init__(self, database: Database, mailboxes: Mailboxes,
                 archive: Archive | None = None) -> None:
        self._database = database
        self._mailboxes = mailboxes
        self._archive = archive

    @property
    def _users(self) -> Any:
        return self._database.collection(schema.USERS)

    @property
    def _addresses(self) -> Any:
        return self._database.collection(schema.ADDRESSES)

    async def set_password(self, user_id: str, password: str) -> None:
        """Replace a user's password (NotFound, InvalidInput)."""
        user = parse_id(user_id)
        if not isinstance(password, str) or not password:
            raise InvalidInput("password must be a non-empty string")
        if len(password) > MAX_PASSWORD:
            raise InvalidInput("password too long")
        hashed = await self._database.run_threaded(hash_password, password)
        scram = await self._database.run_threaded(lambda: derive_keys(password).document())
        result = await self._database.run(
            self._users.update_one, {"_id": user}, {"$set": {"password": hashed, "scram": scram}}
        )
        if result.matched_count == 0:
            raise NotFound("no such user")

    async def set_quota(self, user_id: str, quota: int) -> None:
        """Set a user's storage quota in bytes (usage above it blocks new mail only)."""
        user = parse_id(user_id)
        if not isinstance(quota, int) or isinstance(quota, bool) or quota < 0:
            raise InvalidInput("quota must be a non-negative integer")
        result = await self._database.run(
            self._users.update_one, {"_id": user}, {"$set": {"quota": quota}}
        )
        if result.matched_count == 0:
            raise NotFound("no such user")

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        """Disable (or enable again) a user: a disabled user cannot log in over any
        protocol (``Users.authenticate`` refuses it); its mail is kept and still
        delivered."""
        user = parse_id(user_id)
        result = await self._database.run(
            self._users.update_one, {"_id": user}, {"$set": {"disabled": bool(disabled)}}
        )
        if result.matched_count == 0:
            raise NotFound("no such user")
        log.info("user %s %s", user, "disabled" if disabled else "enabled")

    async def set_pop3_folder(self, user_id: str, path: str) -> str:
        """Choose the folder POP3 serves the user as its maildrop (an existing one);
        returns its normalised path."""
        user = parse_id(user_id)
        if not isinstance(path, str):
            raise InvalidInput("folder must be a string")
        normal = normalize_path(path)

        def run() -> None:
            if self._users.count_documents({"_id": user}) == 0:
                raise NotFound("no such user")
            boxes = self._database.collection(schema.MAILBOXES)
            if boxes.count_documents({"user": user, "path": normal}) == 0:
                raise NotFound(f"no such mailbox: {normal}")
            self._users.update_one({"_id": user}, {"$set": {"pop3_folder": normal}})

        await self._database.run(run)
        return normal

    async def addresses(self, user_id: str) -> list[tuple[str, bool]]:
        """(address, is main) of a user, sorted (NotFound for an unknown user)."""
        user = parse_id(user_id)

        def run() -> list[tuple[str, bool]]:
            if self._users.count_documents({"_id": user}) == 0:
                raise NotFound("no such user")
            docs = self._addresses.find({"user": user}).sort("address", 1).limit(MAX_ADDRESSES)
            return [(d["address"], bool(d.get("main", False))) for d in docs]

        return await self._database.run(run)

    async def add_address(self, user_id: str, address: str) -> str:
        """Route ``address`` to the user; returns its normalised form."""
        user = parse_id(user_id)
        normal = normalize_address(address)

        def run() -> None:
            if self._users.count_documents({"_id": user}) == 0:
                raise NotFound("no such user")
            if self._addresses.count_documents({"user": user}) >= MAX_ADDRESSES:
                raise InvalidInput("too many addresses")
            try:
                self._addresses.insert_one({"address": normal, "user": user, "main": False})
            except pymongo.errors.DuplicateKeyError as exc:
                raise AlreadyExists(f"address {normal} is taken") from exc

        await self._database.run(run)
        return normal

    async def remove_address(self, user_id: str, address: str) -> None:
        """Stop routing ``address`` to the user; the main address cannot be removed."""
        user = parse_id(user_id)
        try:
            normal = normalize_address(address)
        except InvalidInput as exc:
            raise NotFound("no such address") from exc

        def run() -> None:
            doc = self._addresses.find_one({"address": normal, "user": user})
            if doc is None:
                raise NotFound("no such address")
            if doc.get("main"):
                raise InvalidInput("the main address cannot be removed")
            self._addresses.delete_one({"_id": doc["_id"]})

        await self._database.run(run)

    async def delete_user(self, user_id: str) -> None:
        """Delete a user, its addresses, mailboxes and messages (frees bodies).

        Addresses go first so that nothing more is delivered; each mailbox is then
        deleted (journaled, so push subscribers see ``mailbox.deleted``) and its
        messages purged (not archived), then the user's archive; the user document
        goes last, so a crash half-way leaves a user that a second delete finishes.
        """
        user = parse_id(user_id)
        await self._database.run(self._delete_sync, user)

    def _delete_sync(self, user: ObjectId) -> None:
        found = self._users.find_one({"_id": user}, {"username": 1})
        if found is None:
            raise NotFound("no such user")
        # Its grants on others' mailboxes go first: a later account of the same
        # name must not inherit them (RFC 4314 identifiers are names).
        acl.Acl(self._database).forget_user_sync(found["username"])
        self._addresses.delete_many({"user": user})
        # Credentials go with the addresses: nothing can log in as the user any more.
        self._database.collection(APP_PASSWORDS).delete_many({"user": user})
        self._database.collection(API_TOKENS).delete_many({"user": user})
        self._mailboxes.purge_subscriptions_sync(user)
        metadata.purge_user(self._database, user)
        sieve_scripts.purge_user(self._database, user)
        urlauth.purge_user(self._database, user)
        boxes = self._database.collection(schema.MAILBOXES)
        for doc in list(boxes.find({"user": user}, {"path": 1})):

            def body(session: Any, oid: ObjectId = doc["_id"]) -> bool:
                gone = boxes.find_one_and_delete({"_id": oid}, session=session)
                if gone is None:
                    return False
                journal.write(self._database, [journal.entry_doc(
                    oid, int(gone["modseq"]) + 1, "mailbox-delete", path=gone["path"],
                    user=user,
                )], session)
                record_purge(self._database, oid, user, None, session)
                return True

            if self._database.in_transaction(body):
                self._mailboxes.purge_sync(doc["_id"])
        if self._archive is not None:
            self._archive.purge_user_sync(user)
        self._users.delete_one({"_id": user})
        log.info("user %s deleted", user)
