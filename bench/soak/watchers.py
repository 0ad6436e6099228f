"""Readers of the changes: one SSE stream and one IDLE session per user, each
reconnecting (SSE with ``Last-Event-ID``) after every fault.

The SSE reader records every change event it is given, keyed by (mailbox, modseq),
which the journal gives to exactly one change: a key seen twice is a repeat, a
modseq not above the last of its mailbox is out of order; checkpoints compare the
keys with the journal. The IDLE session keeps the view a client builds from
untagged responses (EXISTS, EXPUNGE, FETCH FLAGS; on EXISTS it leaves IDLE to
fetch the new messages' UIDs and flags, as clients do); checkpoints compare it
with a fresh SELECT + FETCH.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import httpx
import trio

from .context import Soak, User
from .imap import Imap, ImapDown, fetch_items

#: Events that carry no change of their own.
_META = ("ready", "mailbox.counters", "resync")
_SSE_RULE = "SSE: every change once and in order"


@attrs.define
class SseWatch:
    """One user's SSE stream across reconnects."""

    soak: Soak
    user: User
    last_id: str | None = None
    seen: set[tuple[str, int]] = attrs.Factory(set)
    last_modseq: dict[str, int] = attrs.Factory(dict)
    started: trio.Event = attrs.Factory(trio.Event)
    events: int = 0

    async def run(self) -> None:
        """Read, reconnecting after every failure, until cancelled."""
        while True:
            duck = await self.soak.duck()
            headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
            try:
                async with httpx.AsyncClient(
                        base_url=f"http://127.0.0.1:{duck.ports['api']}",
                        timeout=httpx.Timeout(10, read=None)) as client, \
                        client.stream("GET", f"/users/{self.user.id}/updates",
                                      headers=headers) as response:
                    if response.status_code != 200:
                        raise httpx.HTTPError(f"status {response.status_code}")
                    self.soak.stats.done("SSE connect", True)
                    await self._read(response)
            except (httpx.HTTPError, OSError, EOFError, trio.BrokenResourceError) as exc:
                self.soak.stats.done("SSE connect", False, repr(exc))
            await trio.sleep(0.3)

    async def _read(self, response: httpx.Response) -> None:
        event: dict[str, str] = {}
        data: list[str] = []
        async for line in response.aiter_lines():
            if line == "":
                if event or data:
                    self._event(event.get("event", "message"), event.get("id"),
                                json.loads("\n".join(data)) if data else {})
                event, data = {}, []
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                elif name in ("event", "id"):
                    event[name] = value
        raise EOFError("stream ended")

    def _event(self, kind: str, event_id: str | None, data: dict[str, Any]) -> None:
        if event_id:
            self.last_id = event_id
        if kind == "ready":
            self.started.set()
        if kind == "resync":
            self.soak.violations.add(_SSE_RULE, f"{self.user.address}: resync {data}")
        if kind in _META or data.get("modseq") is None:
            return
        self.events += 1
        self.soak.stats.done("SSE event", True)
        key = (str(data["mailbox"]), int(data["modseq"]))
        if key in self.seen:
            self.soak.violations.add(_SSE_RULE, f"{self.user.address}: {kind} {key} repeated")
            return
        self.seen.add(key)
        last = self.last_modseq.get(key[0], 0)
        if key[1] <= last:
            self.soak.violations.add(_SSE_RULE, f"{self.user.address}: {kind} {key} after "
                                                f"modseq {last} of that mailbox")
        self.last_modseq[key[0]] = max(last, key[1])


@attrs.define
class IdleWatch:
    """One user's IMAP session IDLE on INBOX, and the view it has been told."""

    soak: Soak
    user: User
    #: (uid, flags) by sequence number; None until fetched.
    view: list[list[Any]] = attrs.Factory(list)
    #: True while IDLE with every message's UID and flags known.
    current: bool = False
    updates: int = 0
    #: Which process the session is on (for reports).
    on: list[str] = attrs.Factory(list)

    async def run(self) -> None:
        """Keep a session IDLE, reconnecting after every failure, until cancelled."""
        while True:
            self.current = False
            conn = await self.soak.login(self.user, self.on)
            if conn is None:
                continue
            try:
                await self._session(conn)
            except (ImapDown, trio.TooSlowError) as exc:
                self.soak.stats.done("IDLE session", False, repr(exc))
            finally:
                self.current = False
                await conn.aclose()
            await trio.sleep(0.3)

    def _apply(self, line: bytes) -> None:
        """One untagged response into the view."""
        parts = line.split(b" ")
        if len(parts) < 3 or parts[0] != b"*" or not parts[1].isdigit():
            return
        n = int(parts[1])
        if parts[2] == b"EXISTS":
            self.updates += 1
            while len(self.view) < n:
                self.view.append([None, None])
            del self.view[n:]  # (never: EXISTS does not shrink without EXPUNGE)
        elif parts[2] == b"EXPUNGE":
            self.updates += 1
            if 0 < n <= len(self.view):
                del self.view[n - 1]
        elif parts[2] == b"FETCH":
            item = fetch_items(line)
            if item is None or not 0 < n <= len(self.view):
                return
            self.updates += 1
            entry = self.view[n - 1]
            if item[1] is not None:
                entry[0] = item[1]
            if item[2] is not None:
                entry[1] = item[2]

    async def _command(self, conn: Imap, text: str) -> None:
        reply = await conn.command(text)
        for line in reply.untagged:
            self._apply(line)
        if not reply.ok:
            raise ImapDown(f"{text}: {reply.status}")

    async def _session(self, conn: Imap) -> None:
        self.view = []
        await self._command(conn, "SELECT INBOX")
        self.soak.stats.done("IDLE session", True)
        while True:
            missing = [i for i, (uid, flags) in enumerate(self.view)
                       if uid is None or flags is None]
            if missing:
                await self._command(conn, f"FETCH {missing[0] + 1}:* (UID FLAGS)")
                continue
            tag = conn.next_tag()
            await conn.send(tag + b" IDLE\r\n")
            with trio.fail_after(self.soak.timeout):
                while not (line := await conn.response()).startswith(b"+"):
                    self._apply(line)
            self.current = True
            while True:
                line = await conn.response()  # no timeout: IDLE waits for changes
                self._apply(line)
                if any(uid is None or flags is None for uid, flags in self.view):
                    break
            self.current = False
            await conn.send(b"DONE\r\n")
            with trio.fail_after(self.soak.timeout):
                while not (line := await conn.response()).startswith(tag + b" "):
                    self._apply(line)
            if not line.startswith(tag + b" OK"):
                raise ImapDown(f"IDLE: {line!r}")
