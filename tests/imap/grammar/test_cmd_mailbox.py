"""RFC examples: SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST, LSUB, STATUS."""

from __future__ import annotations

import pytest

import duck.imap.grammar as g

from .helpers import parse_one, roundtrip

S = g.SequenceSet.parse


def test_select_examine_rfc3501() -> None:
    assert roundtrip(b"A142 SELECT INBOX") == g.Select("A142", "INBOX")
    assert roundtrip(b"A932 EXAMINE blurdybloop") == g.Examine("A932", "blurdybloop")
    assert parse_one(b"A1 select inBox") == g.Select("A1", "INBOX")  # §5.1 INBOX rule
    assert not isinstance(g.Examine("a", "x"), g.Select)


def test_select_condstore_and_qresync_rfc7162() -> None:
    assert roundtrip(b"a SELECT INBOX (CONDSTORE)") == g.Select("a", "INBOX", condstore=True)
    cmd = roundtrip(b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 "
                    b"41,43:211,214:541))")
    assert cmd == g.Select("A02", "INBOX", qresync=g.QresyncParams(
        67890007, 20050715194045000, S("41,43:211,214:541")))
    cmd = roundtrip(b"B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 "
                    b"(5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979:29997)))")
    assert isinstance(cmd, g.Select) and cmd.qresync is not None
    assert cmd.qresync.seq_match == (S("5000,7500,9000,9990:9999"),
                                     S("15000,22500,27000,29970,29973,29976,29979:29997"))


@pytest.mark.parametrize("line", [b"a SELECT INBOX ()", b"a SELECT INBOX (FOO)",
                                  b"a SELECT INBOX (QRESYNC (0 1))", b"a SELECT"])
def test_select_bad_params(line: bytes) -> None:
    with pytest.raises(g.ParseError):
        g.parse_command(line)


def test_create_delete_rename_subscribe() -> None:
    assert roundtrip(b"A003 CREATE owatagusiam/") == g.Create("A003", "owatagusiam/")
    assert roundtrip(b"A683 DELETE blurdybloop") == g.Delete("A683", "blurdybloop")
    assert roundtrip(b"A682 RENAME foo sarasoop") == g.Rename("A682", "foo", "sarasoop")
    assert roundtrip(b"A002 SUBSCRIBE #news.comp.mail.mime") == g.Subscribe(
        "A002", "#news.comp.mail.mime")
    assert roundtrip(b"A002 UNSUBSCRIBE #news.comp.mail.mime") == g.Unsubscribe(
        "A002", "#news.comp.mail.mime")
    # RFC 6154 §5.2 CREATE-SPECIAL-USE
    assert roundtrip(b"t1 CREATE MySpecial (USE (\\Drafts \\Sent))") == g.Create(
        "t1", "MySpecial", ("\\Drafts", "\\Sent"))


def test_mailbox_names_are_modified_utf7_decoded() -> None:
    cmd = roundtrip(b"a CREATE ~peter/mail/&U,BTFw-/&ZeVnLIqe-")
    assert cmd == g.Create("a", "~peter/mail/台北/日本語")
    assert roundtrip(b'a DELETE "a b&-c"') == g.Delete("a", "a b&c")
    # Bad modified UTF-7 is still a valid astring (RFC 3501 §9): not a parse error,
    # but a name no mailbox has (the store refuses its control character).
    bad = g.parse_command(b"a DELETE &Jjo!")
    assert isinstance(bad, g.Delete) and bad.mailbox == g.invalid_mailbox_name(b"&Jjo!")
    assert bad.mailbox.startswith("\x00")


def test_list_rfc3501() -> None:
    assert roundtrip(b'A101 LIST "" ""') == g.List("A101", "", ("",))
    assert roundtrip(b"A102 LIST #news.comp.mail.misc \"\"") == g.List(
        "A102", "#news.comp.mail.misc", ("",))
    assert roundtrip(b'A202 LIST ~/Mail/ %') == g.List("A202", "~/Mail/", ("%",))
    assert roundtrip(b'A203 LIST "" *') == g.List("A203", "", ("*",))


def test_list_extended_rfc5258() -> None:
    assert roundtrip(b'A02 LIST (SUBSCRIBED) "" (*)') == g.List(
        "A02", "", ("*",), ("SUBSCRIBED",))
    assert roundtrip(b'A03 LIST () "" (%) RETURN (CHILDREN)', canonical=False) == g.List(
        "A03", "", ("%",), return_options=("CHILDREN",))
    cmd = roundtrip(b'A04 LIST (REMOTE SUBSCRIBED RECURSIVEMATCH) "" (% "%/%") '
                    b'RETURN (CHILDREN SPECIAL-USE)', canonical=False)
    assert isinstance(cmd, g.List) and cmd.extended and cmd.patterns == ("%", "%/%")
    cmd = roundtrip(b'A05 LIST "" (%) RETURN (STATUS (MESSAGES UNSEEN))')  # RFC 5819
    assert isinstance(cmd, g.List)
    assert cmd.return_status == (g.StatusItem.MESSAGES, g.StatusItem.UNSEEN)
    with pytest.raises(g.ParseError):
        g.parse_command(b'A06 LIST (RECURSIVEMATCH) "" %')
    with pytest.raises(g.ParseError):
        g.parse_command(b'A07 LIST "" % RETURN (BOGUS)')


def test_lsub_and_status() -> None:
    assert roundtrip(b'A002 LSUB "#news." "comp.mail.*"', canonical=False) == g.Lsub(
        "A002", "#news.", "comp.mail.*")
    assert roundtrip(b"A002 LSUB #news. comp.mail.*") == g.Lsub("A002", "#news.", "comp.mail.*")
    assert roundtrip(b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)") == g.Status(
        "A042", "blurdybloop", (g.StatusItem.UIDNEXT, g.StatusItem.MESSAGES))
    assert roundtrip(b"A043 STATUS INBOX (SIZE HIGHESTMODSEQ MAILBOXID DELETED)") == g.Status(
        "A043", "INBOX", (g.StatusItem.SIZE, g.StatusItem.HIGHESTMODSEQ,
                          g.StatusItem.MAILBOXID, g.StatusItem.DELETED))
    with pytest.raises(g.ParseError):
        g.parse_command(b"A044 STATUS INBOX ()")
