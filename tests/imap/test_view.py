"""The selected view's keyword bookkeeping: what FLAGS announced, and when a batch
of responses needs a new FLAGS ahead of it (RFC 3501 §7.2.6)."""

from __future__ import annotations

from duck.imap.grammar.resp_codes import PermanentFlags
from duck.imap.grammar.resp_fetch import FetchData
from duck.imap.grammar.responses import ExistsData, FlagsData, UntaggedStatus
from duck.imap.view import SelectedView
from duck.store import JournalEntry, Mailbox, MessageSummary

SYSTEM = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")


def _view(*flags: tuple[str, ...], readonly: bool = False) -> SelectedView:
    box = Mailbox("m", "u", "INBOX", None, True, 1, len(flags) + 1, 10, len(flags), 0, 0)
    summaries = [MessageSummary(i, 1, f) for i, f in enumerate(flags, start=1)]
    return SelectedView.load(box, summaries, readonly=readonly, modseq=10)


def test_load_announces_every_keyword_once_per_spelling() -> None:
    view = _view(("$b", "\\Seen"), ("$B",), ("a",), ())
    assert view.defined_flags() == (*SYSTEM, "$b", "a")
    assert view.permanent_flags() == (*SYSTEM, "$b", "a", "\\*")
    assert _view(("k",), readonly=True).permanent_flags() == ()
    # Any spelling of an announced keyword, system flags and \Recent: nothing to say.
    assert view.announce([("$B", "A", "\\Recent", "\\Draft"), ()]) == []


def test_announce_new_keyword_once() -> None:
    view = _view(("$a",))
    out = view.announce([("$a",), ("\\Seen", "$New"), ("$NEW",)])
    assert out == [
        FlagsData((*SYSTEM, "$a", "$New")),
        UntaggedStatus("OK", PermanentFlags((*SYSTEM, "$a", "$New", "\\*")),
                       "flags permitted"),
    ]
    assert view.announce([("$new", "$a")]) == []


def test_updates_put_flags_before_exists_and_fetch() -> None:
    view = _view((), ())
    view.apply([
        JournalEntry("m", 11, "flags", uid=1, flags=("$Changed",)),
        JournalEntry("m", 12, "exists", uid=3, flags=("$Arrived",)),
        JournalEntry("m", 13, "exists", uid=4, flags=("$Arrived",)),
    ])
    out = view.updates(allow_expunge=True, condstore=False)
    assert isinstance(out[0], FlagsData)
    assert out[0].flags == (*SYSTEM, "$Arrived", "$Changed")
    assert isinstance(out[1], UntaggedStatus)
    assert isinstance(out[2], ExistsData) and isinstance(out[-1], FetchData)
    # A keyword a message lost stays defined: the client may still show it.
    view.apply([JournalEntry("m", 14, "flags", uid=1, flags=())])
    out = view.updates(allow_expunge=True, condstore=False)
    assert [type(x) for x in out] == [FetchData]
    assert view.defined_flags() == (*SYSTEM, "$Arrived", "$Changed")


def test_flags_learned_outside_updates_are_caught_where_shown() -> None:
    """A flag change the session recorded itself (its STORE, FETCH's \\Seen) brings
    another session's keyword along: the response showing it asks first."""
    view = _view(("\\Seen",))
    view.set_flags(1, ("\\Seen", "$Theirs"), 20)
    assert view.updates(allow_expunge=True, condstore=False) == []
    out = view.announce([view.flags_with_recent(1)])
    assert isinstance(out[0], FlagsData) and "$Theirs" in out[0].flags
