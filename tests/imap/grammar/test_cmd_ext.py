"""RFC examples: QUOTA (RFC 9208), METADATA (RFC 5464), NOTIFY (RFC 5465)."""

from __future__ import annotations

import pytest

import duck.imap.grammar as g

from .helpers import roundtrip


def test_quota_rfc9208() -> None:
    assert roundtrip(b'G0001 GETQUOTA "!partition/sda4"', canonical=False) == g.GetQuota(
        "G0001", "!partition/sda4")
    assert roundtrip(b"G0002 GETQUOTAROOT INBOX") == g.GetQuotaRoot("G0002", "INBOX")
    assert roundtrip(b'S0000 SETQUOTA "#user/alice" (STORAGE 510)', canonical=False) == g.SetQuota(
        "S0000", "#user/alice", (("STORAGE", 510),))
    assert roundtrip(b'S0001 SETQUOTA "" ()', canonical=False) == g.SetQuota("S0001", "", ())


def test_metadata_rfc5464() -> None:
    assert roundtrip(b'C: a GETMETADATA "" /shared/comment'.removeprefix(b"C: "),
                     canonical=False) == g.GetMetadata("a", "", ("/shared/comment",))
    cmd = roundtrip(b"a GETMETADATA (MAXSIZE 1024 DEPTH infinity) INBOX (/shared/comment "
                    b"/private/comment)")
    assert cmd == g.GetMetadata("a", "INBOX", ("/shared/comment", "/private/comment"),
                                maxsize=1024, depth="infinity")
    cmd = roundtrip(b'a SETMETADATA INBOX (/private/comment "My new comment")')
    assert cmd == g.SetMetadata("a", "INBOX", (("/private/comment", b"My new comment"),))
    cmd = roundtrip(b"a SETMETADATA INBOX (/private/comment NIL /shared/x ~{2+}\r\n\x00\x01)")
    assert cmd == g.SetMetadata("a", "INBOX", (("/private/comment", None),
                                               ("/shared/x", b"\x00\x01")))
    with pytest.raises(g.ParseError):
        g.parse_command(b"a GETMETADATA INBOX /shared/*")
    with pytest.raises(g.ParseError):
        g.parse_command(b"a GETMETADATA (DEPTH 2) INBOX /shared/x")


def test_notify_rfc5465() -> None:
    assert roundtrip(b"a NOTIFY NONE") == g.Notify("a", None)
    cmd = roundtrip(
        b"a NOTIFY SET STATUS (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (From To)]) "
        b"MessageExpunge)) (subtree Lists (MailboxName SubscriptionChange))",
        canonical=False,
    )
    assert isinstance(cmd, g.Notify) and cmd.status and cmd.groups is not None
    selected, subtree = cmd.groups
    assert selected.filter == "SELECTED"
    assert selected.events is not None and selected.events[0].name == "MessageNew"
    assert selected.events[0].fetch_items[0] == g.FetchAttr.UID
    assert subtree.mailboxes == ("Lists",)
    cmd = roundtrip(b"a NOTIFY SET (mailboxes (INBOX Drafts) NONE)", canonical=False)
    assert isinstance(cmd, g.Notify) and cmd.groups is not None
    assert cmd.groups[0] == g.NotifyGroup("MAILBOXES", None, ("INBOX", "Drafts"))
    with pytest.raises(g.ParseError):
        g.parse_command(b"a NOTIFY SET (selected (Bogus))")
