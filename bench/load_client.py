"""The load generator of the ``load`` scenario, run as a process of its own.

    python -m bench.load_client --imap-port P --lmtp-port Q --users a@x,b@x \\
        --password PW --clients 10 --seconds 20 --mode mix --lmtp-connections 4

It is a separate process so that its CPU time is not counted as the server's: the
scenario (bench/scenarios/load.py) runs duck in the bench process and takes that
process's CPU time as duck's. It imports neither duck nor the harness (only the raw
IMAP client and the corpus), connects to loopback only, and talks to the scenario
over its standard streams, one JSON object a line on stdout:

- ``{"event": "ready"}`` once every connection is open (mix: logged in, INBOX
  selected; LMTP: greeted). Then it waits for a line ``go`` on stdin.
- ``{"event": "stopped", ...}`` once every worker has finished its last command of
  the window (``--seconds`` after ``go``); the mix's connections are still open
  (the login cycle's are closed: closing is part of its cycle).
- ``{"event": "result", ...}`` the figures; then it closes its connections and exits.

Modes:

- ``mix``: each client logs in as its own user (``--users``, round robin when there
  are more clients than users) and runs a random mix like imaptest's (``MIX``):
  APPEND, FETCH of ranges (ENVELOPE + BODYSTRUCTURE; header fields), FETCH of one
  whole body, STORE of flags and keywords, STORE \\Deleted + EXPUNGE, SELECT,
  STATUS, LIST, NOOP. It keeps its selected mailbox between ``LOW`` and ``HIGH``
  messages: above ``HIGH`` (LMTP deliveries and APPENDs make it grow) it marks the
  oldest messages \\Deleted and expunges down to ``LOW``.
- ``login``: each client connects, LOGINs, SELECTs INBOX, runs 2-5 commands of
  the mix, LOGOUTs and closes, and starts again.

``--lmtp-connections K`` runs K LMTP connections at the same time, each delivering
small corpus messages to random users back to back.

A NO or BAD reply is counted as an error of its command type; a lost connection is
counted as an error of the command in flight and the client reconnects. Everything
is bounded: a command still running ``GRACE`` seconds after the window is cancelled
and counted as an error (``timeout``).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import sys
import time
from typing import Any

import attrs
import trio

from . import corpus
from .imap_client import ImapClient, ImapError, Reply
from .stats import percentile

HOST = "127.0.0.1"
#: Bounds of the selected mailbox (messages): trimmed to LOW when above HIGH.
LOW = 30
HIGH = 50
#: Seconds a command may still run after the window before it is cancelled.
GRACE = 15.0
#: Seconds to connect and log in before the window.
SETUP_TIMEOUT = 60.0
#: A command slower than this (seconds) is listed in the result's ``slow``.
SLOW = 1.0
#: Messages larger than this are not used (the corpus also has attachments).
MAX_MESSAGE = 16 * 1024
MAILBOXES = ("INBOX", "Archive")
KEYWORDS = ("\\Seen", "\\Flagged", "\\Answered", "$Label1", "$Label2", "$Label3", "$Label4",
            "$Label5")
HEADER_FIELDS = "FROM TO CC SUBJECT DATE MESSAGE-ID IN-REPLY-TO REFERENCES"

#: Command type -> weight of the random mix.
MIX: dict[str, int] = {
    "NOOP": 10,
    "FETCH envelope": 15,
    "FETCH headers": 15,
    "FETCH body": 10,
    "STORE": 20,
    "APPEND": 8,
    "EXPUNGE": 4,
    "SELECT": 6,
    "STATUS": 6,
    "LIST": 3,
}
#: Types that need a message in the selected mailbox (else the client APPENDs).
NEEDS_MESSAGES = frozenset({"FETCH envelope", "FETCH headers", "FETCH body", "STORE"})
_KINDS = list(MIX)
_WEIGHTS = list(MIX.values())
_UPDATE = re.compile(rb"\* (\d+) (EXISTS|EXPUNGE)\r\n")
_CONNECTION_ERRORS = (ImapError, OSError, trio.BrokenResourceError, trio.ClosedResourceError)


def small_messages(count: int, seed: int) -> list[bytes]:
    """``count`` corpus messages of at most ``MAX_MESSAGE`` bytes (deterministic)."""
    out: list[bytes] = []
    for m in corpus.generate(count * 10, seed=seed, max_large=0):  # lazy: stops early
        if len(m.data) <= MAX_MESSAGE:
            out.append(m.data)
            if len(out) == count:
                break
    return out




def _summary(latencies: list[float], errors: int) -> dict[str, Any]:
    row: dict[str, Any] = {"count": len(latencies) + errors, "ok": len(latencies),
                           "errors": errors}
    if latencies:
        row |= {"p50_ms": round(percentile(latencies, 50) * 1000, 2),
                "p99_ms": round(percentile(latencies, 99) * 1000, 2),
                "max_ms": round(max(latencies) * 1000, 2)}
    return row


@attrs.define
class Tally:
    """Latencies of successful commands and errors, per command type."""

    latencies: dict[str, list[float]] = attrs.Factory(dict)
    errors: dict[str, int] = attrs.Factory(dict)
    #: The first few error texts, to tell a server bug from a client one.
    samples: list[str] = attrs.Factory(list)
    #: The slowest commands (over ``SLOW`` seconds): (ms, type, line), at most 20.
    slow: list[tuple[float, str, str]] = attrs.Factory(list)
    #: False before ``go``: setup commands are not counted.
    counting: bool = False

    def ok(self, kind: str, seconds: float, line: str = "") -> None:
        """One command of ``kind`` completed with OK."""
        if self.counting:
            self.latencies.setdefault(kind, []).append(seconds)
            if seconds > SLOW:
                self.slow.append((round(seconds * 1000, 1), kind, line[:100]))
                self.slow.sort(reverse=True)
                del self.slow[20:]

    def error(self, kind: str, text: str) -> None:
        """One command of ``kind`` failed (NO/BAD, lost connection, timeout)."""
        if self.counting:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            if len(self.samples) < 10:
                self.samples.append(f"{kind}: {text[:160]}")

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per type: count, ok, errors, p50/p99/max of the successful ones (ms)."""
        kinds = sorted(set(self.latencies) | set(self.errors))
        return {k: _summary(self.latencies.get(k, []), self.errors.get(k, 0)) for k in kinds}


class Session:
    """One IMAP connection and what the client knows of its selected mailbox."""

    def __init__(self, conn: ImapClient, tally: Tally, rng: random.Random,
                 messages: list[bytes]) -> None:
        self.conn = conn
        self.tally = tally
        self.rng = rng
        self.messages = messages
        self.selected = "INBOX"
        #: Messages in the selected mailbox, as the server last said (EXISTS/EXPUNGE).
        self.exists = 0

    @classmethod
    async def open(cls, port: int, user: str, password: str, tally: Tally,
                   rng: random.Random, messages: list[bytes], *, select: bool) -> Session:
        """Connect, LOGIN (and SELECT INBOX); a NO is raised as ImapError."""
        session = cls(await ImapClient.connect(HOST, port), tally, rng, messages)
        try:
            if (await session.run("LOGIN", f'LOGIN "{user}" "{password}"')).status != "OK":
                raise ImapError("LOGIN refused")
            if select and (await session.run("SELECT", 'SELECT "INBOX"')).status != "OK":
                raise ImapError("SELECT INBOX refused")
        except BaseException:
            await session.aclose()
            raise
        return session

    async def run(self, kind: str, line: str, literal: bytes | None = None) -> Reply:
        """Send one command, count it under ``kind``, follow EXISTS/EXPUNGE."""
        try:
            reply = await self.conn.command(line, literal=literal, check=False)
        except trio.Cancelled:
            self.tally.error(kind, "timeout (cancelled after the window)")
            raise
        except _CONNECTION_ERRORS as exc:
            self.tally.error(kind, f"connection: {type(exc).__name__}: {exc}")
            raise
        for resp in reply.untagged:
            m = _UPDATE.match(resp)
            if m is None:
                continue
            if m.group(2) == b"EXISTS":
                self.exists = int(m.group(1))
            else:
                self.exists = max(0, self.exists - 1)
        if reply.status == "OK":
            self.tally.ok(kind, reply.seconds,
                          f"{line} [{self.selected}, {self.exists} messages]")
        else:
            self.tally.error(kind, f"{line[:60]!r}: {reply.status} {reply.text}")
        return reply

    def _range(self, longest: int) -> str:
        first = self.rng.randint(1, self.exists)
        last = min(self.exists, first + self.rng.randint(0, longest - 1))
        return f"{first}:{last}"

    async def step(self) -> None:
        """One command of the random mix (two for EXPUNGE: STORE \\Deleted first)."""
        rng = self.rng
        kind = rng.choices(_KINDS, _WEIGHTS)[0]
        if self.exists == 0 and kind in NEEDS_MESSAGES:
            kind = "APPEND"
        if kind == "EXPUNGE" and self.exists < LOW:
            kind = "APPEND"
        if kind == "NOOP":
            await self.run(kind, "NOOP")
        elif kind == "FETCH envelope":
            await self.run(kind, f"FETCH {self._range(25)} "
                                 "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)")
        elif kind == "FETCH headers":
            await self.run(kind, f"FETCH {self._range(25)} "
                                 f"(UID FLAGS BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})])")
        elif kind == "FETCH body":
            await self.run(kind, f"FETCH {rng.randint(1, self.exists)} (UID BODY.PEEK[])")
        elif kind == "STORE":
            sign = rng.choice("+-")
            await self.run(kind, f"STORE {self._range(5)} {sign}FLAGS ({rng.choice(KEYWORDS)})")
        elif kind == "APPEND":
            data = rng.choice(self.messages)
            flags = " ".join(rng.sample(KEYWORDS, rng.randint(0, 2)))
            await self.run(kind, f'APPEND "{self.selected}" ({flags}) {{{len(data)}+}}',
                           literal=data)
        elif kind == "EXPUNGE":
            await self.run("STORE", f"STORE {rng.randint(1, self.exists)} "
                                    "+FLAGS.SILENT (\\Deleted)")
            await self.run(kind, "EXPUNGE")
        elif kind == "SELECT":
            path = "INBOX" if rng.random() < 0.7 else "Archive"
            if (await self.run(kind, f'SELECT "{path}"')).status == "OK":
                self.selected = path
        elif kind == "STATUS":
            other = MAILBOXES[1] if self.selected == MAILBOXES[0] else MAILBOXES[0]
            await self.run(kind, f'STATUS "{other}" (MESSAGES UNSEEN UIDNEXT)')
        elif kind == "LIST":
            await self.run(kind, 'LIST "" "*"')
        await self.trim()

    async def trim(self) -> None:
        """Above HIGH messages, mark the oldest \\Deleted and EXPUNGE down to LOW."""
        if self.exists > HIGH:
            await self.run("STORE", f"STORE 1:{self.exists - LOW} +FLAGS.SILENT (\\Deleted)")
            await self.run("EXPUNGE", "EXPUNGE")

    async def logout(self) -> None:
        """LOGOUT (the server answers BYE, then OK, then closes)."""
        await self.run("LOGOUT", "LOGOUT")

    async def aclose(self) -> None:
        """Close the socket."""
        with trio.CancelScope(shield=True):
            await self.conn.aclose()


class LmtpConnection:
    """Just enough LMTP (RFC 2033, PIPELINING) to deliver to one recipient at a time."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buf = bytearray()

    @classmethod
    async def open(cls, port: int) -> LmtpConnection:
        """Connect, read the greeting, LHLO."""
        conn = cls(await trio.open_tcp_stream(HOST, port))
        try:
            if await conn.reply() != 220:
                raise ImapError("LMTP: no greeting")
            await conn.stream.send_all(b"LHLO load.example\r\n")
            if await conn.reply() != 250:
                raise ImapError("LMTP: LHLO refused")
        except BaseException:
            await conn.aclose()
            raise
        return conn

    async def reply(self) -> int:
        """Read one (multi-line) reply; returns its code."""
        while True:
            end = self._buf.find(b"\r\n")
            if end < 0:
                data = await self.stream.receive_some(65536)
                if not data:
                    raise ImapError("LMTP connection closed")
                self._buf += data
                continue
            line = bytes(self._buf[:end])
            del self._buf[:end + 2]
            if line[3:4] != b"-":
                return int(line[:3])

    async def deliver(self, rcpt: str, data: bytes) -> str | None:
        """One transaction; None when delivered, else what went wrong."""
        await self.stream.send_all(
            f"MAIL FROM:<load@example.org>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        codes = [await self.reply() for _ in range(3)]
        if codes[2] != 354:
            await self.stream.send_all(b"RSET\r\n")
            await self.reply()
            return f"MAIL/RCPT/DATA: {codes}"
        stuffed = data.replace(b"\r\n.", b"\r\n..")
        if stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        await self.stream.send_all(stuffed + b".\r\n")
        code = await self.reply()
        return None if code == 250 else f"after DATA: {code}"

    async def aclose(self) -> None:
        """Close the socket (no QUIT needed)."""
        with trio.CancelScope(shield=True):
            await self.stream.aclose()


@attrs.define
class Options:
    """The command line."""

    imap_port: int
    lmtp_port: int
    users: list[str]
    password: str
    clients: int
    seconds: float
    mode: str
    lmtp_connections: int
    seed: int


@attrs.define
class Load:
    """One run: the workers, their tallies, and the window."""

    opts: Options
    tally: Tally = attrs.Factory(Tally)
    lmtp_latencies: list[float] = attrs.Factory(list)
    lmtp_errors: int = 0
    lmtp_samples: list[str] = attrs.Factory(list)
    connections: int = 0
    go: trio.Event = attrs.Factory(trio.Event)
    deadline: float = 0.0
    messages: list[bytes] = attrs.Factory(list)
    #: Connections still open after the window: closed once it is reported.
    leftover: list[Session | LmtpConnection] = attrs.Factory(list)

    def _lmtp_error(self, text: str) -> None:
        self.lmtp_errors += 1
        if len(self.lmtp_samples) < 10:
            self.lmtp_samples.append(text[:160])

    async def _session(self, user: str, rng: random.Random) -> Session:
        self.connections += 1
        return await Session.open(self.opts.imap_port, user, self.opts.password, self.tally,
                                  rng, self.messages, select=True)

    async def mix_client(self, index: int, task_status: trio.TaskStatus[None]) -> None:
        """Log in once, then run the mix until the deadline (reconnect if cut off)."""
        rng = random.Random(self.opts.seed * 1000 + index)
        user = self.opts.users[index % len(self.opts.users)]
        with trio.fail_after(SETUP_TIMEOUT):
            session: Session | None = await self._session(user, rng)
            assert session is not None
            await session.trim()  # a mailbox left large by an earlier run
        task_status.started()
        await self.go.wait()
        try:
            with trio.move_on_at(self.deadline + GRACE):
                while trio.current_time() < self.deadline:
                    try:
                        if session is None:
                            session = await self._session(user, rng)
                        await session.step()
                    except _CONNECTION_ERRORS:
                        if session is not None:
                            await session.aclose()
                        session = None
                        await trio.sleep(0.1)
        finally:
            if session is not None:
                self.leftover.append(session)

    async def login_client(self, index: int, task_status: trio.TaskStatus[None]) -> None:
        """Connect, LOGIN, SELECT, a few commands, LOGOUT; again until the deadline."""
        rng = random.Random(self.opts.seed * 1000 + index)
        user = self.opts.users[index % len(self.opts.users)]
        task_status.started()
        await self.go.wait()
        with trio.move_on_at(self.deadline + GRACE):
            while trio.current_time() < self.deadline:
                session: Session | None = None
                try:
                    session = await self._session(user, rng)
                    for _ in range(rng.randint(2, 5)):
                        await session.step()
                    await session.logout()
                except _CONNECTION_ERRORS:
                    await trio.sleep(0.1)
                finally:
                    if session is not None:
                        await session.aclose()

    async def lmtp_worker(self, index: int, task_status: trio.TaskStatus[None]) -> None:
        """Deliver to random users back to back until the deadline."""
        rng = random.Random(self.opts.seed * 1000 + 500 + index)
        with trio.fail_after(SETUP_TIMEOUT):
            conn: LmtpConnection | None = await LmtpConnection.open(self.opts.lmtp_port)
        task_status.started()
        await self.go.wait()
        try:
            with trio.move_on_at(self.deadline + GRACE) as scope:
                while trio.current_time() < self.deadline:
                    try:
                        if conn is None:
                            conn = await LmtpConnection.open(self.opts.lmtp_port)
                        started = time.perf_counter()
                        problem = await conn.deliver(rng.choice(self.opts.users),
                                                     rng.choice(self.messages))
                        if problem is None:
                            self.lmtp_latencies.append(time.perf_counter() - started)
                        else:
                            self._lmtp_error(problem)
                    except _CONNECTION_ERRORS as exc:
                        self._lmtp_error(f"connection: {type(exc).__name__}: {exc}")
                        if conn is not None:
                            await conn.aclose()
                        conn = None
                        await trio.sleep(0.1)
            if scope.cancelled_caught:
                self._lmtp_error("timeout (cancelled after the window)")
        finally:
            if conn is not None:
                self.leftover.append(conn)

    async def run(self) -> None:
        """Set up, say ready, wait for go, run the window, report."""
        opts = self.opts
        self.messages = small_messages(40, seed=opts.seed + 17)
        stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
        client = self.mix_client if opts.mode == "mix" else self.login_client
        async with trio.open_nursery() as nursery:
            for i in range(opts.clients):
                await nursery.start(client, i)
            for i in range(opts.lmtp_connections):
                await nursery.start(self.lmtp_worker, i)
            emit({"event": "ready"})
            await _read_go(stdin)
            started = time.perf_counter()
            cpu0 = _own_cpu()
            self.deadline = trio.current_time() + opts.seconds
            self.tally.counting = True
            self.go.set()
        elapsed = time.perf_counter() - started
        cpu = _own_cpu() - cpu0
        emit({"event": "stopped", "seconds": round(elapsed, 3), "cpu_s": round(cpu, 3)})
        commands = self.tally.summary()
        emit({
            "event": "result",
            "mode": opts.mode,
            "clients": opts.clients,
            "users": len(opts.users),
            "lmtp_connections": opts.lmtp_connections,
            "seconds": round(elapsed, 3),
            "commands": commands,
            "error_samples": self.tally.samples,
            "slow": [{"ms": ms, "type": kind, "line": line}
                     for ms, kind, line in self.tally.slow],
            "deliveries": _summary(self.lmtp_latencies, self.lmtp_errors),
            "delivery_error_samples": self.lmtp_samples,
            "connections": self.connections,
            "client_cpu_s": round(cpu, 3),
        })
        for conn in self.leftover:
            await conn.aclose()


async def _read_go(stdin: trio.lowlevel.FdStream) -> None:
    buf = b""
    while b"\n" not in buf:
        data = await stdin.receive_some(64)
        if not data:
            raise SystemExit("stdin closed before go")
        buf += data


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def emit(event: dict[str, Any]) -> None:
    """One JSON line on stdout, flushed."""
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def parse_args(argv: list[str] | None = None) -> Options:
    """Options from the command line."""
    p = argparse.ArgumentParser(prog="python -m bench.load_client", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--imap-port", type=int, required=True)
    p.add_argument("--lmtp-port", type=int, default=0)
    p.add_argument("--users", required=True, help="comma-separated user names")
    p.add_argument("--password", required=True, help="the password of every user")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--mode", choices=("mix", "login"), default="mix")
    p.add_argument("--lmtp-connections", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    users = [u for u in a.users.split(",") if u]
    if not users:
        p.error("--users is empty")
    if a.lmtp_connections and not a.lmtp_port:
        p.error("--lmtp-connections needs --lmtp-port")
    return Options(imap_port=a.imap_port, lmtp_port=a.lmtp_port, users=users,
                   password=a.password, clients=a.clients, seconds=a.seconds, mode=a.mode,
                   lmtp_connections=a.lmtp_connections, seed=a.seed)


def main(argv: list[str] | None = None) -> int:
    """Run one load; the figures go to stdout as JSON lines."""
    trio.run(Load(parse_args(argv)).run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
