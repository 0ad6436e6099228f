"""The grammar's SEARCH key tree as the store's query model (duck.store.query).

Sequence numbers and \\Recent are session state: they become UID sets here, from
the view. Keys the view alone can answer (flags, UIDs, sequence numbers, modseqs)
are evaluated in memory without a store round trip (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from duck.store import InvalidInput
from duck.store import query as q

from .errors import bad
from .grammar import search_keys as k
from .grammar.sequence import SequenceSet
from .view import SelectedView


def _ranges(uids: Iterable[int]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for u in sorted(set(uids)):
        if out and out[-1][1] + 1 == u:
            out[-1] = (out[-1][0], u)
        else:
            out.append((u, u))
    return tuple(out)


def _uids_of_seqs(view: SelectedView, seqset: SequenceSet) -> tuple[tuple[int, int], ...]:
    if seqset.saved:  # RFC 5182 "$": the saved messages that still exist
        return _ranges(view.resolve_seqs(seqset)) or ((0, 0),)
    # RFC 3501 §6.4.4: numbers beyond EXISTS simply match nothing in SEARCH.
    n = view.exists
    picked = [
        view.uids[i - 1] for lo, hi in seqset.ranges(n) for i in range(max(lo, 1), min(hi, n) + 1)
    ]
    return _ranges(picked) or ((0, 0),)


def _uid_set(view: SelectedView, uidset: SequenceSet) -> tuple[tuple[int, int], ...]:
    if uidset.saved:
        return _ranges(view.resolve_uids(uidset)) or ((0, 0),)
    return tuple(uidset.ranges(view.uid_max)) or ((0, 0),)


def in_memory(key: k.SearchKey) -> bool:
    """Whether the view alone answers ``key``."""
    if isinstance(key, k.SearchNot):
        return in_memory(key.key)
    if isinstance(key, k.SearchOr):
        return in_memory(key.left) and in_memory(key.right)
    if isinstance(key, k.SearchAnd):
        return all(in_memory(x) for x in key.keys)
    return isinstance(key, k.SearchAll | k.SearchFlag | k.SearchUid | k.SearchSeq
                      | k.SearchModseq | k.SearchSaveDateSupported)


def matches(view: SelectedView, key: k.SearchKey) -> set[int]:
    """The view's UIDs that match ``key`` (only keys ``in_memory`` accepts).

    Set at a time, not message at a time: a flag is tested once per distinct flag
    set of the mailbox (a few dozen), so UNSEEN over 100k messages is a pass over a
    dict, not 100k case-folded set builds.
    """
    if isinstance(key, k.SearchAll | k.SearchSaveDateSupported):
        return set(view.uids)
    if isinstance(key, k.SearchFlag):
        flag = key.flag.lower()
        if flag == "\\recent":
            has = {u for u in view.uids if u in view.recent}
        else:
            known: dict[tuple[str, ...], bool] = {}
            has = set()
            for uid, flags in view.flags.items():
                hit = known.get(flags)
                if hit is None:
                    hit = known[flags] = flag in {f.lower() for f in flags}
                if hit:
                    has.add(uid)
            has.intersection_update(view.uids)
        return has if key.present else set(view.uids) - has
    if isinstance(key, k.SearchUid):
        return set(view.resolve_uids(key.set))
    if isinstance(key, k.SearchSeq):
        if key.set.saved:
            return set(view.resolve_seqs(key.set))
        n = view.exists
        return {view.uids[i - 1] for lo, hi in key.set.ranges(n)
                for i in range(max(lo, 1), min(hi, n) + 1)}
    if isinstance(key, k.SearchModseq):
        return {u for u in view.uids if view.modseqs.get(u, 0) >= key.modseq}
    if isinstance(key, k.SearchNot):
        return set(view.uids) - matches(view, key.key)
    if isinstance(key, k.SearchOr):
        return matches(view, key.left) | matches(view, key.right)
    if isinstance(key, k.SearchAnd):
        out = set(view.uids)
        for x in key.keys:
            out &= matches(view, x)
        return out
    raise TypeError(f"not answerable from the view: {key!r}")


_DATE_FIELD = {k.DateField.INTERNAL: "internal", k.DateField.SENT: "sent",
               k.DateField.SAVED: "saved"}


def compile_key(view: SelectedView, key: k.SearchKey) -> q.Query:
    """The store query for ``key``."""
    if isinstance(key, k.SearchAll | k.SearchSaveDateSupported):
        return q.All()
    if isinstance(key, k.SearchFlag):
        if key.flag.lower() == "\\recent":
            recent = q.Uids(_ranges(view.recent) or ((0, 0),))
            return recent if key.present else q.Not(recent)
        if key.flag.lower() == "\\seen" and view.seen is not None:
            # Another owner's mailbox: this reader's own \Seen, not the stored one.
            seen = q.Uids(_ranges(view.seen) or ((0, 0),))
            return seen if key.present else q.Not(seen)
        return q.Flag(key.flag, key.present)
    if isinstance(key, k.SearchEnvelope):
        if key.field == "SUBJECT":
            return q.Subject(key.value)
        return q.Address(key.field.lower(), key.value)  # type: ignore[arg-type]
    if isinstance(key, k.SearchHeader):
        return q.Header(key.name.lower(), key.value)
    if isinstance(key, k.SearchText):
        return q.Body(key.value) if key.which == "BODY" else q.Text(key.value)
    if isinstance(key, k.SearchDate):
        return q.Date(_DATE_FIELD[key.field], key.kind.lower(), key.date)  # type: ignore[arg-type]
    if isinstance(key, k.SearchSize):
        return q.Size("larger" if key.larger else "smaller", key.size)
    if isinstance(key, k.SearchUid):
        return q.Uids(_uid_set(view, key.set))
    if isinstance(key, k.SearchSeq):
        return q.Uids(_uids_of_seqs(view, key.set))
    if isinstance(key, k.SearchModseq):
        return q.ModSeq(key.modseq)
    if isinstance(key, k.SearchWithin):
        return q.Age("older" if key.older else "younger", key.seconds)
    if isinstance(key, k.SearchObjectId):
        return q.EmailId(key.id) if key.kind == "EMAILID" else q.ThreadId(key.id)
    if isinstance(key, k.SearchNot):
        return q.Not(compile_key(view, key.key))
    if isinstance(key, k.SearchOr):
        return q.Or((compile_key(view, key.left), compile_key(view, key.right)))
    if isinstance(key, k.SearchAnd):
        return q.And(tuple(compile_key(view, x) for x in key.keys))
    raise TypeError(f"unknown search key {key!r}")


def compile_criteria(view: SelectedView, criteria: Iterable[k.SearchKey]) -> q.Query:
    """The top-level keys (implicitly AND-ed) as one store query; BAD for a string
    the store's query refuses (octets that are not UTF-8)."""
    try:
        parts = tuple(compile_key(view, key) for key in criteria)
    except InvalidInput as exc:
        raise bad(str(exc)) from None
    return parts[0] if len(parts) == 1 else q.And(parts)


__all__ = ["compile_criteria", "compile_key", "in_memory", "matches"]
