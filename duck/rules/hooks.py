"""The store's answers to a running script (``duck.sieve.Hooks``) for one user."""

from __future__ import annotations

from ..store import NotFound, Store


class StoreHooks:
    """``mailboxexists``, ``duplicate`` and ``include`` against one user's data."""

    def __init__(self, store: Store, user_id: str) -> None:
        self._store = store
        self._user_id = user_id
        self._exists: dict[str, bool] = {}

    async def mailbox_exists(self, name: str) -> bool:
        """Does the user have mailbox ``name`` (asked once per run per name)?"""
        if name not in self._exists:
            try:
                await self._store.mailboxes.get(self._user_id, name)
                self._exists[name] = True
            except NotFound:
                self._exists[name] = False
        return self._exists[name]

    async def duplicate(self, key: str, seconds: int, last: bool) -> bool:
        """RFC 7352's memory, kept per user in the store."""
        return await self._store.sieve.duplicate(self._user_id, key, seconds, last)

    async def load_script(self, name: str, location: str) -> str | None:
        """The user's own script ``name``. duck keeps no global scripts (RFC 6609
        section 3.2 lets a site have none): ``include :global`` finds nothing."""
        if location != "personal":
            return None
        try:
            return (await self._store.sieve.get(self._user_id, name)).source
        except NotFound:
            return None
