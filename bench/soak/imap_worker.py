"""An IMAP client of the load: APPEND, STORE, COPY, MOVE, EXPUNGE and short IDLEs
on two mailboxes it alone changes, so that it knows what each must hold.

It keeps a map UID -> soak id of both mailboxes from the server's own answers
(APPENDUID, COPYUID) and reads it again from the server after any operation whose
outcome is unknown. The expected copies (``Expect``) change only by what was
acknowledged or might have happened; checkpoints compare them with the database.
"""

from __future__ import annotations

import trio

from .context import Soak, User
from .imap import SOAK_ID, Imap, ImapDown, appenduid, copyuid, fetch_items, uidvalidity
from .model import message, new_id

#: A mailbox larger than this is trimmed by EXPUNGE first.
MAX_BOX = 30


class _Resync(Exception):
    """An outcome was unknown: read the mailboxes again before going on."""


class ImapWorker:
    """One IMAP client of one user, owning mailboxes ``W<n>a`` and ``W<n>b``."""

    def __init__(self, soak: Soak, user: User, index: int) -> None:
        self.soak = soak
        self.user = user
        self.boxes = (f"W{index}a", f"W{index}b")
        self.maps: dict[str, dict[int, str]] = {b: {} for b in self.boxes}
        self.validity: dict[str, int] = {}
        self.conn: Imap | None = None
        self.selected: str | None = None
        self.synced = False
        self._last_sids: list[str] = []

    async def run(self) -> None:
        """Run operations until the soak stops (parking at checkpoints)."""
        while not self.soak.stopping:
            await self.soak.gate.park()
            if self.soak.stopping:
                break
            if self.conn is None:
                self.conn = await self.soak.login(self.user)
                self.selected = None
                self.synced = False
                if self.conn is None:
                    continue
            try:
                if not self.synced:
                    await self._resync()
                await self._operation()
            except _Resync:
                self.synced = False
                await trio.sleep(0.2)  # a NO during a fault: do not spin
            except ImapDown:
                if self.conn is not None:
                    await self.conn.aclose()
                self.conn = None
        if self.conn is not None:
            await self.conn.aclose()

    # -- state ---------------------------------------------------------------------

    async def _select(self, box: str) -> None:
        assert self.conn is not None
        if self.selected == box:
            return
        reply = await self.conn.command(f"SELECT {box}")
        if not reply.ok:
            raise _Resync()
        validity = uidvalidity(reply)
        if validity is None:
            raise _Resync()
        before = self.validity.setdefault(box, validity)
        if before != validity:
            self.soak.violations.add("UIDs unique and increasing",
                                     f"{self.user.key(box)} UIDVALIDITY {before} became "
                                     f"{validity} (never deleted)")
            self.validity[box] = validity
        self.selected = box

    async def _resync(self) -> None:
        """Create the mailboxes if need be and read what they hold."""
        assert self.conn is not None
        for box in self.boxes:
            await self.conn.command(f"CREATE {box}")  # NO if it exists: fine
            self.selected = None
            await self._select(box)
            reply = await self.conn.command("UID FETCH 1:* (UID ENVELOPE)")
            if not reply.ok:
                raise _Resync()
            found: dict[int, str] = {}
            for line in reply.untagged:
                item = fetch_items(line)
                sid = SOAK_ID.search(line)
                if item is None or item[1] is None or sid is None:
                    continue
                found[item[1]] = sid.group().decode()
                self.soak.uids.observed(self.user.key(box), self.validity[box], item[1],
                                        found[item[1]], "resync")
            self.maps[box] = found
        self.synced = True

    # -- operations ----------------------------------------------------------------

    async def _operation(self) -> None:
        rng = self.soak.rng
        box = rng.choice(self.boxes)
        other = self.boxes[1 - self.boxes.index(box)]
        uids = sorted(self.maps[box])
        if len(uids) > MAX_BOX:
            await self._expunge(box, rng.sample(uids, 5))
            return
        kinds = ["append"] * 4 + ["idle"]
        if uids:
            kinds += ["store"] * 2 + ["copy", "move", "move", "expunge"]
        kind = rng.choice(kinds)
        picked = rng.sample(uids, min(len(uids), rng.randint(1, 3))) if uids else []
        if kind == "append":
            await self._append(box)
        elif kind == "store":
            await self._store(box, picked)
        elif kind == "copy":
            await self._copy(box, other, picked, move=False)
        elif kind == "move":
            await self._copy(box, other, picked, move=True)
        elif kind == "expunge":
            await self._expunge(box, picked)
        else:
            await self._idle(box)

    async def _append(self, box: str) -> None:
        assert self.conn is not None
        sid = new_id()
        self._last_sids = [sid]
        key = self.user.key(box)
        flags = self.soak.rng.choice(["", "\\Seen", "\\Flagged \\Seen"])
        try:
            reply = await self.conn.command(f"APPEND {box} ({flags})", message(sid))
        except ImapDown:
            self._unknown("APPEND", lambda: self.soak.expect.add(key, sid, False))
            raise
        assigned = appenduid(reply) if reply.ok else None
        if assigned is None:
            self._unknown("APPEND", lambda: self.soak.expect.add(key, sid, False))
            raise _Resync()
        self.soak.stats.done("APPEND", True)
        self.soak.expect.add(key, sid, True)
        self.soak.expect.note(sid, f"APPEND {key} UID {assigned[1]}")
        self.soak.uids.assigned(key, assigned[0], assigned[1], sid, "APPEND")
        self.maps[box][assigned[1]] = sid

    async def _store(self, box: str, uids: list[int]) -> None:
        assert self.conn is not None
        await self._select(box)
        sign = self.soak.rng.choice("+-")
        flag = self.soak.rng.choice(["\\Seen", "\\Flagged", "$Soak"])
        try:
            reply = await self.conn.command(
                f"UID STORE {','.join(map(str, uids))} {sign}FLAGS ({flag})")
        except ImapDown:
            self.soak.stats.done("STORE", False)
            raise
        self.soak.stats.done("STORE", reply.ok)
        if not reply.ok:
            raise _Resync()

    async def _copy(self, box: str, other: str, uids: list[int], *, move: bool) -> None:
        assert self.conn is not None
        kind = "MOVE" if move else "COPY"
        await self._select(box)
        src, dst = self.user.key(box), self.user.key(other)
        sids = {u: self.maps[box][u] for u in uids}
        self._last_sids = list(sids.values())

        def unknown() -> None:
            for sid in sids.values():
                self.soak.expect.add(dst, sid, False)
                if move:
                    self.soak.expect.remove(src, sid, False)

        try:
            reply = await self.conn.command(f"UID {kind} {','.join(map(str, uids))} {other}")
        except ImapDown:
            self._unknown(kind, unknown)
            raise
        mapping = copyuid(reply) if reply.ok else None
        if mapping is None:
            self._unknown(kind, unknown)
            raise _Resync()
        self.soak.stats.done(kind, True)
        validity, pairs = mapping
        for old, new in pairs.items():
            sid = sids.get(old)
            if sid is None:
                self.soak.violations.add("acknowledged message present exactly once",
                                         f"{kind} answered for UID {old} of {src}, not asked")
                continue
            self.soak.expect.add(dst, sid, True)
            self.soak.expect.note(sid, f"{kind} {src} UID {old} to {dst} UID {new}")
            self.soak.uids.assigned(dst, validity, new, sid, kind)
            self.maps[other][new] = sid
            if move:
                self.soak.expect.remove(src, sid, True)
                self.maps[box].pop(old, None)
        if set(pairs) != set(uids):
            # Some asked-for UIDs were not there: our map was wrong; read again.
            raise _Resync()

    async def _expunge(self, box: str, uids: list[int]) -> None:
        assert self.conn is not None
        await self._select(box)
        key = self.user.key(box)
        sids = [self.maps[box][u] for u in uids]
        self._last_sids = sids
        joined = ",".join(map(str, uids))

        def unknown() -> None:
            for sid in sids:
                self.soak.expect.remove(key, sid, False)

        try:
            marked = await self.conn.command(f"UID STORE {joined} +FLAGS.SILENT (\\Deleted)")
            if not marked.ok:
                raise _Resync()
            reply = await self.conn.command(f"UID EXPUNGE {joined}")
        except ImapDown:
            self._unknown("EXPUNGE", unknown)
            raise
        gone = sum(1 for line in reply.untagged if line.endswith(b" EXPUNGE"))
        if not reply.ok or gone != len(uids):
            self._unknown("EXPUNGE", unknown)
            raise _Resync()
        self.soak.stats.done("EXPUNGE", True)
        for uid, sid in zip(uids, sids, strict=True):
            self.soak.expect.remove(key, sid, True)
            self.soak.expect.note(sid, f"EXPUNGE {key} UID {uid}")
            self.maps[box].pop(uid, None)

    async def _idle(self, box: str) -> None:
        assert self.conn is not None
        await self._select(box)
        tag = self.conn.next_tag()
        try:
            with trio.fail_after(self.soak.timeout):
                await self.conn.send(tag + b" IDLE\r\n")
                while not (await self.conn.response()).startswith(b"+"):
                    pass
                await trio.sleep(self.soak.rng.uniform(0.2, 1.0))
                await self.conn.send(b"DONE\r\n")
                while True:
                    line = await self.conn.response()
                    if line.startswith(tag + b" "):
                        break
        except trio.TooSlowError as exc:
            self.soak.stats.done("IDLE", False)
            raise ImapDown("IDLE timed out") from exc
        except ImapDown:
            self.soak.stats.done("IDLE", False)
            raise
        self.soak.stats.done("IDLE", line.split()[1] == b"OK")

    def _unknown(self, kind: str, widen: object) -> None:
        """Count an operation whose outcome is unknown and widen the expectations."""
        self.soak.stats.done(kind, False)
        assert callable(widen)
        widen()
        for sid in self._last_sids:
            self.soak.expect.note(sid, f"{kind} by {self.user.address}: unknown outcome")
        self.synced = False
