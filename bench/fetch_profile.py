"""First-sync FETCH and APPEND/STORE/SELECT round trips on N small messages.

    python -m bench.fetch_profile                 # 2,000 messages
    python -m bench.fetch_profile --messages 20000 --reps 3
    python -m bench.fetch_profile --cprofile /tmp/fetch.prof   # profile the FETCHes

An in-process server (``duck.server.Server`` on the embedded database, as
``python -m bench`` starts it), N generated small messages appended concurrently
through ``store.messages.append``, then over a raw socket: ``UID FETCH 1:* (UID
FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)`` (twice in a row: the first FETCH of a
message may do one-time work), a few IMAP APPENDs, a STORE and a SELECT. Prints
messages/s and round trips per command; writes ``bench/results/fetch_profile.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from duck.config import Config
from duck.server import Server
from duck.store import metrics

from .harness import PASSWORD, USER, round_trips
from .imap_client import ImapClient

OUT = Path(__file__).parent / "results" / "fetch_profile.json"
FIRST_SYNC = "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)"
MAILBOX = "profile"
#: Messages appended one by one; the rest are COPYs of them.
SEED = 1000


def message(i: int) -> bytes:
    """A small, distinct message with a full envelope."""
    return (
        f"From: Sender {i} <sender{i % 97}@example.com>\r\n"
        f"To: Recipient <rcpt{i % 13}@example.org>, other@example.net\r\n"
        f"Cc: \"Cc, Person\" <cc@example.com>\r\n"
        f"Subject: Message number {i} =?utf-8?q?caf=C3=A9?=\r\n"
        f"Date: Mon, 1 Jan 2024 12:{i % 60:02d}:00 +0000\r\n"
        f"Message-ID: <m{i}@example.com>\r\n"
        f"In-Reply-To: <m{max(0, i - 1)}@example.com>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"\r\n"
        f"Hello {i}.\r\nThis is a short body.\r\n"
    ).encode()


async def load(server: Server, n: int) -> float:
    """Create the user, append up to SEED messages 8 at a time and COPY them until
    there are ``n``; seconds taken."""
    store = server.store
    assert store is not None
    user = await store.users.create(USER, PASSWORD, quota=10**14)
    await store.mailboxes.create(user.id, MAILBOX)
    limiter = trio.CapacityLimiter(8)
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

    async def one(i: int) -> None:
        async with limiter:
            await store.messages.append(user.id, MAILBOX, message(i), ("\\Seen",) if i % 3
                                        else (), when)

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(min(n, SEED)):
            nursery.start_soon(one, i)
    # The rest by COPY into the same mailbox (doubling): far faster than APPEND.
    box = await store.mailboxes.get(user.id, MAILBOX)
    have = min(n, SEED)
    while have < n:
        take = min(have, n - have)
        await store.messages.copy(box.id, range(1, take + 1), user.id, MAILBOX)
        have += take
    return time.perf_counter() - started


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run everything against an in-process server; the results as a dict."""
    out: dict[str, Any] = {"messages": args.messages}
    with tempfile.TemporaryDirectory(prefix="duck-fetch-") as tmp:
        config = Config(
            data_dir=Path(tmp) / "data", imap_port=0, imaps_port=0, lmtp_port=0, api_port=0,
            pop3_port=0, pop3s_port=0, managesieve_port=0,
            mongo_uri=args.mongo_uri, database=f"fetch_profile_{int(time.time())}",
            shutdown_grace=1.0, log_level="WARNING",
        )
        server = Server(config)
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            try:
                seconds = await load(server, args.messages)
                out["load_messages_per_s"] = round(args.messages / seconds, 1)
                print(f"loaded {args.messages} messages in {seconds:.1f} s", flush=True)
                client = await ImapClient.connect("127.0.0.1", server.ports["imap"])
                await client.login(USER, PASSWORD)
                metrics.reset()
                await client.command(f"SELECT {MAILBOX}")
                runs = []
                profiler = cProfile.Profile() if args.cprofile else None
                for _ in range(args.reps):
                    if profiler is not None:
                        profiler.enable()
                    reply = await client.command(FIRST_SYNC, keep=False)
                    if profiler is not None:
                        profiler.disable()
                    assert reply.count == args.messages, reply.count
                    runs.append(reply.seconds)
                    print(f"first sync: {reply.seconds:.3f} s, "
                          f"{args.messages / reply.seconds:,.0f} msg/s, "
                          f"{reply.received / 1e6:.1f} MB", flush=True)
                if profiler is not None:
                    profiler.dump_stats(args.cprofile)
                out["first_sync_s"] = [round(r, 4) for r in runs]
                out["first_sync_messages_per_s"] = round(args.messages / min(runs), 1)
                out["first_sync_first_messages_per_s"] = round(args.messages / runs[0], 1)
                for i in range(args.appends):
                    body = message(10**6 + i)
                    await client.command(f"APPEND {MAILBOX} (\\Seen) {{{len(body)}+}}",
                                         literal=body)
                await client.command("STORE 1:10 +FLAGS (\\Flagged)")
                await client.command(f"SELECT {MAILBOX}")
                out["round_trips"] = round_trips()
                await client.aclose()
            finally:
                nursery.cancel_scope.cancel()
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(prog="python -m bench.fetch_profile", description=__doc__)
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--reps", type=int, default=2, help="first-sync FETCHes in a row")
    p.add_argument("--appends", type=int, default=20, help="IMAP APPENDs measured")
    p.add_argument("--mongo-uri")
    p.add_argument("--cprofile", help="write a cProfile of the FETCHes to this file")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    out = trio.run(measure, args)
    for label, s in sorted(out["round_trips"].items()):
        print(f"  {label:12} {s['commands']:5} commands, {s['avg_round_trips']} round trips "
              f"avg, {s['max_round_trips']} max")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
