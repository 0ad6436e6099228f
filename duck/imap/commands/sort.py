"""SORT and UID SORT (RFC 5256 §3) with DISPLAYFROM/DISPLAYTO (RFC 5957), ESORT,
CONTEXT=SORT (RFC 5267; updates in duck/imap/searchcontext.py) and PARTIAL (RFC 9394); THREAD
ORDEREDSUBJECT and REFERENCES (RFC 5256 §4, threading.py).

The messages are those SEARCH would give (the same code); their keys were made at
delivery and come from the store in one query with their sizes and dates
(ordering.py). Ties keep sequence order, as §3 requires.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from duck.store import MessageRecord

from .. import ordering
from ..context import Done
from ..errors import bad
from ..grammar.cmd_search import Sort, Thread
from ..grammar.responses import ESearchData, SortData, ThreadData, ThreadNode
from ..sortkeys import MSGID, RECORD_ONLY, REFS, REPLY, SENT, SUBJECT, arrival, record_keys
from ..threading import Container, Threadable, references, refs
from .registry import command
from .search import (
    check_returns,
    expunge_issued,
    in_order,
    matching_uids,
    partial_result,
    saved_result,
)
from .states import SELECTED

if TYPE_CHECKING:
    from ..context import CommandContext

@command(Sort, SELECTED, expunge_unless_seq=True, needs="r")
async def sort(s: CommandContext, cmd: Sort) -> Done | None:
    """SORT: the matching messages ordered by the criteria, ties by sequence number."""
    view = s.view
    assert view is not None
    returns = check_returns(cmd.return_options)
    uids = await matching_uids(s, cmd.charset, cmd.criteria)
    issued = await expunge_issued(s, cmd.uid)
    criteria = cmd.sort_criteria
    # (uid, key per criterion), made batch by batch as the store sends them: memory
    # holds keys, not envelopes, however many messages match.
    keyed: dict[int, tuple[Any, ...]] = {}
    need = any(c.key not in RECORD_ONLY for c in criteria)
    async for batch in ordering.ordered(s.store, view.mailbox.id, uids, keys=need):
        for rec, keys in batch:
            keyed[rec.uid] = record_keys(criteria, rec, keys)
    # A message expunged elsewhere whose data is gone is left out (RFC 2180 §4.1.2).
    ordered = [(u, keyed[u]) for u in uids if u in keyed]
    # Stable sorts from the last criterion to the first: equal keys keep the order of
    # the criteria after them, and in the end sequence order.
    for i in reversed(range(len(criteria))):
        ordered.sort(key=_nth_key(i), reverse=criteria[i].reverse)
    if cmd.uid:
        numbers = [u for u, _ in ordered]
    else:
        numbers = [n for n in (view.seq_of(u) for u, _ in ordered) if n is not None]
    if returns is None:
        await s.send(SortData(tuple(numbers)))
        return issued
    if "SAVE" in returns:
        # RFC 5267 §3.1 with RFC 5182: MIN/MAX alone save the first/last in sort
        # order; the saved result is a set (its order is not kept).
        view.saved = saved_result([u for u, _ in ordered], set(returns))
        returns = tuple(r for r in returns if r != "SAVE")
        if not returns:
            return issued
    if "UPDATE" in returns:
        # RFC 5267 §4.3 (CONTEXT=SORT): the result is kept current from now on.
        refused = s.contexts.start(view, tag=cmd.tag, uid=cmd.uid, criteria=cmd.criteria,
                                   uids=[u for u, _ in ordered], sort=criteria, keys=keyed)
        if refused is not None:
            await s.send(refused)
    # RFC 5267 §3.1 (ESORT): MIN and MAX are the first and last in sort order, ALL
    # the numbers in sort order (ranges only where they ascend by one).
    opts = set(returns) or {"ALL"}
    if opts <= {"UPDATE", "CONTEXT"}:
        opts = set() if "UPDATE" in opts else {"ALL"}
    await s.send(ESearchData(
        tag=cmd.tag, uid=cmd.uid,
        min=numbers[0] if numbers and "MIN" in opts else None,
        max=numbers[-1] if numbers and "MAX" in opts else None,
        all=in_order(numbers) if numbers and "ALL" in opts else None,
        count=len(numbers) if "COUNT" in opts else None,
        partial=partial_result(numbers, cmd.partial),
    ))
    return issued


def _nth_key(i: int) -> Callable[[tuple[int, tuple[Any, ...]]], Any]:
    return lambda row: row[1][i]


def _ordered_subject(items: list[Threadable]) -> list[ThreadNode]:
    """RFC 5256 §4 ORDEREDSUBJECT: messages grouped by base subject; in a group the
    first (by sent date, then sequence) is the parent of all the others; groups in
    the order of their first messages."""
    groups: dict[str, list[tuple[float, int, int]]] = {}
    for t in items:
        groups.setdefault(t.subject, []).append((t.date, t.order, t.number))
    threads = sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])
    out = []
    for group in threads:
        numbers = [n for _, _, n in group]
        if len(numbers) <= 2:
            out.append(ThreadNode(tuple(numbers)))
        else:
            out.append(ThreadNode((numbers[0],), tuple(ThreadNode((n,)) for n in numbers[1:])))
    return out


#: THREAD algorithms served (RFC 5256 §4), as CAPABILITY names them.
ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES", "REFS")


def _threadable(number: int, rec: MessageRecord, keys: list[bytes], order: int) -> Threadable:
    sent, msgid = keys[SENT], keys[MSGID]
    return Threadable(number, msgid.decode() if msgid else None, keys[REFS].decode().split(),
                      keys[SUBJECT].decode(), keys[REPLY] == b"1",
                      float(sent) if sent else arrival(rec), order)


def _node(c: Container) -> ThreadNode:
    ids: list[int] = []
    while True:
        if c.msg is not None:
            ids.append(c.msg.number)
        if len(c.children) != 1:
            return ThreadNode(tuple(ids), tuple(_node(child) for child in c.children))
        c = c.children[0]


@command(Thread, SELECTED, expunge_unless_seq=True, needs="r")
async def thread(s: CommandContext, cmd: Thread) -> Done | None:
    """THREAD: the matching messages as threads (ORDEREDSUBJECT, REFERENCES, REFS)."""
    view = s.view
    assert view is not None
    if cmd.algorithm not in ALGORITHMS:
        raise bad(f"THREAD {cmd.algorithm} is not supported")
    uids = await matching_uids(s, cmd.charset, cmd.criteria)
    issued = await expunge_issued(s, cmd.uid)
    order = {uid: i for i, uid in enumerate(uids)}
    # What threading needs of each message, batch by batch (not whole envelopes).
    items: list[Threadable] = []
    async for batch in ordering.ordered(s.store, view.mailbox.id, uids):
        for rec, keys in batch:
            number = rec.uid if cmd.uid else view.seq_of(rec.uid)
            if number is not None:
                items.append(_threadable(number, rec, keys, order[rec.uid]))
    if cmd.algorithm == "ORDEREDSUBJECT":
        threads = _ordered_subject(items)
    elif cmd.algorithm == "REFS":
        threads = [_node(c) for c in refs(items)]
    else:
        threads = [_node(c) for c in references(items)]
    await s.send(ThreadData(tuple(threads)))
    return issued
