"""What the soak's tasks share: the cluster, the users, the model, the pause gate."""

from __future__ import annotations

import random
from typing import Any

import attrs
import trio

from .cluster import Cluster, Duck
from .imap import Imap, ImapDown
from .model import Expect, Stats, Uids, Violations

PASSWORD = "soak-password-1"


@attrs.define
class User:
    """A user the load runs as."""

    id: str
    address: str
    inbox: str

    def key(self, box: str) -> str:
        """The expectation key of one of this user's mailboxes."""
        return f"{self.address}/{box}"


@attrs.define
class Gate:
    """Pauses the load at checkpoints: tasks park between operations."""

    open: trio.Event = attrs.Factory(trio.Event)
    parked: int = 0

    async def park(self) -> None:
        """Wait here while a checkpoint runs."""
        if not self.open.is_set():
            self.parked += 1
            try:
                await self.open.wait()
            finally:
                self.parked -= 1


@attrs.define
class Soak:
    """The shared state of one run."""

    cluster: Cluster
    rng: random.Random
    users: list[User] = attrs.Factory(list)
    stats: Stats = attrs.Factory(Stats)
    violations: Violations = attrs.Factory(Violations)
    expect: Expect = attrs.field(init=False)
    uids: Uids = attrs.field(init=False)
    gate: Gate = attrs.Factory(Gate)
    #: Parties that park at the gate (load tasks and the fault injector).
    parties: int = 0
    #: Seconds an operation may take before its outcome counts as unknown; long
    #: enough to ride out a database restart (3-12 s measured).
    timeout: float = 45.0
    stopping: bool = False
    #: The harness's own store client (checks, evidence).
    cluster_store: Any = None

    def __attrs_post_init__(self) -> None:
        self.expect = Expect(self.violations)
        self.uids = Uids(self.violations)

    async def duck(self) -> Duck:
        """A live ``duck serve`` (random), waiting for one if none is up."""
        while True:
            live = self.cluster.live()
            if live:
                return self.rng.choice(live)
            await trio.sleep(0.2)

    async def login(self, user: User, on: list[str] | None = None) -> Imap | None:
        """An authenticated IMAP connection to a random live process, or None (a
        fault is under way: the caller parks, waits and retries)."""
        duck = await self.duck()
        if on is not None:
            on[:] = [f"{duck.name} start {duck.starts}"]
        try:
            conn = await Imap.connect(duck.ports["imap"], self.timeout)
        except ImapDown as exc:
            self.stats.done("IMAP login", False, repr(exc))
            await trio.sleep(0.5)
            return None
        try:
            reply = await conn.command(f'LOGIN "{user.address}" "{PASSWORD}"')
        except ImapDown as exc:
            self.stats.done("IMAP login", False, repr(exc))
            await conn.aclose()
            await trio.sleep(0.5)
            return None
        self.stats.done("IMAP login", reply.ok, f"{reply.status} {reply.text!r}")
        if not reply.ok:
            await conn.aclose()
            await trio.sleep(0.5)
            return None
        return conn
