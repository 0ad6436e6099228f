"""Benchmark of the IMAP grammar core (duck.imap.grammar).

1. Parsing a realistic client command mix (UID FETCH with many items, UID SEARCH
   trees, STORE, APPEND with a literal, SELECT, LIST, NOOP...) through a
   CommandReader fed in 64 KB chunks: commands/s and MB/s.
2. Parsing one typical ``UID FETCH`` line repeatedly, with the FETCH item memo
   (the steady state of a real session) and with it cleared before every line.
3. Serializing a realistic response mix (FETCH with ENVELOPE, BODYSTRUCTURE and a
   header literal, FLAGS updates, status responses, SEARCH results): responses/s
   and MB/s; and serializing the command mix (the client side).

Rates are given per CPU second of this process (``time.process_time``, robust to
other load on the machine) and per wall second. Prints the figures and writes them
to bench/results/grammar.json.

    python bench/grammar_bench.py [--repeat 5] [--scale 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duck.imap.grammar as g  # noqa: E402
from duck.imap.grammar import cmd_message  # noqa: E402

TYPICAL_UID_FETCH = (
    b"A123 UID FETCH 1:500 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS "
    b"(From To Subject Date Message-ID)])\r\n"
)


def command_mix(rng: random.Random, count: int) -> bytes:
    """A client byte stream: a weighted mix of what mail clients send."""
    message = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hello\r\n\r\n"
               + b"body line of a message\r\n" * 800)
    headers = b"From To Cc Bcc Subject Date Message-ID Priority X-Priority References"
    templates: list[tuple[int, Callable[[int], bytes]]] = [
        (30, lambda i: b"a%d UID FETCH %d:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (%s)])"
         % (i, rng.randint(1, 90000), headers)),
        (15, lambda i: b"a%d UID FETCH %d (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE "
         b"BODYSTRUCTURE BODY.PEEK[]<0.2048>)" % (i, rng.randint(1, 90000))),
        (10, lambda i: b"a%d UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % (i, rng.randint(1, 10**9))),
        (10, lambda i: b"a%d UID SEARCH RETURN (ALL) CHARSET UTF-8 OR (FROM \"alice\" SINCE "
         b"1-Feb-2024) (NOT SEEN SUBJECT {7+}\r\nmeeting) UNDELETED UID %d:*"
         % (i, rng.randint(1, 5000))),
        (10, lambda i: b"a%d UID STORE %d,%d:%d +FLAGS.SILENT (\\Seen $Label1)"
         % (i, rng.randint(1, 99), rng.randint(100, 200), rng.randint(201, 300))),
        (5, lambda i: b"a%d APPEND Sent (\\Seen) \" 7-Feb-2024 21:52:25 -0800\" {%d+}\r\n%s"
         % (i, len(message), message)),
        (5, lambda i: b"a%d SELECT INBOX (CONDSTORE)" % i),
        (5, lambda i: b'a%d LIST "" "*" RETURN (CHILDREN SPECIAL-USE)' % i),
        (5, lambda i: b"a%d STATUS Archive/2024 (MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ)" % i),
        (5, lambda i: b"a%d NOOP" % i),
    ]
    weights = [w for w, _ in templates]
    makers = [m for _, m in templates]
    lines = [rng.choices(makers, weights)[0](i) + b"\r\n" for i in range(count)]
    return b"".join(lines)


def response_mix(rng: random.Random, count: int) -> list[g.Response]:
    """A server response mix, as a FETCH-heavy session produces."""
    header = (b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n"
              b"Subject: Quarterly numbers\r\nDate: Mon, 5 Feb 2024 10:00:00 +0100\r\n"
              b"Message-ID: <abc@example.org>\r\n\r\n")
    env = g.Envelope(b"Mon, 5 Feb 2024 10:00:00 +0100", b"Quarterly numbers",
                     (g.Address(b"Alice", None, b"alice", b"example.org"),), (), (),
                     (g.Address(None, None, b"bob", b"example.org"),), (), (), None,
                     b"<abc@example.org>")
    body = g.MultiPart((
        g.SinglePart("TEXT", "PLAIN", (("CHARSET", "utf-8"),), None, None, "QUOTED-PRINTABLE",
                     2310, 48, ext=g.BodyExt()),
        g.SinglePart("APPLICATION", "PDF", (("NAME", "q.pdf"),), None, None, "BASE64", 183220,
                     ext=g.BodyExt(disposition=g.Disposition("attachment",
                                                             (("FILENAME", "q.pdf"),)))),
    ), "MIXED", g.BodyExt(params=(("BOUNDARY", "----=_Part_1"),)))
    when = dt.datetime(2024, 2, 5, 10, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    section = g.BodySection(text=g.SectionText.HEADER_FIELDS,
                            fields=("From", "To", "Subject", "Date", "Message-ID"))
    out: list[g.Response] = []
    for i in range(count):
        kind = rng.random()
        seq = i + 1
        if kind < 0.5:
            out.append(g.FetchData(seq, (
                (g.FetchAttr.UID, 1000 + seq), (g.FetchAttr.RFC822_SIZE, 190000),
                (g.FetchAttr.FLAGS, ("\\Seen", "$Label1")), (section, header))))
        elif kind < 0.7:
            out.append(g.FetchData(seq, (
                (g.FetchAttr.UID, 1000 + seq), (g.FetchAttr.FLAGS, ("\\Seen",)),
                (g.FetchAttr.INTERNALDATE, when), (g.FetchAttr.RFC822_SIZE, 190000),
                (g.FetchAttr.ENVELOPE, env), (g.FetchAttr.BODYSTRUCTURE, body))))
        elif kind < 0.85:
            out.append(g.FetchData(seq, ((g.FetchAttr.UID, 1000 + seq),
                                         (g.FetchAttr.FLAGS, ("\\Seen", "\\Flagged")),
                                         (g.FetchAttr.MODSEQ, 123456789 + seq))))
        elif kind < 0.95:
            out.append(g.TaggedStatus(f"a{i}", "OK", g.HighestModseq(123456789 + seq),
                                      "FETCH completed"))
        else:
            out.append(g.SearchData(tuple(range(seq, seq + 200, 3))))
    return out


def timed(fn: Callable[[], int], repeat: int) -> tuple[float, float, int]:
    """Best CPU seconds and best wall seconds over ``repeat`` runs, and fn's count."""
    best_cpu = best_wall = float("inf")
    n = 0
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        n = fn()
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return best_cpu, best_wall, n


def parse_stream(stream: bytes) -> int:
    """Feed ``stream`` in 64 KB chunks; return the number of commands parsed."""
    reader = g.CommandReader()
    n = 0
    for i in range(0, len(stream), 65536):
        reader.receive_data(stream[i : i + 65536])
        while True:
            event = reader.next_event()
            if event is g.NEED_DATA:
                break
            if isinstance(event, g.ContinuationNeeded):
                reader.accept_literal()
                continue
            n += 1
    return n


def parse_lines(line: bytes, count: int, *, memo: bool) -> int:
    """Parse ``line`` ``count`` times through one reader."""
    reader = g.CommandReader()
    reader.receive_data(line * count)
    n = 0
    while True:
        if not memo:
            cmd_message._ITEMS_CACHE.clear()
        if reader.next_event() is g.NEED_DATA:
            return n
        n += 1


def main() -> None:
    """Run the benchmark, print the figures, write bench/results/grammar.json."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    rng = random.Random(3)
    n_cmds = int(20000 * args.scale)
    stream = command_mix(rng, n_cmds)
    results: dict[str, object] = {
        "python": platform.python_version(), "machine": platform.machine(),
        "repeat": args.repeat, "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }

    cpu, wall, n = timed(lambda: parse_stream(stream), args.repeat)
    results["parse_mix"] = {
        "commands": n, "bytes": len(stream), "commands_per_cpu_s": n / cpu,
        "commands_per_wall_s": n / wall, "mb_per_cpu_s": len(stream) / cpu / 1e6,
    }
    print(f"parse mix: {n} commands, {len(stream) / 1e6:.1f} MB: {n / cpu:,.0f} commands/s, "
          f"{len(stream) / cpu / 1e6:.1f} MB/s (CPU); {n / wall:,.0f} commands/s (wall)")

    lines = int(20000 * args.scale)
    for memo in (True, False):
        cpu, wall, n = timed(partial(parse_lines, TYPICAL_UID_FETCH, lines, memo=memo),
                             args.repeat)
        key = "typical_uid_fetch" + ("" if memo else "_no_memo")
        results[key] = {"line": TYPICAL_UID_FETCH.decode().strip(), "lines_per_cpu_s": n / cpu,
                        "lines_per_wall_s": n / wall}
        print(f"typical UID FETCH ({'memo' if memo else 'no memo'}): {n / cpu:,.0f} lines/s (CPU),"
              f" {n / wall:,.0f} lines/s (wall)")

    responses = response_mix(rng, int(20000 * args.scale))
    size = sum(len(g.serialize(r)) for r in responses)
    cpu, wall, n = timed(lambda: sum(1 for r in responses if g.serialize(r)), args.repeat)
    results["serialize_responses"] = {
        "responses": n, "bytes": size, "responses_per_cpu_s": n / cpu,
        "responses_per_wall_s": n / wall, "mb_per_cpu_s": size / cpu / 1e6,
    }
    print(f"serialize responses: {n / cpu:,.0f} responses/s, {size / cpu / 1e6:.1f} MB/s (CPU)")

    wires = [g.serialize(r) for r in responses]
    cpu, wall, n = timed(lambda: sum(1 for w in wires if g.parse_response(w) is not None),
                         args.repeat)
    results["parse_responses"] = {"responses_per_cpu_s": n / cpu, "mb_per_cpu_s": size / cpu / 1e6}
    print(f"parse responses: {n / cpu:,.0f} responses/s, {size / cpu / 1e6:.1f} MB/s (CPU)")

    commands: list[g.Command] = []
    reader = g.CommandReader()
    reader.receive_data(stream)
    while (ev := reader.next_event()) is not g.NEED_DATA:
        if isinstance(ev, g.ContinuationNeeded):
            reader.accept_literal()
        else:
            assert isinstance(ev, g.Command)
            commands.append(ev)
    cmd_bytes = sum(len(g.serialize_command(c, literal_plus=True)) for c in commands)
    cpu, wall, n = timed(
        lambda: sum(1 for c in commands if g.serialize_command(c, literal_plus=True)), args.repeat)
    results["serialize_commands"] = {"commands_per_cpu_s": n / cpu,
                                     "mb_per_cpu_s": cmd_bytes / cpu / 1e6}
    print(f"serialize commands: {n / cpu:,.0f} commands/s, {cmd_bytes / cpu / 1e6:.1f} MB/s (CPU)")

    out = ROOT / "bench" / "results" / "grammar.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
