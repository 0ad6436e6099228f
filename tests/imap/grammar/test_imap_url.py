"""IMAP URLs (RFC 5092) as CATENATE (RFC 4469) takes them: the forms served, and
clear errors for the rest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duck.imap.grammar.fetch_items import BodySection, SectionText
from duck.imap.grammar.imap_url import ImapUrlError, parse_imap_url


def test_absolute_url_rfc4469_example() -> None:
    # RFC 4469 §3's example URL.
    url = parse_imap_url("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER")
    assert (url.mailbox, url.uidvalidity, url.uid) == ("Drafts", 385759045, 20)
    assert url.section == BodySection(text=SectionText.HEADER, peek=True)
    assert url.server and url.host is None and url.partial is None


def test_full_url_with_user_section_fields_and_partial() -> None:
    url = parse_imap_url("imap://joe%40example.com;AUTH=*@mail.example.com:143/"
                         "a/b%20c/;UID=7/;SECTION=1.2.HEADER.FIELDS%20(From%20To)"
                         "/;PARTIAL=10.20")
    assert (url.user, url.host, url.mailbox, url.uid) == (
        "joe@example.com", "mail.example.com", "a/b c", 7)
    assert url.section is not None and url.section.part == (1, 2)
    assert url.section.fields == ("From", "To")
    assert url.partial == (10, 20)


def test_relative_to_selected_mailbox_and_open_partial() -> None:
    url = parse_imap_url(";uid=4/;partial=5")
    assert (url.server, url.mailbox, url.uid, url.partial) == (False, None, 4, (5, None))


def test_utf8_mailbox_names() -> None:
    # RFC 5092 §3: names are UTF-8, percent-encoded (not modified UTF-7).
    assert parse_imap_url("/Entw%C3%BCrfe/;UID=1").mailbox == "Entwürfe"


def test_urlauth_is_flagged() -> None:
    assert parse_imap_url("/INBOX/;UID=1;URLAUTH=anonymous:internal:0123").urlauth


@pytest.mark.parametrize("text", [
    "INBOX/;UID=1",  # relative path with a mailbox: not resolvable sensibly
    "/;UID=1",  # no mailbox
    "/INBOX/;UID=0",  # UIDs are non-zero
    "/INBOX/;UID=4294967296",
    "/INBOX",  # a mailbox, not a message
    "/INBOX?SUBJECT%20x",  # a search, not a message
    "/IN;BOX/;UID=1",
    "/INBOX/;UID=1/;SECTION=1.FOO",
    "/INBOX/;UID=1/;SECTION=1]",
    "/IN%ZZBOX/;UID=1",
    "/%FF/;UID=1",
    "/INBOX/;UID=1 extra",
    "imap://host",
    "http://host/INBOX/;UID=1",
])
def test_refused_forms(text: str) -> None:
    with pytest.raises(ImapUrlError):
        parse_imap_url(text)


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_imapurlerror(text: str) -> None:
    try:
        url = parse_imap_url(text)
    except ImapUrlError:
        return
    assert url.uid >= 1
