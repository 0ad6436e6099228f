"""HTTP API changes of the load, per user: flag changes and deletions of INBOX
messages, and a mailbox's life (create, upload, flag, rename, delete).

Any answer but a 2xx, or none, leaves the outcome unknown."""

from __future__ import annotations

from typing import Any

import attrs
import httpx
import trio

from .context import Soak, User
from .model import message, new_id

#: INBOX is trimmed by API deletions above this many messages.
MAX_INBOX = 40


class _Unknown(Exception):
    pass


@attrs.define
class ApiBox:
    """A mailbox the API worker made: its id, path, and whether it is known to exist
    (None: an operation on it had an unknown outcome, so it is not checked)."""

    id: str
    path: str
    exists: bool | None = True
    uploads: int = 0


class ApiWorker:
    """One user's API client."""

    def __init__(self, soak: Soak, user: User) -> None:
        self.soak = soak
        self.user = user
        self.box: ApiBox | None = None
        self.boxes: list[ApiBox] = []
        self.serial = 0

    async def _call(self, kind: str, method: str, path: str, **kw: Any) -> Any:
        duck = await self.soak.duck()
        base = f"http://127.0.0.1:{duck.ports['api']}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=self.soak.timeout) as client:
                r = await client.request(method, path, **kw)
        except (httpx.HTTPError, OSError) as exc:
            self.soak.stats.done(kind, False, repr(exc))
            raise _Unknown(str(exc)) from exc
        if not r.is_success:
            self.soak.stats.done(kind, False, f"{r.status_code} {r.text[:200]}")
            raise _Unknown(f"{r.status_code} {r.text[:200]}")
        self.soak.stats.done(kind, True)
        return r.json()

    async def run(self) -> None:
        """Run operations until the soak stops (parking at checkpoints)."""
        while not self.soak.stopping:
            await self.soak.gate.park()
            if self.soak.stopping:
                break
            try:
                if self.soak.rng.random() < 0.6:
                    await self._inbox()
                else:
                    await self._lifecycle()
            except _Unknown:
                await trio.sleep(0.3)
            await trio.sleep(self.soak.rng.uniform(0.05, 0.3))

    async def _inbox(self) -> None:
        base = f"/users/{self.user.id}/mailboxes/{self.user.inbox}/messages"
        listing = await self._call("API list", "GET", base, params={"limit": 100})
        items = listing["results"]
        if not items:
            return
        item = self.soak.rng.choice(items)
        if listing["total"] > MAX_INBOX or self.soak.rng.random() < 0.2:
            sid = (item.get("subject") or "").removeprefix("soak ")
            key = self.user.key("INBOX")
            try:
                await self._call("API delete message", "DELETE", f"{base}/{item['uid']}")
            except _Unknown as exc:
                self.soak.expect.remove(key, sid, False)
                self.soak.expect.note(sid, f"API delete of UID {item['uid']}: unknown {exc}")
                raise
            self.soak.expect.remove(key, sid, True)
            self.soak.expect.note(sid, f"API delete of UID {item['uid']}: ok")
            return
        flag = self.soak.rng.choice(["\\Seen", "\\Flagged", "$Api"])
        change = {"add": [flag]} if self.soak.rng.random() < 0.5 else {"remove": [flag]}
        await self._call("API flags", "PUT", f"{base}/{item['uid']}/flags", json=change)

    async def _lifecycle(self) -> None:
        box = self.box
        if box is None:
            self.serial += 1
            path = f"Api{self.serial}"
            made = await self._call("API create mailbox", "POST",
                                    f"/users/{self.user.id}/mailboxes", json={"path": path})
            self.box = ApiBox(made["id"], path)
            self.boxes.append(self.box)
            return
        key = self.user.key(f"api:{box.id}")
        base = f"/users/{self.user.id}/mailboxes/{box.id}"
        step = self.soak.rng.choice(["upload", "upload", "flags", "rename", "delete"])
        try:
            if step == "upload" and box.uploads < 5:
                sid = new_id()
                try:
                    await self._call("API upload", "POST", f"{base}/messages",
                                     content=message(sid),
                                     headers={"Content-Type": "message/rfc822"})
                except _Unknown as exc:
                    self.soak.expect.add(key, sid, False)
                    self.soak.expect.note(sid, f"API upload to {box.path}: unknown {exc}")
                    raise
                box.uploads += 1
                self.soak.expect.add(key, sid, True)
                self.soak.expect.note(sid, f"API upload to {box.path}: ok")
            elif step in ("upload", "flags"):
                listing = await self._call("API list", "GET", f"{base}/messages")
                if listing["results"]:
                    uid = self.soak.rng.choice(listing["results"])["uid"]
                    await self._call("API flags", "PUT", f"{base}/messages/{uid}/flags",
                                     json={"add": ["\\Seen"]})
            elif step == "rename":
                new = f"{box.path}r"
                try:
                    await self._call("API rename mailbox", "PUT", base, json={"path": new})
                except _Unknown:
                    box.exists = None
                    raise
                box.path = new
            else:
                try:
                    await self._call("API delete mailbox", "DELETE", base)
                except _Unknown:
                    box.exists = None
                    raise
                box.exists = False
                self.soak.expect.forget(key)
                self.box = None
        except _Unknown:
            if box.exists is None:
                self.soak.expect.forget(key)
                self.box = None  # not knowing its state, start a new one
            raise
