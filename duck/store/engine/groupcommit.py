"""Group commit: the transactions of concurrent store calls made one.

Under load most of the database's CPU goes to write transactions, and a good part
of each one's cost is the transaction itself: its start, its commit and the commit's
sync, the same for one message as for ten (measured on the embedded engine: a
transaction of a reservation, a flag update and a journal entry costs ~0.75 ms of
its CPU alone, ~0.55 ms each when four of them share one; docs/architecture.md,
"Sessions and round trips"). So the writes of store calls that are ready at the
same time go to the database together: one ``bulkWrite`` and one
``commitTransaction`` for all.

Who takes part: an inline transaction (inline.py) whose first command is its
batch's flush (batch.py) — the reservation made on a known mailbox document
(mail/counters.py) lets a STORE, an EXPUNGE, an APPEND or a delivery send its whole
change so. A transaction that reads first keeps to itself; so does one that tried a
group and failed (below).

How: the first flush to come opens a group and leads it; flushes that come while it
waits join it. The leader waits one pass of the scheduler (tasks ready at the same
moment join) and then for a free place among ``DEPTH`` groups in flight, and sends
every member's writes, in order, in one ``bulkWrite`` of its own transaction. Each
member gets back its own writes' results and goes on with its transaction's body as
if it had sent them itself (checks the reservation, and so on); when every member
has ended its body, the last one commits the group's transaction, or aborts it if any
member failed, and every member gets the outcome.

Most often the results leave nothing to decide: every write a member checks (its
reservation, its quota charge) changed its one document, which is all any check
asks, and a member sends nothing more after its writes (inline.Session.apply). The
leader then commits at once, as the results come back, instead of after each member
has had its turn of the event loop: under imaptest's load that turn was a few
milliseconds a group, with the transaction open on the server meanwhile (measured:
~10% more commands/s; docs/architecture.md). A member's body that fails all the same
(a bug) raises ``CommittedAlready``: its writes stand, and nothing makes them again.

Why it stays exact: each member's writes are those it would have sent alone, in its
own order, under its own locks; what a member's body decides from the results it
decides before the commit, and any member's failure (its reservation missed, a
duplicate key, a conflict) takes the whole group back. The others are told to try
again (``TransientTransactionError``, as a write conflict is) and do, each on its
own; a transaction never commits writes of a member that did not finish well.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import greenback
import pymongo.errors
import trio

from . import inline, promptly

if TYPE_CHECKING:
    from .database import Database

#: Groups in flight at once (sent, not yet committed). One would make every write
#: of the process wait for the group before it; more let the database's cores work
#: on several while the next one gathers. 0 turns group commit off (every
#: transaction its own, to compare).
DEPTH = int(os.environ.get("DUCK_GROUP_DEPTH", "2"))
#: Most writes one group sends (a transaction of many documents outgrows the
#: embedded engine's cache: "Transaction is too large"); a flush that would pass it
#: is sent on its own.
MAX_WRITES = 400
#: The phases of a group whose seconds are counted (``Committer.seconds``).
PHASES = ("gather", "slot", "writes", "commit")


class CommittedAlready(RuntimeError):
    """A member's transaction body failed after its group had committed early: a
    bug (such a body has nothing left to decide); never retried."""


class GroupFailed(pymongo.errors.OperationFailure):
    """Another member of this transaction's group failed: the group was taken back,
    and this member's transaction is tried again, on its own."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"group commit taken back: {reason}")
        self._add_error_label("TransientTransactionError")


class Member:
    """One transaction's part of a group: its writes, and what came back."""

    __slots__ = ("checked", "error", "first", "items", "rows")

    def __init__(self, items: list[dict[str, Any]], checked: set[int]) -> None:
        self.items = items
        self.checked = checked
        #: Index of this member's first write in the group's bulkWrite.
        self.first = 0
        #: The reply rows of this member's writes (``idx`` made its own).
        self.rows: list[dict[str, Any]] = []
        self.error: BaseException | None = None


class Group:
    """Writes of several transactions, sent and committed as one."""

    def __init__(self, committer: Committer) -> None:
        self._committer = committer
        self.members: list[Member] = []
        self.writes = 0
        #: Namespace -> its index in the bulkWrite's ``nsInfo``.
        self.spaces: dict[str, int] = {}
        self.sent = trio.Event()
        self.done = trio.Event()
        #: Members whose transaction body has not ended yet.
        self.running = 0
        self.failed: str | None = None
        #: The logical session the group's transaction is sent in (from ``_send``).
        self.session: inline.Session | None = None
        #: What every member that ended well gets from the commit (None: committed).
        self.outcome: BaseException | None = None
        #: The commit (or the abort) was made: by the leader, as soon as the writes
        #: came back, when they left nothing for the members' bodies to decide.
        self.settled = False

    def end(self, ok: bool) -> None:
        """A member's transaction body ended (well: it asks for the commit; else it
        takes its part back, and the group with it); returns once the group is
        committed or taken back, raising what the commit raised (blocking: from
        inside an inline call)."""
        self.running -= 1
        if self.settled:
            # (Committed, or taken back, by the leader as soon as the writes were
            # back: ``Committer._send``.)
            if not ok and self.outcome is None:
                # Its writes stand: the body had nothing left to decide (the group
                # commits early only then), so this is a bug, raised as one. Not
                # the body's own error: a retry, or a write the usual way after a
                # "miss", would make the change twice.
                raise CommittedAlready("a transaction body failed after its group "
                                       "had committed its writes")
        else:
            if not ok and self.failed is None:
                self.failed = "a member failed"
            if self.running == 0:
                self._committer.finish(self)
            else:
                greenback.await_(self.done.wait())
        if ok and self.outcome is not None:
            if isinstance(self.outcome, GroupFailed):
                raise GroupFailed(self.failed or "the commit failed")  # (one per member)
            raise self.outcome


class Committer:
    """The groups of one database (per ``trio.run``: its events are that run's)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._gathering: Group | None = None
        self._slots = trio.Semaphore(max(DEPTH, 1))
        #: Groups committed, and members they carried (what tests and benchmarks
        #: look at); groups taken back.
        self.groups = 0
        self.members = 0
        self.failures = 0
        #: Groups the leader committed as soon as their writes were back.
        self.early = 0
        #: Seconds the groups spent, all together, in each phase: the pass that
        #: lets other writes join (``gather``), waiting for a place among the
        #: groups in flight (``slot``), the bulkWrite's round trip (``writes``) and
        #: the commit's (``commit``). What a member waits for, its group's latency,
        #: is their sum (docs/architecture.md, "Facts about the embedded database (measured)").
        self.seconds = dict.fromkeys(PHASES, 0.0)

    def phase_seconds(self) -> dict[str, float]:
        """Seconds spent in each phase of the groups (``seconds``)."""
        return dict(self.seconds)

    def statistics(self) -> dict[str, int]:
        """Groups committed, the members they carried, groups taken back, and the
        groups committed as their writes came back (``early``)."""
        return {"groups": self.groups, "members": self.members, "failures": self.failures,
                "early": self.early}

    def join(self, session: inline.Session, items: list[dict[str, Any]],
             spaces: list[str], checked: set[int]) -> list[dict[str, Any]] | None:
        """Send ``items`` (bulkWrite ops whose ``insert``/``update``/``delete`` index
        ``spaces``) with a group, for ``session``'s transaction; their reply rows,
        with ``idx`` counted from this member's first write (None: not taken, send
        them alone). Blocking: from inside an inline call."""
        group = self._gathering
        if len(items) + (0 if group is None else group.writes) > MAX_WRITES:
            return None
        member = Member(items, checked)
        leader = group is None
        if group is None:
            group = self._gathering = Group(self)
        for item in items:
            for kind in ("insert", "update", "delete"):
                if kind in item:
                    item[kind] = group.spaces.setdefault(spaces[item[kind]],
                                                         len(group.spaces))
                    break
        member.first = group.writes
        group.writes += len(items)
        group.members.append(member)
        session.group = group
        if leader:
            greenback.await_(self._send(group))
        else:
            greenback.await_(group.sent.wait())
        if member.error is not None:
            raise member.error
        return member.rows

    async def _send(self, group: Group) -> None:
        seconds, started = self.seconds, time.perf_counter()
        # (Tasks made ready at the same moment as this one join first.)
        await trio.lowlevel.cancel_shielded_checkpoint()
        gathered = time.perf_counter()
        await promptly.acquire(self._slots)  # (no second pass when a place is free)
        placed = time.perf_counter()
        seconds["gather"] += gathered - started
        seconds["slot"] += placed - gathered
        if self._gathering is group:
            self._gathering = None
        group.running = len(group.members)
        database = self._database
        session = database.wire_sessions.pop() if database.wire_sessions else inline.Session()
        session.txn_number += 1
        session.in_transaction, session.started = True, False
        group.session = session
        items = [item for m in group.members for item in m.items]
        verbose = any(m.checked for m in group.members)
        command: dict[str, Any] = {
            "bulkWrite": 1, "ops": items, "nsInfo": [{"ns": ns} for ns in group.spaces],
            "ordered": True, "errorsOnly": not verbose}
        session.apply(command)
        try:
            rows = await inline.rows_of(database, command, session)
        except BaseException as exc:  # (the group's command itself failed)
            group.failed = str(exc)
            for member in group.members:
                member.error = exc
            group.sent.set()
            return
        finally:
            seconds["writes"] += time.perf_counter() - placed
        stopped: int | None = None
        for row in rows:
            i = int(row.get("idx", 0))
            member = _owner(group.members, i)
            if not row.get("ok"):
                stopped = i
                member.error = inline.write_failure(row)
                group.failed = "a write failed"
                continue
            if i - member.first in member.checked:
                member.rows.append({**row, "idx": i - member.first})
        if stopped is not None:
            # (Ordered: the writes after the failed one were not made.)
            for member in group.members:
                if member.first + len(member.items) > stopped and member.error is None:
                    member.error = GroupFailed("a write of another member failed")
        elif _decided(group.members):
            # Nothing is left for the members' bodies to decide: commit now, not
            # after each of them has had its turn of the event loop (under load a
            # few milliseconds, while the transaction holds its documents).
            try:
                await self._settle(group)
            finally:
                group.sent.set()  # (whatever the commit did: the members see it)
            if group.outcome is None:
                self.early += 1
            return
        group.sent.set()

    def finish(self, group: Group) -> None:
        """Commit the group's transaction, or take it back (the last member to end
        calls this; blocking)."""
        greenback.await_(self._settle(group))

    async def _settle(self, group: Group) -> None:
        """Commit the group's transaction (or take it back, when it failed), tell
        every member how it ended, and give its session and its place back."""
        session = group.session
        assert session is not None
        database = self._database
        group.settled = True
        started = time.perf_counter()
        try:
            if group.failed is None:
                try:
                    await inline.commit_async(
                        database, session, time.monotonic() + inline.TRANSACTION_RETRY_SECONDS)
                except pymongo.errors.PyMongoError as exc:
                    group.outcome = exc
                    if exc.has_error_label("TransientTransactionError"):
                        group.failed = f"the commit failed: {exc}"
                        group.outcome = GroupFailed(group.failed)
            else:
                await inline.abort_async(database, session)
                group.outcome = GroupFailed(group.failed)
        except BaseException as exc:
            group.outcome = exc
            raise
        finally:
            self.seconds["commit"] += time.perf_counter() - started
            if group.outcome is None:
                self.groups += 1
                self.members += len(group.members)
            else:
                self.failures += 1
            session.in_transaction = False
            database.wire_sessions.append(session)
            self._slots.release()
            group.done.set()


def _decided(members: list[Member]) -> bool:
    """Whether the group's writes, all made, leave nothing for its members' bodies
    to decide: every write a member checks (a reservation, a quota charge:
    ``WriteBatch.check``) changed its one document, which is all any check asks,
    and a member sends nothing more in the transaction (inline.Session.apply)."""
    for member in members:
        if len(member.rows) != len(member.checked):
            return False
        for row in member.rows:
            if row.get("n", 0) < 1 or row.get("nModified", 0) != 1:
                return False
    return True


def _owner(members: list[Member], index: int) -> Member:
    """The member whose writes include the group's write ``index``."""
    for member in members:
        if member.first <= index < member.first + len(member.items):
            return member
    return members[-1]


def committer(database: Database) -> Committer:
    """The database's committer in this ``trio.run``."""
    try:
        return database.committers.get()
    except LookupError:
        made = Committer(database)
        database.committers.set(made)
        return made
