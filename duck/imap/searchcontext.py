"""Search contexts (RFC 5267 §4, CONTEXT=SEARCH and CONTEXT=SORT): the results of
a ``SEARCH``/``SORT RETURN (UPDATE)`` kept current as the selected mailbox changes,
told with untagged ``ESEARCH (TAG t) ADDTO``/``REMOVEFROM``; CANCELUPDATE
(commands/search.py) ends them. The session calls ``before_updates`` and
``after_updates`` around the view's own updates.

How a change is found: the view records the UIDs that arrive or whose flags change
(``SelectedView.touched``) while a context is open. At each point where untagged
updates go out, the messages leaving by EXPUNGE are removed first (REMOVEFROM before
the EXPUNGE responses, so that their sequence numbers are still valid), then the
touched messages are searched again, the criteria restricted to their UIDs (one
store query for all of them, none when the view answers the criteria), and what
entered or left the result is told (ADDTO after EXISTS: the numbers are valid).
A SORT context keeps each member's sort keys (they never change: envelope, size,
dates) and tells positions in sort order; a SEARCH context says position 0, which
the ABNF allows for SEARCH (RFC 5267 §4.3 ``context-position``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from duck.store import Store, StoreError

from . import ordering
from .grammar import search_keys as k
from .grammar.cmd_search import SortCriterion
from .grammar.resp_codes import OtherCode
from .grammar.responses import ESearchData, UntaggedStatus
from .grammar.sequence import SequenceSet
from .searchq import compile_criteria, in_memory, matches
from .sortkeys import record_keys

if TYPE_CHECKING:
    from .view import SelectedView

log = logging.getLogger(__name__)

#: Contexts one session keeps updated at once (RFC 5267 §4.3 lets a server refuse
#: more with NOUPDATE): each costs a re-search per batch of changes.
MAX_CONTEXTS = 8


@functools.total_ordering
class _Descending:
    """A sort key compared the other way round (REVERSE)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.value == other.value

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.value < self.value)

    __hash__ = None  # type: ignore[assignment]


@attrs.define
class SearchContext:
    """One updatable result: the search, and its members (in sort order for SORT)."""

    tag: str
    uid: bool
    criteria: tuple[k.SearchKey, ...]
    #: The SORT criteria; None for a SEARCH context.
    sort: tuple[SortCriterion, ...] | None
    members: set[int]
    #: SORT: members in sort order, and each one's sort keys.
    order: list[int] = attrs.Factory(list)
    keys: dict[int, tuple[Any, ...]] = attrs.Factory(dict)
    #: UIDs to search again at the next update (those the view had not announced).
    pending: set[int] = attrs.Factory(set)

    def order_key(self) -> Callable[[int], tuple[Any, ...]]:
        """The total order of RFC 5256 §3: the criteria, then sequence (UID) order."""
        assert self.sort is not None
        reverse = [c.reverse for c in self.sort]
        keys = self.keys

        def key(uid: int) -> tuple[Any, ...]:
            values = keys[uid]
            return (*(_Descending(v) if r else v for v, r in zip(values, reverse,
                                                                 strict=True)), uid)
        return key


def _numbers(view: SelectedView, uids: list[int], uid: bool) -> list[int]:
    if uid:
        return uids
    return [n for n in (view.seq_of(u) for u in uids) if n is not None]


def noupdate(tag: str, text: str) -> UntaggedStatus:
    """``* NO [NOUPDATE "tag"]``: RFC 5267 §4.3, this search gets no (more) updates."""
    return UntaggedStatus("NO", OtherCode("NOUPDATE", f'"{tag}"'), text)


class SearchContexts:
    """The open contexts of one session (cleared when its mailbox is left)."""

    def __init__(self) -> None:
        self.contexts: dict[str, SearchContext] = {}

    def __bool__(self) -> bool:
        return bool(self.contexts)

    def clear(self) -> None:
        """End every context (the mailbox was closed or another selected)."""
        self.contexts.clear()

    def cancel(self, tags: tuple[str, ...], view: SelectedView | None) -> None:
        """CANCELUPDATE: end these contexts (unknown tags are ignored)."""
        for tag in tags:
            self.contexts.pop(tag, None)
        if not self.contexts and view is not None:
            view.touched = None

    def start(self, view: SelectedView, *, tag: str, uid: bool,
              criteria: tuple[k.SearchKey, ...], uids: list[int],
              sort: tuple[SortCriterion, ...] | None = None,
              keys: dict[int, tuple[Any, ...]] | None = None) -> UntaggedStatus | None:
        """Open a context whose result is ``uids`` (in sort order for SORT, with
        ``keys``); the NOUPDATE response when it cannot be (too many open)."""
        self.contexts.pop(tag, None)  # a tag used again: the new search replaces it
        if len(self.contexts) >= MAX_CONTEXTS:
            return noupdate(tag, f"at most {MAX_CONTEXTS} searches are kept updated")
        if view.touched is None:
            view.touched = set()
        ctx = SearchContext(tag, uid, criteria, sort, set(uids),
                            pending=set(view.new) | (view.touched or set()))
        if sort is not None:
            ctx.keys = dict(keys or {})
            ctx.order = list(uids)
        self.contexts[tag] = ctx
        return None

    def before_updates(self, view: SelectedView, *, allow_expunge: bool) -> list[object]:
        """REMOVEFROM for members whose EXPUNGE is about to be sent (numbers as
        they are until then)."""
        if not allow_expunge or not view.expunged:
            return []
        out: list[object] = []
        for ctx in self.contexts.values():
            gone = ctx.members & view.expunged
            response = self._removed(ctx, view, gone) if gone else None
            if response is not None:
                out.append(response)
        return out

    async def after_updates(self, store: Store, view: SelectedView) -> list[object]:
        """ADDTO/REMOVEFROM for the touched messages, searched again."""
        touched = view.touched or set()
        view.touched = set()
        out: list[object] = []
        for tag, ctx in list(self.contexts.items()):
            candidates = [u for u in sorted(touched | ctx.pending)
                          if u not in view.expunged and view.seq_of(u) is not None]
            ctx.pending = {u for u in ctx.pending if view.seq_of(u) is None}
            if not candidates:
                continue
            try:
                out += await self._research(store, view, ctx, candidates)
            except StoreError as exc:
                log.warning("search context %s dropped: %r", tag, exc)
                del self.contexts[tag]
                out.append(noupdate(tag, "the search could not be updated"))
        return out

    async def _research(self, store: Store, view: SelectedView, ctx: SearchContext,
                        candidates: list[int]) -> list[object]:
        if all(in_memory(key) for key in ctx.criteria):
            hits = matches(view, k.SearchAnd(ctx.criteria))
            matched = {u for u in candidates if u in hits}
        else:
            restricted = (*ctx.criteria, k.SearchUid(SequenceSet.from_ints(candidates)))
            matched = set(await store.messages.search(
                view.mailbox.id, compile_criteria(view, restricted)))
        removed = {u for u in candidates if u in ctx.members and u not in matched}
        added = [u for u in candidates if u in matched and u not in ctx.members]
        out: list[object] = []
        response = self._removed(ctx, view, removed) if removed else None
        if response is not None:
            out.append(response)
        if ctx.sort is not None and added:
            async for batch in ordering.ordered(store, view.mailbox.id, added):
                for rec, keys in batch:
                    ctx.keys[rec.uid] = record_keys(ctx.sort, rec, keys)
            added = [u for u in added if u in ctx.keys]  # gone meanwhile: left out
        if added:
            ctx.members.update(added)
            if ctx.sort is None:
                items = [(0, SequenceSet.from_ints(_numbers(view, added, ctx.uid)))]
            else:
                ctx.order = sorted(ctx.members, key=ctx.order_key())
                where = {u: i + 1 for i, u in enumerate(ctx.order)}
                # Ascending final positions: each insertion lands where it belongs.
                items = [(where[u], SequenceSet.from_ints(_numbers(view, [u], ctx.uid)))
                         for u in sorted(added, key=where.__getitem__)]
            out.append(ESearchData(tag=ctx.tag, uid=ctx.uid, addto=tuple(items)))
        return out

    @staticmethod
    def _removed(ctx: SearchContext, view: SelectedView, gone: set[int]) -> ESearchData | None:
        ctx.members -= gone
        items: list[tuple[int, SequenceSet]] = []
        if ctx.sort is None:
            numbers = _numbers(view, sorted(gone), ctx.uid)
            if numbers:
                items.append((0, SequenceSet.from_ints(numbers)))
        else:
            where = {u: i + 1 for i, u in enumerate(ctx.order)}
            # Descending positions: each removal leaves the earlier positions valid.
            for u in sorted(gone, key=where.__getitem__, reverse=True):
                numbers = _numbers(view, [u], ctx.uid)
                if numbers:
                    items.append((where[u], SequenceSet.from_ints(numbers)))
            ctx.order = [u for u in ctx.order if u not in gone]
            for u in gone:
                ctx.keys.pop(u, None)
        return ESearchData(tag=ctx.tag, uid=ctx.uid, removefrom=tuple(items)) if items else None
