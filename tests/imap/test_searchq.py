"""SEARCH keys the session's view answers (duck/imap/searchq.py): the set-at-a-time
evaluation against a message-at-a-time reading of RFC 3501 §6.4.4."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from duck.imap.grammar import search_keys as k
from duck.imap.grammar.sequence import SequenceSet
from duck.imap.searchq import in_memory, matches
from duck.imap.view import SelectedView
from duck.store.models import Mailbox, MessageSummary

FLAGS = ["\\Seen", "\\Flagged", "\\Deleted", "$Work", "$work", "\\Recent"]


def _one(view: SelectedView, key: k.SearchKey, uid: int) -> bool:
    match key:
        case k.SearchAll():
            return True
        case k.SearchFlag(flag=flag, present=present):
            if flag.lower() == "\\recent":
                return (uid in view.recent) == present
            return (flag.lower() in [f.lower() for f in view.flags[uid]]) == present
        case k.SearchUid(set=uids):
            return uids.contains(uid, view.uid_max)
        case k.SearchSeq(set=seqs):
            return seqs.contains(view.uids.index(uid) + 1, view.exists)
        case k.SearchModseq(modseq=modseq):
            return view.modseqs[uid] >= modseq
        case k.SearchNot(key=inner):
            return not _one(view, inner, uid)
        case k.SearchOr(left=left, right=right):
            return _one(view, left, uid) or _one(view, right, uid)
        case k.SearchAnd(keys=keys):
            return all(_one(view, x, uid) for x in keys)
    raise AssertionError(key)


def _sets(top: int) -> st.SearchStrategy[SequenceSet]:
    bound = st.integers(1, top + 3)
    return st.lists(st.tuples(bound, bound), min_size=1, max_size=3).map(
        lambda pairs: SequenceSet.parse(",".join(f"{a}:{b}" for a, b in pairs)))


def _keys(top: int) -> st.SearchStrategy[k.SearchKey]:
    leaves = st.one_of(
        st.just(k.SearchAll()),
        st.builds(k.SearchFlag, st.sampled_from(FLAGS), st.booleans()),
        st.builds(k.SearchUid, _sets(top)),
        st.builds(k.SearchSeq, _sets(top)),
        st.builds(k.SearchModseq, st.integers(0, 12)),
    )
    return st.recursive(leaves, lambda inner: st.one_of(
        st.builds(k.SearchNot, inner),
        st.builds(k.SearchOr, inner, inner),
        st.builds(k.SearchAnd, st.lists(inner, min_size=1, max_size=3)),
    ), max_leaves=6)


@st.composite
def _views(draw: st.DrawFn) -> SelectedView:
    uids = sorted(draw(st.sets(st.integers(1, 40), min_size=1, max_size=15)))
    box = Mailbox("m", "u", "INBOX", None, True, 1, max(uids) + 1, 20, len(uids), 0, 0)
    summaries = [MessageSummary(u, draw(st.integers(1, 12)),
                                tuple(draw(st.sets(st.sampled_from(FLAGS[:5])))))
                 for u in uids]
    view = SelectedView.load(box, summaries, readonly=False, modseq=20)
    view.recent = set(draw(st.sets(st.sampled_from(uids))))
    return view


@given(_views(), st.data())
def test_matches_is_the_per_message_reading(view: SelectedView, data: st.DataObject) -> None:
    key = data.draw(_keys(view.uid_max))
    assert in_memory(key)
    assert matches(view, key) == {u for u in view.uids if _one(view, key, u)}
