"""What the soak did and what must therefore be true: operation and fault counts,
the expected copies of every message, UIDs handed out, and the violations found.

Expected copies are bounds: an acknowledged operation moves both ends of a bound,
one whose outcome is unknown (the connection died, a timeout, any non-OK reply)
moves only the end it might have moved. An observation (a checkpoint's recount, a
worker's resynchronisation) is checked against the bounds and then replaces them.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from typing import Any

import attrs

#: Details kept per invariant (the count is always complete).
DETAILS = 5


@attrs.define
class Violations:
    """Violations by invariant, with the first few details of each."""

    counts: Counter[str] = attrs.Factory(Counter)
    details: dict[str, list[str]] = attrs.Factory(dict)

    def add(self, invariant: str, detail: str) -> None:
        """Record one violation."""
        self.counts[invariant] += 1
        kept = self.details.setdefault(invariant, [])
        if len(kept) < DETAILS:
            kept.append(detail)

    @property
    def total(self) -> int:
        """All violations."""
        return sum(self.counts.values())


@attrs.define
class Stats:
    """Operations by kind and outcome, faults by kind."""

    ops: Counter[str] = attrs.Factory(Counter)
    unknown: Counter[str] = attrs.Factory(Counter)
    faults: Counter[str] = attrs.Factory(Counter)
    checkpoints: int = 0
    #: The first few reasons of unknown outcomes, by kind.
    why: dict[str, list[str]] = attrs.Factory(dict)

    def done(self, kind: str, ok: bool, why: str = "") -> None:
        """Count an operation: acknowledged, or with an unknown outcome (and why)."""
        (self.ops if ok else self.unknown)[kind] += 1
        if not ok and why:
            kept = self.why.setdefault(kind, [])
            if len(kept) < DETAILS:
                kept.append(why[:200])


_ids = itertools.count(1)


def new_id() -> str:
    """A soak message identifier, unique in the run (matched by ``imap.SOAK_ID``)."""
    return f"sk{next(_ids):010x}x"


def message(sid: str, body: str = "") -> bytes:
    """A small message carrying ``sid`` in its Subject and Message-ID."""
    return (f"From: Soak <soak@example.org>\r\nTo: soak@example.com\r\n"
            f"Subject: soak {sid}\r\nMessage-ID: <{sid}@soak.example>\r\n"
            f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n{body or 'soak ' + sid}\r\n"
            ).encode()


Bound = list[int]  # [lo, hi]


@attrs.define
class Expect:
    """Expected copies of each message per mailbox (``box`` is any stable key)."""

    violations: Violations
    boxes: dict[str, dict[str, Bound]] = attrs.Factory(dict)
    #: What acknowledged each message's arrivals and departures (for reports).
    history: dict[str, list[str]] = attrs.Factory(dict)
    #: Ids found lost at the last observation (the caller adds evidence).
    lost: list[str] = attrs.Factory(list)
    #: (box, id) an operation with an unknown outcome touched. The server may still
    #: be carrying it out (a client timeout does not stop it: a transaction that a
    #: killed process left open can hold a document for a minute), so observing
    #: these never narrows their bounds, only checks them.
    doubtful: set[tuple[str, str]] = attrs.Factory(set)
    #: Copies removed (acknowledged) before the model knew of them: a delivery to
    #: several recipients commits each copy before it answers for all of them, so a
    #: client may list and delete a copy whose arrival is acknowledged after. The
    #: arrival, when it comes, is that copy's (it came and went).
    early: Counter[tuple[str, str]] = attrs.Factory(Counter)

    def note(self, sid: str, what: str) -> None:
        """Record what happened to ``sid`` (kept for its violation's details)."""
        self.history.setdefault(sid, []).append(f"{time.strftime('%H:%M:%S')} {what}")

    def _bound(self, box: str, sid: str) -> Bound:
        return self.boxes.setdefault(box, {}).setdefault(sid, [0, 0])

    def add(self, box: str, sid: str, ok: bool) -> None:
        """One copy of ``sid`` arrives in ``box`` (if ``ok``; perhaps, if not)."""
        if self.early[(box, sid)] > 0:
            self.early[(box, sid)] -= 1
            return
        bound = self._bound(box, sid)
        bound[1] += 1
        if ok:
            bound[0] += 1
        else:
            self.doubtful.add((box, sid))

    def remove(self, box: str, sid: str, ok: bool) -> None:
        """One copy of ``sid`` leaves ``box`` (if ``ok``; perhaps, if not)."""
        bound = self._bound(box, sid)
        if ok and bound[1] == 0:
            self.early[(box, sid)] += 1  # (its arrival is not acknowledged yet)
            return
        bound[0] = max(0, bound[0] - 1)
        if ok:
            bound[1] = max(0, bound[1] - 1)
        else:
            self.doubtful.add((box, sid))

    def forget(self, box: str) -> None:
        """``box`` is gone (its expectations with it)."""
        self.boxes.pop(box, None)

    def observe(self, box: str, counts: Counter[str], where: str) -> None:
        """Check the copies counted in ``box`` against the bounds, then adopt them."""
        expected = self.boxes.setdefault(box, {})
        for sid in set(expected) | set(counts):
            lo, hi = expected.get(sid, [0, 0])
            have = counts.get(sid, 0)
            if have < lo:
                self.lost.append(sid)
                self.violations.add("acknowledged message present exactly once",
                                    f"{where}: {sid} in {box}: {have} copies, at least "
                                    f"{lo} acknowledged (lost); {self.history.get(sid)}")
            elif have > hi:
                self.violations.add("acknowledged message present exactly once",
                                    f"{where}: {sid} in {box}: {have} copies, at most "
                                    f"{hi} possible (repeated); {self.history.get(sid)}")
        adopted: dict[str, Bound] = {}
        for sid in set(expected) | set(counts):
            n = counts.get(sid, 0)
            lo, hi = expected.get(sid, [0, 0])
            bound = [min(lo, n), max(hi, n)] if (box, sid) in self.doubtful else [n, n]
            if bound[1]:
                adopted[sid] = bound
        self.boxes[box] = adopted


@attrs.define
class Uids:
    """UIDs seen per mailbox and UIDVALIDITY: each names one message forever, and
    each newly assigned one is above every one seen before."""

    violations: Violations
    seen: dict[tuple[str, int], dict[int, str]] = attrs.Factory(dict)
    highest: dict[tuple[str, int], int] = attrs.Factory(dict)

    def assigned(self, box: str, validity: int, uid: int, sid: str, where: str) -> None:
        """The server just assigned ``uid`` to a copy of ``sid``."""
        key = (box, validity)
        top = self.highest.get(key, 0)
        if uid <= top:
            self.violations.add("UIDs unique and increasing",
                                f"{where}: {box} (UIDVALIDITY {validity}) assigned UID {uid} "
                                f"to {sid}, not above {top} already seen")
        self.observed(box, validity, uid, sid, where)

    def observed(self, box: str, validity: int, uid: int, sid: str, where: str) -> None:
        """``uid`` holds ``sid`` now."""
        key = (box, validity)
        names = self.seen.setdefault(key, {})
        before = names.setdefault(uid, sid)
        if before != sid:
            self.violations.add("UIDs unique and increasing",
                                f"{where}: {box} (UIDVALIDITY {validity}) UID {uid} held "
                                f"{before}, now {sid}")
        self.highest[key] = max(self.highest.get(key, 0), uid)


def summary(stats: Stats, violations: Violations, extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able result of a run."""
    return {
        **extra,
        "operations": dict(sorted(stats.ops.items())),
        "operations_unknown_outcome": dict(sorted(stats.unknown.items())),
        "unknown_outcome_reasons": stats.why,
        "faults": dict(sorted(stats.faults.items())),
        "checkpoints": stats.checkpoints,
        "violations": dict(sorted(violations.counts.items())),
        "violation_details": violations.details,
        "violations_total": violations.total,
    }
