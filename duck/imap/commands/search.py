"""SEARCH and UID SEARCH (RFC 3501 §6.4.4), with MODSEQ (RFC 7162 §3.1.5) and the
ESEARCH result options MIN/MAX/COUNT/ALL (RFC 4731)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import CommandError, bad
from ..grammar import search_keys as k
from ..grammar.cmd_search import Search
from ..grammar.resp_codes import BadCharset
from ..grammar.responses import ESearchData, SearchData
from ..grammar.sequence import SequenceSet
from ..searchq import compile_criteria, in_memory, matches
from .registry import command
from .states import SELECTED

if TYPE_CHECKING:
    from ..context import CommandContext

CHARSETS = ("US-ASCII", "UTF-8")


def _uses_saved(keys: tuple[k.SearchKey, ...]) -> bool:
    for key in keys:
        if isinstance(key, k.SearchUid | k.SearchSeq) and key.set.saved:
            return True
        if isinstance(key, k.SearchNot) and _uses_saved((key.key,)):
            return True
        if isinstance(key, k.SearchOr) and _uses_saved((key.left, key.right)):
            return True
        if isinstance(key, k.SearchAnd) and _uses_saved(key.keys):
            return True
    return False


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


def check_returns(returns: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The RETURN options (RFC 4731, RFC 5267) if all are served, else BAD."""
    if returns is not None and any(r not in ("MIN", "MAX", "COUNT", "ALL") for r in returns):
        raise bad("only RETURN (MIN MAX COUNT ALL) is supported")
    return returns


async def matching_uids(s: CommandContext, charset: str | None,
                        criteria: tuple[k.SearchKey, ...]) -> list[int]:
    """UIDs of the selected mailbox's messages matching every key, in view order:
    from the view when it can, otherwise one store query (SEARCH, SORT)."""
    view = s.view
    assert view is not None
    if charset is not None and charset.upper() not in CHARSETS:
        raise CommandError("unsupported charset", code=BadCharset(CHARSETS))
    if _uses_saved(criteria):
        raise bad("SEARCHRES ($) is not supported")
    if all(in_memory(key) for key in criteria):
        hits = matches(view, k.SearchAnd(tuple(criteria)))
        return [u for u in view.uids if u in hits and u not in view.expunged]
    found = set(await s.store.messages.search(view.mailbox.id,
                                              compile_criteria(view, criteria)))
    return [u for u in view.uids if u in found]


@command(Search, SELECTED, expunge_unless_seq=True)
async def search(s: CommandContext, cmd: Search) -> None:
    """Answer from the view when it can; otherwise one store query."""
    view = s.view
    assert view is not None
    returns = check_returns(cmd.return_options)
    with_modseq = any(_uses_modseq(key) for key in cmd.criteria)
    if with_modseq:
        await s.enable_condstore()  # RFC 7162 §3.1
    uids = await matching_uids(s, cmd.charset, cmd.criteria)
    numbers = uids if cmd.uid else [n for n in (view.seq_of(u) for u in uids) if n]
    opts = (set(returns) or {"ALL"}) if returns is not None else set()
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
        response = ESearchData(
            tag=cmd.tag, uid=cmd.uid,
            min=min(numbers) if numbers and "MIN" in opts else None,
            max=max(numbers) if numbers and "MAX" in opts else None,
            all=SequenceSet.from_ints(numbers) if numbers and "ALL" in opts else None,
            count=len(numbers) if "COUNT" in opts else None,
            modseq=modseq or None if numbers else None,
        )
    await s.send(response)
