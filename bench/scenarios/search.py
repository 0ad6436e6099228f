"""SEARCH, SORT and THREAD: each kind of key at each mailbox size, median and p95
latency."""

from __future__ import annotations

import re
from typing import Any

from duck.store import metrics

from .. import corpus
from ..harness import Bench, merge_round_trips, repeat, round_trips, summary_ms
from ..imap_client import ImapClient

_MODSEQ = re.compile(rb"HIGHESTMODSEQ (\d+)")

#: name -> criteria (after ``UID SEARCH``); {modseq} is the mailbox's HIGHESTMODSEQ.
CRITERIA = {
    "unseen": "UNSEEN",
    "flagged": "FLAGGED",
    "keyword": "KEYWORD $Important",
    "from": f"FROM {corpus.NEEDLES['from'][0]}",
    "subject": f"SUBJECT {corpus.NEEDLES['subject'][0]}",
    "to": "TO jones",
    "header": f"HEADER List-Id {corpus.NEEDLES['header'][0]}",
    "body_rare": f"BODY {corpus.NEEDLES['body'][0]}",
    "text_rare": f"TEXT {corpus.NEEDLES['body'][0]}",
    "body_common": "BODY meeting",
    "body_absent": "BODY xylophonist",
    "since_before": "SINCE 1-Mar-2024 BEFORE 1-Apr-2024",
    "sentsince": "SENTSINCE 1-Dec-2024",
    "on": "ON 15-Jun-2023",
    "larger": "LARGER 100000",
    "smaller": "SMALLER 5000",
    "or_flags_from": f"OR FLAGGED FROM {corpus.NEEDLES['from'][0]}",
    "not_seen_flagged": "NOT SEEN FLAGGED",
    "or_subject_body": (f"OR SUBJECT {corpus.NEEDLES['subject'][0]} "
                        f"BODY {corpus.NEEDLES['body'][0]}"),
    "modseq": "MODSEQ {modseq}",
    "uid_range_unseen": "UID 1:500 UNSEEN",
}
#: name -> the command after ``UID `` (SORT and THREAD, RFC 5256, over ALL).
ORDERINGS = {
    "sort_arrival": "SORT (ARRIVAL) UTF-8 ALL",
    "sort_date": "SORT (DATE) UTF-8 ALL",
    "sort_subject": "SORT (SUBJECT) UTF-8 ALL",
    "sort_from": "SORT (FROM) UTF-8 ALL",
    "sort_size": "SORT (REVERSE SIZE) UTF-8 ALL",
    "thread_references": "THREAD REFERENCES UTF-8 ALL",
}


def _hits(reply_untagged: list[bytes]) -> int:
    """Messages in a SEARCH or SORT answer; threads in a THREAD answer."""
    for resp in reply_untagged:
        if resp.startswith((b"* SEARCH", b"* SORT")):
            return len(resp.split()) - 2
        if resp.startswith(b"* THREAD"):
            depth = threads = 0
            for ch in resp[8:]:
                if ch == 0x28:  # "("
                    threads += depth == 0
                    depth += 1
                elif ch == 0x29:
                    depth -= 1
            return threads
    return 0


async def run(bench: Bench) -> dict[str, Any]:
    """Per size and criterion: median/p95 ms, hits, and round trips per SEARCH."""
    s = bench.settings
    out: dict[str, Any] = {"sizes": {}}
    total_rt: dict[str, Any] = {}
    for size, path in sorted(bench.mailboxes.items()):
        client = await bench.client()
        row: dict[str, Any] = {}
        try:
            await client.command("ENABLE CONDSTORE", keep=False)
            sel = await client.command(f'EXAMINE "{path}"')
            highest = next((int(m.group(1)) for r in sel.untagged
                            if (m := _MODSEQ.search(r))), 1)
            lines = {name: "UID SEARCH " + criteria.format(modseq=max(1, highest - 50))
                     for name, criteria in CRITERIA.items()}
            lines.update({name: "UID " + command for name, command in ORDERINGS.items()})
            if s.search_keys:
                lines = {n: v for n, v in lines.items() if n.startswith(tuple(s.search_keys))}
            for name, line in lines.items():
                verb = " ".join(line.split()[:2])
                metrics.reset()
                hits = 0

                async def once(line: str = line, client: ImapClient = client) -> float:
                    nonlocal hits
                    reply = await client.command(line, check=False)
                    if reply.status != "OK":
                        raise RuntimeError(f"{line}: {reply.status} {reply.text}")
                    hits = _hits(reply.untagged)
                    return reply.seconds

                try:
                    runs = await repeat(once, s.reps, s.rep_budget)
                except Exception as exc:  # one failing key must not hide the others
                    row[name] = {"criteria": line, "error": f"{type(exc).__name__}: {exc}"}
                    continue
                rt = round_trips((verb,)).get(verb, {})
                merge_round_trips(total_rt, round_trips())
                row[name] = summary_ms(runs) | {
                    "criteria": line, "hits": hits,
                    "round_trips": rt.get("avg_round_trips"),
                }
        finally:
            await client.aclose()
        out["sizes"][str(size)] = row
    out["round_trips"] = total_rt
    return out
