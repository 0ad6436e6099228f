"""RFC examples: SEARCH (and ESEARCH/SEARCHRES/CONDSTORE/WITHIN/OBJECTID/SAVEDATE keys),
SORT and THREAD."""

from __future__ import annotations

import datetime as dt

import pytest

import duck.imap.grammar as g

from .helpers import drive, roundtrip

S = g.SequenceSet.parse


def test_search_rfc3501_examples() -> None:
    cmd = roundtrip(b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"', canonical=False)
    assert cmd == g.Search("A282", (
        g.SearchFlag("\\Flagged"),
        g.SearchDate("SINCE", g.DateField.INTERNAL, dt.date(1994, 2, 1)),
        g.SearchNot(g.SearchEnvelope("FROM", "Smith")),
    ))
    cmd = roundtrip(b"A284 SEARCH TEXT \"string not in mailbox\"")
    assert cmd == g.Search("A284", (g.SearchText("TEXT", "string not in mailbox"),))
    cmd = roundtrip(b"A285 SEARCH CHARSET UTF-8 TEXT {6+}\r\nXXXXXX", canonical=False)
    assert isinstance(cmd, g.Search) and cmd.charset == "UTF-8"


def test_search_tree_or_not_and_nesting() -> None:
    cmd = roundtrip(b"a UID SEARCH OR (SEEN FLAGGED) NOT (UNDELETED LARGER 100) 1:5,*")
    assert cmd == g.Search("a", (
        g.SearchOr(g.SearchAnd((g.SearchFlag("\\Seen"), g.SearchFlag("\\Flagged"))),
                   g.SearchNot(g.SearchAnd((g.SearchFlag("\\Deleted", False),
                                            g.SearchSize(True, 100))))),
        g.SearchSeq(S("1:5,*")),
    ), uid=True)


def test_search_every_rfc3501_key_parses() -> None:
    line = (b"a SEARCH ALL ANSWERED BCC x BEFORE 1-Jan-2000 BODY y CC z DELETED FLAGGED FROM f "
            b"KEYWORD $Junk NEW OLD ON 2-Feb-2001 RECENT SEEN SINCE 3-Mar-2002 SUBJECT s TEXT t "
            b"TO u UNANSWERED UNDELETED UNFLAGGED UNKEYWORD $Junk UNSEEN DRAFT "
            b'HEADER X-Foo "" LARGER 1 NOT ALL OR ALL ALL SENTBEFORE 1-Jan-2000 '
            b"SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000 SMALLER 9 UID 1:* UNDRAFT 2,4 (ALL)")
    cmd = roundtrip(line, canonical=False)
    assert isinstance(cmd, g.Search) and len(cmd.criteria) == 37
    assert g.SearchAnd((g.SearchFlag("\\Recent"), g.SearchFlag("\\Seen", False))) in cmd.criteria
    assert g.SearchFlag("\\Recent", False) in cmd.criteria  # OLD
    assert g.SearchHeader("X-Foo", "") in cmd.criteria


def test_search_extension_keys() -> None:
    cmd = roundtrip(b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338')  # RFC 7162 §3.1.5
    assert cmd == g.Search("a", (g.SearchModseq(620162338, ("/flags/\\draft", "all")),))
    assert roundtrip(b"a SEARCH MODSEQ 5") == g.Search("a", (g.SearchModseq(5),))
    assert roundtrip(b"a SEARCH OLDER 3600 YOUNGER 60") == g.Search(  # RFC 5032
        "a", (g.SearchWithin(True, 3600), g.SearchWithin(False, 60)))
    assert roundtrip(b"a SEARCH EMAILID M6d99ac3275bb4e THREADID T64b478a75b7ea9") == g.Search(
        "a", (g.SearchObjectId("EMAILID", "M6d99ac3275bb4e"),
              g.SearchObjectId("THREADID", "T64b478a75b7ea9")))
    cmd = roundtrip(b"a SEARCH SAVEDBEFORE 1-Jan-2020 SAVEDATESUPPORTED")  # RFC 8514
    assert cmd == g.Search("a", (
        g.SearchDate("BEFORE", g.DateField.SAVED, dt.date(2020, 1, 1)),
        g.SearchSaveDateSupported()))


def test_esearch_and_searchres() -> None:
    # RFC 4731 §3 and RFC 5182 §2.4
    cmd = roundtrip(b"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM Smith")
    assert isinstance(cmd, g.Search) and cmd.return_options == ("MIN", "COUNT")
    assert roundtrip(b"A283 SEARCH RETURN () FLAGGED") == g.Search(
        "A283", (g.SearchFlag("\\Flagged"),), return_options=())
    cmd = roundtrip(b"A284 UID SEARCH RETURN (SAVE) FLAGGED")
    assert isinstance(cmd, g.Search) and cmd.return_options == ("SAVE",) and cmd.uid
    cmd = roundtrip(b"A285 UID FETCH $ (UID FLAGS)")
    assert isinstance(cmd, g.Fetch) and cmd.sequence_set.saved
    assert roundtrip(b"A286 SEARCH UID $ SEEN $") == g.Search("A286", (
        g.SearchUid(g.SequenceSet.saved_result()), g.SearchFlag("\\Seen"),
        g.SearchSeq(g.SequenceSet.saved_result())))


@pytest.mark.parametrize("line", [
    b"a SEARCH", b"a SEARCH FOO", b"a SEARCH ()", b"a SEARCH RETURN (BOGUS) ALL",
    b"a SEARCH BEFORE 32-Jan-2000", b"a SEARCH BEFORE 1-Foo-2000", b"a SEARCH OR ALL",
    b"a SEARCH UID 0", b"a SEARCH 1:5,", b"a SEARCH KEYWORD \\Seen", b"a SEARCH CHARSET",
    b"a SEARCH LARGER -1", b"a SEARCH EMAILID a.b", b"a SEARCH UID 4294967296",
])
def test_search_malformed(line: bytes) -> None:
    with pytest.raises(g.ParseError) as info:
        g.parse_command(line)
    assert info.value.tag == "a"


def test_sort_rfc5256() -> None:
    cmd = roundtrip(b"A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994")
    assert cmd == g.Sort("A282", (g.SortCriterion(g.SortKey.SUBJECT),), "UTF-8", (
        g.SearchDate("SINCE", g.DateField.INTERNAL, dt.date(1994, 2, 1)),))
    cmd = roundtrip(b"A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL")
    assert isinstance(cmd, g.Sort)
    assert cmd.sort_criteria[1] == g.SortCriterion(g.SortKey.DATE, reverse=True)
    cmd = roundtrip(b"A284 UID SORT (REVERSE DISPLAYFROM) US-ASCII ALL")  # RFC 5957
    assert isinstance(cmd, g.Sort) and cmd.uid
    cmd = roundtrip(b"A301 UID SORT RETURN (MIN MAX) (DATE) UTF-8 UNDELETED")  # RFC 5267
    assert isinstance(cmd, g.Sort) and cmd.return_options == ("MIN", "MAX")
    with pytest.raises(g.ParseError):
        g.parse_command(b"A285 SORT (BOGUS) UTF-8 ALL")
    with pytest.raises(g.ParseError):
        g.parse_command(b"A286 SORT (DATE) ALL")  # charset is mandatory


def test_thread_rfc5256() -> None:
    cmd = roundtrip(b"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000", canonical=False)
    assert cmd == g.Thread("A283", "ORDEREDSUBJECT", "UTF-8", (
        g.SearchDate("SINCE", g.DateField.INTERNAL, dt.date(2000, 3, 5)),))
    cmd = roundtrip(b"A284 UID THREAD REFERENCES US-ASCII TEXT gewp")
    assert isinstance(cmd, g.Thread) and cmd.uid and cmd.algorithm == "REFERENCES"


def test_partial_and_context_return_options_rfc9394_rfc5267() -> None:
    cmd = roundtrip(b"A01 UID SEARCH RETURN (PARTIAL -1:-100) UNDELETED")
    assert isinstance(cmd, g.Search) and cmd.partial == (-1, -100) and cmd.uid
    cmd = roundtrip(b"A02 SEARCH RETURN (COUNT PARTIAL 4:2) ALL", canonical=False)
    assert isinstance(cmd, g.Search) and cmd.partial == (2, 4)
    assert cmd.return_options == ("COUNT", "PARTIAL")
    cmd = roundtrip(b"B01 UID SORT RETURN (UPDATE CONTEXT) (SUBJECT) UTF-8 ALL")
    assert isinstance(cmd, g.Sort) and cmd.return_options == ("UPDATE", "CONTEXT")
    for wrong in (b"(PARTIAL 1)", b"(PARTIAL 1:*)", b"(PARTIAL -1:2)", b"(PARTIAL 0:1)",
                  b"(MIN MIN)", b"(PARTIAL)"):
        events = drive(g.CommandReader(), [b"X SEARCH RETURN " + wrong + b" ALL\r\n"])
        assert events == [("error", "ParseError", "X", False)], wrong
    with pytest.raises(ValueError):
        g.Search("X", (g.SearchAll(),), return_options=("PARTIAL",))


def test_cancelupdate_rfc5267() -> None:
    cmd = roundtrip(b'C01 CANCELUPDATE "B01" "B02"')
    assert cmd == g.CancelUpdate("C01", ("B01", "B02"))
    for wrong in (b"C02 CANCELUPDATE\r\n", b"C03 CANCELUPDATE B01\r\n",
                  b'C04 CANCELUPDATE "a b"\r\n'):
        events = drive(g.CommandReader(), [wrong])
        assert len(events) == 1 and events[0][0] == "error", (wrong, events)  # type: ignore[index]
