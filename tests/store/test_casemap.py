"""RFC 5051's i;unicode-casemap as SEARCH's patterns apply it (duck/store/index/casemap.py).

The patterns are checked against the collation's definition (``casemap.matches``:
the needle's titlecased decomposition a substring of the text's) over texts in NFC
and in NFD, and against what Dovecot answers for the same needles (read off the
imaptest kit's Dovecot 2.3: ``SUBJECT "RE"`` finds "Résumé", "ß" does not find "ẞ").
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duck.store.index import casemap, digest, textindex

pytestmark = pytest.mark.no_database

#: Pieces of text where the collation differs from plain case folding: accents in
#: both forms, several marks on one letter, Hangul syllables and their jamo, the
#: letters whose titlecase is an ASCII letter, sharp s, Greek with tonos, and
#: characters that regular expressions treat specially.
PIECES = [
    "a", "E", "e", "s", "S", "i", "I", "k", "r", " ", ".", "*", "[", "-", "&",
    "é", "É", "e\u0301", "E\u0301", "ệ", "e\u0323\u0302", "ê\u0301", "\u0301", "\u0323",
    "\u0131", "İ", "i\u0307", "\u017f", "\u212a", "ß", "ẞ", "Σ", "\u03c3", "ς", "ά", "\u03b1\u0301",
    "한", "하", "\u1112", "\u1161", "\u11ab", "й", "и\u0306", "ǆ", "ǅ", "Ǆ", "ﬁ",
]


def _search(needle: str, text: str) -> bool:
    return re.search(casemap.substring_pattern(needle), text) is not None


def _reorders(text: str) -> bool:
    """Whether decomposing ``text`` moves an accent across a character boundary
    (``ệ`` and another dot below: the dot goes before the circumflex), where the
    patterns, which look at one character at a time, may differ."""
    return unicodedata.normalize("NFD", text) != "".join(
        unicodedata.normalize("NFD", ch) for ch in text)


@pytest.mark.parametrize(("needle", "text", "found"), [
    ("RE", "Résumé attached", True),            # the accent follows the E
    ("RE", "Re\u0301sume\u0301", True),
    ("résumé", "RÉSUMÉ", True),
    ("RÉSUMÉ", "Re\u0301sume\u0301", True),      # NFC needle, NFD text
    ("Re\u0301sume\u0301", "résumé", True),      # and the other way round
    ("resume", "résumé", False),                 # the accents are part of the map
    ("SUME", "Résumé", True),                    # the last E begins the É
    ("\u0301s", "RÉSUMÉ", True),                 # an accent ends the É before S
    ("\u0301", "café", True),
    ("\u0131", "İstanbul", True),                     # \u0131 is I; İ is I and a dot
    ("i\u0307", "İstanbul", True),
    ("istanbul", "İstanbul", False),             # the dot is in between
    ("straSSe", "STRASSE", True),
    ("ß", "GROẞ", False),                        # neither titlecases to the other
    ("ß", "Straße", True),
    ("\u017f", "Sun", True),                          # long s titlecases to S
    ("k", "\u212a", True),                       # the Kelvin sign decomposes to K
    ("한", "대한민국", True),
    ("하", "한", True),                            # a syllable begins with its jamo
    ("\u1161\u11ab", "한", True),                 # and ends with them
    ("\u1161", "한", True),                       # or holds one inside
    ("a.b", "A.B", True),
    ("a.b", "axb", False),                       # literal, not a pattern
    ("[x]", "[X]", True),
    ("ﬁ", "fine", False),                        # no compatibility decomposition
    ("\u03c3", "ΟΔΟΣ", True),
    ("ς", "ΟΔΟΣ", True),
    ("", "anything", True),
])
def test_needles_as_dovecot_finds_them(needle: str, text: str, found: bool) -> None:
    assert casemap.matches(needle, text) is found
    assert _search(needle, text) is found


@given(st.lists(st.sampled_from(PIECES), max_size=12), st.data())
def test_patterns_agree_with_the_definition(pieces: list[str], data: st.DataObject) -> None:
    raw = "".join(pieces)
    mapped = casemap.casemap(raw)
    if mapped:
        start = data.draw(st.integers(0, len(mapped) - 1))
        end = data.draw(st.integers(start + 1, len(mapped)))
        cut = mapped[start:end]
    else:
        cut = ""
    needle = data.draw(st.sampled_from([
        cut, cut.lower(), unicodedata.normalize("NFC", cut),
        "".join(data.draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=3)))]))
    for form in ("NFC", "NFD"):
        text = unicodedata.normalize(form, raw)
        if not _reorders(text):
            assert _search(needle, text) is casemap.matches(needle, text), (needle, text)


@given(st.text(max_size=40), st.text(min_size=1, max_size=6))
def test_patterns_never_miss_over_any_text(text: str, extra: str) -> None:
    # Any Unicode at all, in NFC: every substring of the text's map is found in it.
    text = unicodedata.normalize("NFC", text + extra)
    if _reorders(text):
        return
    mapped = casemap.casemap(text)
    for start in range(0, len(mapped), 3):
        needle = mapped[start:start + 4]
        if casemap.matches(needle, text):  # (titlecasing twice may differ)
            assert _search(needle, text), (needle, text)


def test_the_tables_cover_every_mapping_in_unicode() -> None:
    # _TOP bounds the scan: nothing above it titlecases or decomposes canonically.
    for cp in range(casemap._TOP, 0x110000):
        ch = chr(cp)
        assert casemap.casemap(ch) == ch or unicodedata.category(ch) == "Cs", hex(cp)


def test_a_pattern_reads_the_same_in_every_engine_dialect() -> None:
    # Only literals, classes and non-capturing groups: no flags, no escapes of
    # letters or digits, nothing a Rust or PCRE regex reads otherwise.
    pattern = casemap.substring_pattern("Ré-sumé & [x] ~ 1.0 한")
    assert not re.search(r"\(\?[a-zA-Z]|\\[0-9A-Za-z]", pattern)
    assert re.search(pattern, "RÉ-SUMÉ & [X] ~ 1.0 한국")


@given(st.lists(st.sampled_from(PIECES), min_size=3, max_size=20), st.data())
def test_trigram_prefilters_never_drop_a_match(pieces: list[str], data: st.DataObject
                                               ) -> None:
    # The trigram index (textindex.py) and the digest's Bloom filter (digest.py)
    # look for pieces of a needle in the text as written: every match must hold them.
    form = data.draw(st.sampled_from(["NFC", "NFD"]))
    text = unicodedata.normalize(form, "".join(pieces))
    if _reorders(text):
        return
    mapped = casemap.casemap(text)
    start = data.draw(st.integers(0, len(mapped) - 1))
    end = data.draw(st.integers(start + 1, len(mapped)))
    needle = data.draw(st.sampled_from([mapped[start:end], mapped[start:end].lower(),
                                        unicodedata.normalize("NFC", mapped[start:end])]))
    if not casemap.matches(needle, text):
        return
    grams = set(textindex.needle_grams(needle))
    assert grams <= set(textindex.document_grams([], text)), (needle, text)
    positions = digest.needle_positions(needle)
    if positions is not None:
        have = digest.text_positions([text])
        assert have is not None and set(positions) <= have, (needle, text)


@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12), st.data())
def test_a_database_gate_holds_every_match_and_its_quick_pattern_no_other(
        pieces: list[str], data: st.DataObject) -> None:
    # query.py checks gate AND (quick OR exact): the same answer as exact alone.
    text = unicodedata.normalize(data.draw(st.sampled_from(["NFC", "NFD"])), "".join(pieces))
    mapped = casemap.casemap(text)
    start = data.draw(st.integers(0, len(mapped) - 1))
    cut = mapped[start:data.draw(st.integers(start + 1, len(mapped)))]
    needle = data.draw(st.sampled_from([cut, cut.lower(), unicodedata.normalize("NFC", cut),
                                        "".join(data.draw(st.lists(st.sampled_from(PIECES),
                                                                   min_size=1, max_size=3)))]))
    test = casemap.database_test(needle)
    exact = re.search(test.exact, text) is not None
    if exact and test.gate is not None:
        assert re.search(test.gate, text, re.IGNORECASE), (needle, text, test)
    if test.quick is not None and re.search(test.quick, text,
                                            re.IGNORECASE if test.quick_i else 0):
        assert exact or _reorders(text), (needle, text, test)
