"""Per-user API tokens: bearer tokens that reach one user's resources only.

A token is drawn by the server (tokens.py), shown once, and kept as its SHA-256
digest under a unique index; each API request looks it up in the database, so a
revoked or expired token stops working at once in every process. Expired tokens
are removed by a TTL index on ``expires`` (and refused before that by the query).
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
from .tokens import API_TOKEN_PREFIX, digest, new_api_token

API_TOKENS = "api_tokens"
#: Default and longest token lifetimes.
DEFAULT_TTL = dt.timedelta(days=1)
MAX_TTL = dt.timedelta(days=365)
#: Most live tokens one user may have (a per-user cap).
MAX_PER_USER = 100
MAX_DESCRIPTION = 256

schema.register(API_TOKENS, [
    schema.IndexModel([("hash", schema.ASCENDING)], unique=True, name="hash"),
    schema.IndexModel([("user", schema.ASCENDING)], name="user"),
    schema.IndexModel([("expires", schema.ASCENDING)], expireAfterSeconds=0, name="ttl"),
])


@attrs.frozen
class ApiToken:
    """A token as listed (never the token itself)."""

    id: str
    user_id: str
    description: str
    created: dt.datetime
    expires: dt.datetime
    #: The application password it was obtained with, if any.
    app_password: str | None = None


@attrs.frozen
class NewApiToken:
    """A created token and its secret, which is shown only this once."""

    token: ApiToken
    secret: str


def _model(doc: dict[str, Any]) -> ApiToken:
    return ApiToken(id=str(doc["_id"]), user_id=str(doc["user"]),
                    description=doc.get("description", ""), created=doc["created"],
                    expires=_aware(doc["expires"]), app_password=doc.get("app_password"))


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class ApiTokens:
    """The ``api_tokens`` collection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def _docs(self) -> Any:
        return self._database.collection(API_TOKENS)

    async def create(self, user_id: str, *, ttl: dt.timedelta = DEFAULT_TTL,
                     description: str = "", app_password: str | None = None) -> NewApiToken:
        """A new token for the user, valid for ``ttl`` (InvalidInput, NotFound)."""
        user = parse_id(user_id)
        if not dt.timedelta(seconds=1) <= ttl <= MAX_TTL:
            raise InvalidInput("token lifetime must be between 1 second and 365 days")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise InvalidInput(f"description must be a string of at most {MAX_DESCRIPTION}")
        secret = new_api_token()
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        doc = {"_id": ObjectId(), "user": user, "hash": digest(secret),
               "description": description, "created": now, "expires": now + ttl,
               "app_password": app_password}

        def run() -> None:
            if self._database.collection(schema.USERS).count_documents({"_id": user}) == 0:
                raise NotFound("no such user")
            live = {"user": user, "expires": {"$gt": now}}
            if self._docs.count_documents(live) >= MAX_PER_USER:
                raise InvalidInput("too many API tokens")
            self._docs.insert_one(doc)

        await self._database.run(run)
        return NewApiToken(_model(doc), secret)

    async def resolve(self, secret: str) -> ApiToken | None:
        """The live token with this secret, or None (unknown, revoked, expired, or
        its user disabled)."""
        if not secret.startswith(API_TOKEN_PREFIX) or len(secret) > 128:
            return None
        now = dt.datetime.now(dt.UTC)

        def run() -> dict[str, Any] | None:
            doc: dict[str, Any] | None = self._docs.find_one(
                {"hash": digest(secret), "expires": {"$gt": now}})
            if doc is None:
                return None
            # A disabled (or deleted) user's tokens stop working with the logins.
            users = self._database.collection(schema.USERS)
            if users.count_documents({"_id": doc["user"], "disabled": {"$ne": True}}) == 0:
                return None
            return doc

        doc = await self._database.run(run)
        return None if doc is None else _model(doc)

    async def of_user(self, user_id: str) -> list[ApiToken]:
        """The user's live tokens, oldest first."""
        user = parse_id(user_id)
        now = dt.datetime.now(dt.UTC)
        docs = await self._database.run(lambda: list(
            self._docs.find({"user": user, "expires": {"$gt": now}}, {"hash": 0})
            .sort("_id", 1).limit(MAX_PER_USER)))
        return [_model(d) for d in docs]

    async def revoke(self, user_id: str, token_id: str) -> None:
        """Delete one of the user's tokens (NotFound if not theirs)."""
        query = {"_id": parse_id(token_id), "user": parse_id(user_id)}
        result = await self._database.run(self._docs.delete_one, query)
        if result.deleted_count == 0:
            raise NotFound("no such token")

    def purge_user_sync(self, user: ObjectId) -> None:
        """Remove all of a user's tokens (user deletion, password change)."""
        self._docs.delete_many({"user": user})
