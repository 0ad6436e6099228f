"""A user's autoreply and forwarding as plain resources (as WildDuck offers them):
the ``mail_rules`` collection, one document per user (``_id`` is the user).

duck turns them into Sieve rules of its own at delivery (``duck/rules``), run
before the user's script: forwarding first, then the autoreply.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import attrs
from bson import ObjectId

from ..engine import schema
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import InvalidInput

COLLECTION = "mail_rules"
MAX_TARGETS = 10
MAX_TEXT = 16 * 1024
MAX_HTML = 64 * 1024
MAX_SUBJECT = 500
_ADDRESS = re.compile(r"[^\s@<>()\[\],;:\"]{1,64}@[A-Za-z0-9.-]{1,253}\Z")

schema.register(COLLECTION, [])


@attrs.frozen
class Autoreply:
    """An out-of-office reply: sent (once a day per sender, RFC 3834 rules) while
    ``enabled`` and between ``start`` and ``end`` when they are set."""

    enabled: bool
    text: str
    subject: str | None = None
    html: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def active_at(self, now: dt.datetime) -> bool:
        """Whether the reply is on at ``now``."""
        if not self.enabled:
            return False
        if self.start is not None and now < self.start:
            return False
        return self.end is None or now < self.end


@attrs.frozen
class Forwarding:
    """Forward every message to ``targets``; ``keep`` keeps a copy as well."""

    targets: tuple[str, ...]
    keep: bool = True


@attrs.frozen
class MailRules:
    """A user's autoreply and forwarding (either may be unset)."""

    autoreply: Autoreply | None = None
    forwarding: Forwarding | None = None


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _check_autoreply(value: Autoreply) -> Autoreply:
    if len(value.text) > MAX_TEXT or (value.html is not None and len(value.html) > MAX_HTML):
        raise InvalidInput("autoreply text too long")
    if value.subject is not None and (len(value.subject) > MAX_SUBJECT
                                      or any(c in value.subject for c in "\r\n\0")):
        raise InvalidInput("bad autoreply subject")
    start, end = _utc(value.start), _utc(value.end)
    if start is not None and end is not None and end <= start:
        raise InvalidInput("the autoreply ends before it starts")
    return attrs.evolve(value, start=start, end=end)


def _check_forwarding(value: Forwarding) -> Forwarding:
    targets = tuple(t.strip() for t in value.targets)
    if not 0 < len(targets) <= MAX_TARGETS:
        raise InvalidInput(f"1 to {MAX_TARGETS} forwarding targets")
    for target in targets:
        if not _ADDRESS.match(target):
            raise InvalidInput(f"bad forwarding address {target[:80]!r}")
    return Forwarding(targets, value.keep)


def rules_from_doc(doc: dict[str, Any] | None) -> MailRules:
    """A user's rules from their document (None: the defaults)."""
    if doc is None:
        return MailRules()
    auto = doc.get("autoreply")
    fwd = doc.get("forwarding")
    return MailRules(
        Autoreply(auto["enabled"], auto["text"], auto.get("subject"), auto.get("html"),
                  _utc(auto.get("start")), _utc(auto.get("end"))) if auto else None,
        Forwarding(tuple(fwd["targets"]), bool(fwd["keep"])) if fwd else None)


class MailRulesStore:
    """``store.sieve``'s autoreply and forwarding half."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def _rules(self) -> Any:
        return self._database.collection(COLLECTION)

    async def rules(self, user_id: str) -> MailRules:
        """The user's autoreply and forwarding."""
        user = parse_id(user_id)
        return rules_from_doc(await self._database.run(self._rules.find_one, {"_id": user}))

    def rules_sync(self, users: list[ObjectId]) -> dict[str, MailRules]:
        """The rules of those of ``users`` who have any (blocking; one query)."""
        return {str(d["_id"]): rules_from_doc(d)
                for d in self._rules.find({"_id": {"$in": users}})}

    async def set_autoreply(self, user_id: str, value: Autoreply | None) -> MailRules:
        """Set (or clear, with None) the user's autoreply."""
        user = parse_id(user_id)
        doc: dict[str, Any] | None = None
        if value is not None:
            value = _check_autoreply(value)
            doc = attrs.asdict(value)
        await self._database.run(lambda: self._rules.update_one(
            {"_id": user}, {"$set": {"autoreply": doc}}, upsert=True))
        return await self.rules(user_id)

    async def set_forwarding(self, user_id: str, value: Forwarding | None) -> MailRules:
        """Set (or clear, with None) the user's forwarding."""
        user = parse_id(user_id)
        doc: dict[str, Any] | None = None
        if value is not None:
            value = _check_forwarding(value)
            doc = {"targets": list(value.targets), "keep": value.keep}
        await self._database.run(lambda: self._rules.update_one(
            {"_id": user}, {"$set": {"forwarding": doc}}, upsert=True))
        return await self.rules(user_id)


def purge_user(database: Database, user: ObjectId) -> None:
    """Forget a deleted user's autoreply and forwarding (blocking)."""
    database.collection(COLLECTION).delete_many({"_id": user})
