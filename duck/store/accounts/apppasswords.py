"""Application-specific passwords: one per device, scoped to protocols, revocable.

Each is a server-drawn secret (tokens.py) kept as a digest in ``app_passwords``
with its description, scopes, creation time and last use (time and address).
A login looks one up by (user, digest) in the database every time: revoking one
ends new logins at once in every process, as there is no cache to outlive it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
from bson import ObjectId

from ..engine import schema
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import InvalidInput, NotFound
from .tokens import app_password_form, digest, new_app_password

APP_PASSWORDS = "app_passwords"
#: The protocols a credential may be scoped to.
SCOPES = ("imap", "pop3", "managesieve", "smtp", "api")
#: Most application passwords one user may have (a per-user cap).
MAX_PER_USER = 100
MAX_DESCRIPTION = 256

schema.register(APP_PASSWORDS, [
    schema.IndexModel([("user", schema.ASCENDING), ("hash", schema.ASCENDING)],
                      name="user_hash"),
])


@attrs.frozen
class AppPassword:
    """An application password as listed (never its secret)."""

    id: str
    user_id: str
    description: str
    scopes: tuple[str, ...]
    created: dt.datetime
    last_used: dt.datetime | None = None
    last_ip: str | None = None


@attrs.frozen
class NewAppPassword:
    """A created application password and its secret, which is shown only this once."""

    app_password: AppPassword
    secret: str


def _model(doc: dict[str, Any]) -> AppPassword:
    return AppPassword(
        id=str(doc["_id"]), user_id=str(doc["user"]), description=doc.get("description", ""),
        scopes=tuple(doc.get("scopes", ())), created=doc["created"],
        last_used=doc.get("last_used"), last_ip=doc.get("last_ip"),
    )


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validated, de-duplicated scopes in the canonical order (InvalidInput)."""
    if not scopes:
        raise InvalidInput("at least one scope is required")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise InvalidInput(f"unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in scopes)


class AppPasswords:
    """The ``app_passwords`` collection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def _docs(self) -> Any:
        return self._database.collection(APP_PASSWORDS)

    async def create(self, user_id: str, description: str,
                     scopes: list[str] | tuple[str, ...]) -> NewAppPassword:
        """A new application password for the user (NotFound, InvalidInput)."""
        user = parse_id(user_id)
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise InvalidInput(f"description must be a string of at most {MAX_DESCRIPTION}")
        wanted = check_scopes(scopes)
        secret = new_app_password()
        form = app_password_form(secret)
        assert form is not None
        doc = {"_id": ObjectId(), "user": user, "description": description,
               "scopes": list(wanted), "hash": digest(form),
               "created": dt.datetime.now(dt.UTC).replace(microsecond=0)}

        def run() -> None:
            users = self._database.collection(schema.USERS)
            if users.count_documents({"_id": user}) == 0:
                raise NotFound("no such user")
            if self._docs.count_documents({"user": user}) >= MAX_PER_USER:
                raise InvalidInput("too many application passwords")
            self._docs.insert_one(doc)

        await self._database.run(run)
        return NewAppPassword(_model(doc), secret)

    async def of_user(self, user_id: str) -> list[AppPassword]:
        """The user's application passwords, oldest first (no secrets)."""
        user = parse_id(user_id)
        docs = await self._database.run(
            lambda: list(self._docs.find({"user": user}, {"hash": 0}).sort("_id", 1)
                         .limit(MAX_PER_USER)))
        return [_model(d) for d in docs]

    async def revoke(self, user_id: str, app_password_id: str) -> None:
        """Delete one of the user's application passwords (NotFound if not theirs)."""
        query = {"_id": parse_id(app_password_id), "user": parse_id(user_id)}
        result = await self._database.run(self._docs.delete_one, query)
        if result.deleted_count == 0:
            raise NotFound("no such application password")

    def match_sync(self, user: ObjectId, secret: str) -> dict[str, Any] | None:
        """The user's application password equal to ``secret``, if any (blocking)."""
        form = app_password_form(secret)
        if form is None:
            return None
        doc: dict[str, Any] | None = self._docs.find_one({"user": user, "hash": digest(form)})
        return doc

    def used_sync(self, app_password: ObjectId, peer: str, when: dt.datetime) -> None:
        """Record a login with this application password (blocking)."""
        self._docs.update_one({"_id": app_password},
                              {"$set": {"last_used": when, "last_ip": peer}})

    def purge_user_sync(self, user: ObjectId) -> None:
        """Remove all of a user's application passwords (user deletion)."""
        self._docs.delete_many({"user": user})
