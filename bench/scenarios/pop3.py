"""POP3: login with the maildrop listing, LIST and UIDL of a whole mailbox, and RETR
throughput, each beside IMAP's FETCH of the same data on the same mailbox.

The POP3 listener runs in the benchmark's process on the benchmark server's store
(the harness's server has its POP3 ports off); the user's POP3 folder is pointed at
each sized mailbox in turn.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from duck.pop3.server import Pop3Config, Pop3Context, serve_pop3
from duck.pop3.store_backend import StoreBackend
from duck.store import INBOX, metrics

from ..harness import PASSWORD, USER, Bench, repeat, round_trips, summary_ms
from ..pop3_client import Pop3Client

#: Messages RETRieved (and FETCHed) per mailbox size for the throughput figures.
RETR_MESSAGES = 200
QUICK_RETR_MESSAGES = 40


async def run(bench: Bench) -> dict[str, Any]:
    """Per mailbox size: POP3 login/LIST/UIDL and RETR beside IMAP FETCH."""
    out: dict[str, Any] = {"sizes": {}}
    shutdown = trio.Event()
    context = Pop3Context(
        backend=StoreBackend(bench.store, notifier=bench.server.notifier),
        config=Pop3Config(), shutdown=shutdown)
    async with trio.open_nursery() as nursery:
        port: int = await nursery.start(serve_pop3, context, "127.0.0.1", 0)
        try:
            for size, path in sorted(bench.mailboxes.items()):
                await bench.store.admin.set_pop3_folder(bench.user.id, path)
                out["sizes"][str(size)] = await _size(bench, port, size, path)
        finally:
            shutdown.set()  # the listener returns once its sessions have ended
            await bench.store.admin.set_pop3_folder(bench.user.id, INBOX)
    return out


async def _size(bench: Bench, port: int, size: int, path: str) -> dict[str, Any]:
    s = bench.settings
    reps = max(1, s.reps // 4)
    row: dict[str, Any] = {}
    metrics.reset()

    # -- listing: login (reads the maildrop's list), LIST and UIDL of every message.
    logins: list[float] = []
    lists: list[float] = []
    uidls: list[float] = []

    async def session() -> float:
        started = time.perf_counter()
        client = await Pop3Client.connect("127.0.0.1", port)
        try:
            logins.append((await client.login(USER, PASSWORD)).seconds)
            listed = await client.command("LIST", multiline=True)
            assert listed.lines == size, (listed.lines, size)
            lists.append(listed.seconds)
            uidls.append((await client.command("UIDL", multiline=True)).seconds)
        finally:
            await client.aclose()
        return time.perf_counter() - started

    # The first login of a run also checks the password the slow way (scrypt; later
    # ones hit the store's verified-password cache): not what is measured here.
    await session()
    logins.clear()
    lists.clear()
    uidls.clear()
    sessions = await repeat(session, s.reps, s.rep_budget)
    row["session_login_list_uidl"] = summary_ms(sessions)
    row["login"] = summary_ms(logins)
    row["list"] = summary_ms(lists) | {"messages": size}
    row["uidl"] = summary_ms(uidls) | {"messages": size}

    imap = await bench.client(path, readonly=True)
    try:
        async def sizes() -> float:
            reply = await imap.command("UID FETCH 1:* (UID RFC822.SIZE)", keep=False)
            assert reply.count >= size, (reply.count, size)
            return reply.seconds

        runs = await repeat(sizes, reps, s.rep_budget)
        row["imap_uid_fetch_sizes"] = summary_ms(runs) | {"messages": size}

        # -- throughput: whole messages, one command each, then IMAP's range FETCH.
        n = min(size, QUICK_RETR_MESSAGES if s.quick else RETR_MESSAGES)
        client = await Pop3Client.connect("127.0.0.1", port)
        try:
            await client.login(USER, PASSWORD)
            total = seconds = 0.0
            for msg in range(1, n + 1):
                reply = await client.command(f"RETR {msg}", multiline=True)
                total += reply.received
                seconds += reply.seconds
        finally:
            await client.aclose()
        row["retr"] = {"messages": n, "mb": round(total / 1e6, 2),
                       "mb_per_s": round(total / seconds / 1e6, 2),
                       "ms_per_message": round(seconds / n * 1000, 2)}
        total = seconds = 0.0
        for msg in range(1, n + 1):
            reply = await imap.command(f"FETCH {msg} (BODY.PEEK[])", keep=False)
            total += reply.received
            seconds += reply.seconds
        row["imap_fetch_body"] = {"messages": n, "mb": round(total / 1e6, 2),
                                  "mb_per_s": round(total / seconds / 1e6, 2),
                                  "ms_per_message": round(seconds / n * 1000, 2)}
        reply = await imap.command(f"FETCH 1:{n} (BODY.PEEK[])", keep=False)
        row["imap_fetch_body_range"] = {"messages": n,
                                        "mb_per_s": round(reply.received / reply.seconds / 1e6,
                                                          2)}
    finally:
        await imap.aclose()
    row["round_trips"] = round_trips(("POP3", "UID FETCH", "FETCH"))
    return row
