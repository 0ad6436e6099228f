"""SEARCH and UID SEARCH (RFC 3501 §6.4.4), with MODSEQ (RFC 7162 §3.1.5), the
ESEARCH result options MIN/MAX/COUNT/ALL (RFC 4731), PARTIAL (RFC 9394) and the
CONTEXT options of RFC 5267 (UPDATE: contexts.py; the CONTEXT hint is taken)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..context import Done
from ..errors import CommandError, bad
from ..grammar import search_keys as k
from ..grammar.cmd_search import CancelUpdate, Search
from ..grammar.resp_codes import BadCharset, Code
from ..grammar.responses import ESearchData, SearchData
from ..grammar.sequence import SequenceSet
from ..searchq import compile_criteria, in_memory, matches
from .registry import command
from .states import SELECTED

if TYPE_CHECKING:
    from ..context import CommandContext

CHARSETS = ("US-ASCII", "UTF-8")


def _uses_modseq(key: k.SearchKey) -> bool:
    if isinstance(key, k.SearchModseq):
        return True
    if isinstance(key, k.SearchNot):
        return _uses_modseq(key.key)
    if isinstance(key, k.SearchOr):
        return _uses_modseq(key.left) or _uses_modseq(key.right)
    if isinstance(key, k.SearchAnd):
        return any(_uses_modseq(x) for x in key.keys)
    return False


#: RETURN options served. RFC 5267 §4.2: CONTEXT is a hint, which a server may
#: ignore (each search here is computed afresh).
SERVED_RETURNS = frozenset({"MIN", "MAX", "COUNT", "ALL", "PARTIAL", "CONTEXT", "UPDATE",
                            "SAVE"})


def check_returns(returns: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The RETURN options (RFC 4731, RFC 5267, RFC 9394) if all are served, else BAD."""
    if returns is None:
        return None
    if any(r not in SERVED_RETURNS for r in returns):
        raise bad("only RETURN (" + " ".join(sorted(SERVED_RETURNS)) + ") is supported")
    if "PARTIAL" in returns and "ALL" in returns:
        # RFC 9394 §3: PARTIAL asks for a window of what ALL would give; both at once
        # make no sense (Dovecot refuses it the same way).
        raise bad("PARTIAL cannot be used with ALL")
    return returns


def saved_result(uids: list[int], opts: set[str]) -> frozenset[int]:
    """What ``RETURN (SAVE ...)`` keeps (RFC 5182 §2.4): with MIN and/or MAX and
    neither ALL nor COUNT, only those; otherwise every match."""
    if uids and opts & {"MIN", "MAX"} and not opts & {"ALL", "COUNT"}:
        return frozenset(u for u, want in ((uids[0], "MIN" in opts),
                                           (uids[-1], "MAX" in opts)) if want)
    return frozenset(uids)


def in_order(numbers: list[int]) -> SequenceSet:
    """A sequence-set listing ``numbers`` in their order (ranges only where they
    ascend by one): ESORT's ALL (RFC 5267 §3.2) and any PARTIAL window."""
    items: list[tuple[int, int]] = []
    for n in numbers:
        if items and items[-1][1] + 1 == n:
            items[-1] = (items[-1][0], n)
        else:
            items.append((n, n))
    return SequenceSet(tuple(items))


def partial_result(numbers: list[int], window: tuple[int, int] | None
                   ) -> tuple[tuple[int, int], SequenceSet | None] | None:
    """RFC 9394 §3 ``PARTIAL (range set)``: the results at positions ``first`` to
    ``last`` (1-based; negative ones count from the end, -1 the last), in result
    order, or NIL when none is there."""
    if window is None:
        return None
    first, last = window
    n = len(numbers)
    if first > 0:
        picked = numbers[first - 1 : last]
    else:
        picked = numbers[max(n + last, 0) : max(n + first + 1, 0)]
    return window, in_order(picked) if picked else None


async def matching_uids(s: CommandContext, charset: str | None,
                        criteria: tuple[k.SearchKey, ...]) -> list[int]:
    """UIDs of the selected mailbox's messages matching every key, in view order:
    from the view when it can, otherwise one store query (SEARCH, SORT)."""
    view = s.view
    assert view is not None
    if charset is not None and charset.upper() not in CHARSETS:
        raise CommandError("unsupported charset", code=BadCharset(CHARSETS))
    if all(in_memory(key) for key in criteria):
        hits = matches(view, k.SearchAnd(tuple(criteria)))
        return [u for u in view.uids if u in hits and u not in view.expunged]
    found = set(await s.store.messages.search(view.mailbox.id,
                                              compile_criteria(view, criteria)))
    return [u for u in view.uids if u in found]


async def expunge_issued(s: CommandContext, uid: bool) -> Done | None:
    """``OK [EXPUNGEISSUED]`` (RFC 5530) for a SEARCH, SORT or THREAD by sequence
    numbers, run on the mailbox as it is, when messages the client still numbers
    were expunged elsewhere meanwhile: whatever they matched, the answer leaves
    them out, and their EXPUNGEs cannot go with it (RFC 3501 §7.4.1), so the code
    tells the client the answer may lack them (imaptest's checker counts a missing
    one as an error without it). A UID command's EXPUNGEs go before its tagged
    reply and say so themselves. The journal is read as NOOP's poll reads it,
    after the answer was computed: a message the answer did not find because it
    was gone is in it by then, whoever removed it (a wake-up alone can come later:
    imaptest found such an answer without the code)."""
    view = s.view
    if uid or view is None:
        return None
    await s.poll_view()
    return Done(code=Code("EXPUNGEISSUED")) if view.expunged else None


@command(Search, SELECTED, expunge_unless_seq=True, needs="r")
async def search(s: CommandContext, cmd: Search) -> Done | None:
    """Answer from the view when it can; otherwise one store query."""
    view = s.view
    assert view is not None
    returns = check_returns(cmd.return_options)
    if returns is None and s.rev2:
        # RFC 9051 §6.4.4: IMAP4rev2 has no SEARCH response; a SEARCH without RETURN
        # is answered as RETURN (ALL) would be.
        returns = ()
    with_modseq = any(_uses_modseq(key) for key in cmd.criteria)
    if with_modseq:
        await s.enable_condstore()  # RFC 7162 §3.1
    try:
        uids = await matching_uids(s, cmd.charset, cmd.criteria)
    except BaseException:
        if returns is not None and "SAVE" in returns:
            view.saved = frozenset()  # RFC 5182 §2.1: a failed SAVE empties "$"
        raise
    issued = await expunge_issued(s, cmd.uid)
    numbers = uids if cmd.uid else [n for n in (view.seq_of(u) for u in uids) if n]
    opts = (set(returns) or {"ALL"}) if returns is not None else set()
    if "SAVE" in opts:
        view.saved = saved_result(uids, opts)
        # RFC 5182 §2.1: SAVE alone returns no ESEARCH; with others, it is not
        # itself reported.
        opts.discard("SAVE")
        if not opts:
            return issued
    # RFC 7162 §3.1.5: the highest modseq of the messages the answer names, so
    # for RETURN (MIN/MAX) alone that of the message(s) returned.
    named = uids
    if uids and opts and opts <= {"MIN", "MAX"}:
        named = [u for u, want in ((uids[0], "MIN" in opts), (uids[-1], "MAX" in opts)) if want]
    modseq = max((view.modseqs.get(u, 0) for u in named), default=None) if with_modseq else None
    response: Any
    if returns is None:
        response = SearchData(tuple(numbers), modseq or None)
    else:
        if opts <= {"UPDATE", "CONTEXT"}:
            # RFC 5267 §4.3: UPDATE alone asks for no data now, only the updates.
            opts = set() if "UPDATE" in opts else {"ALL"}
        response = ESearchData(
            tag=cmd.tag, uid=cmd.uid,
            min=min(numbers) if numbers and "MIN" in opts else None,
            max=max(numbers) if numbers and "MAX" in opts else None,
            all=SequenceSet.from_ints(numbers) if numbers and "ALL" in opts else None,
            count=len(numbers) if "COUNT" in opts else None,
            modseq=modseq or None if numbers else None,
            partial=partial_result(numbers, cmd.partial),
        )
    await s.send(response)
    if returns is not None and "UPDATE" in returns:
        # RFC 5267 §4.3 (CONTEXT=SEARCH): the result is kept current from now on.
        refused = s.contexts.start(view, tag=cmd.tag, uid=cmd.uid, criteria=cmd.criteria,
                                   uids=uids)
        if refused is not None:
            await s.send(refused)
    return issued


@command(CancelUpdate, SELECTED)
async def cancel_update(s: CommandContext, cmd: CancelUpdate) -> None:
    """CANCELUPDATE (RFC 5267 §4.3): no more updates for these searches."""
    unknown = [t for t in cmd.tags if t not in s.contexts.contexts]
    s.contexts.cancel(cmd.tags, s.view)
    if unknown:
        # RFC 5267 §4.3 does not say; telling the client beats a silent OK.
        raise bad(f"no search context with tag {unknown[0]}")
