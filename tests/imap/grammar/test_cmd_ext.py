"""RFC examples: QUOTA (RFC 9208), METADATA (RFC 5464), NOTIFY (RFC 5465), URLFETCH
(RFC 4467, RFC 5524)."""

from __future__ import annotations

import pytest

import duck.imap.grammar as g
from duck.imap.grammar.bodystructure import SinglePart
from duck.imap.grammar.cmd_urlauth import (
    UrlFetch,
    UrlFetchArg,
    UrlFetchData,
    UrlMetaBinary,
    UrlMetaBody,
    UrlMetaBodyPartStructure,
)
from duck.imap.grammar.encode import Encoder

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


_URL = ("imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:"
        "91354a473744909de610943775f92038")


def test_urlfetch_rfc4467_and_rfc5524() -> None:
    """RFC 5524 §3.1: each URL alone, or in parentheses with its parameters."""
    assert roundtrip(f'a URLFETCH "{_URL}"'.encode(), canonical=False) == UrlFetch("a", (_URL,))
    cmd = roundtrip(f"A001 URLFETCH ({_URL} BINARY) ({_URL} BODYPARTSTRUCTURE BODY) "
                    f"({_URL})".encode())
    assert cmd == UrlFetch("A001", (UrlFetchArg(_URL, ("BINARY",)),
                                    UrlFetchArg(_URL, ("BODYPARTSTRUCTURE", "BODY")),
                                    UrlFetchArg(_URL, ())))
    assert isinstance(cmd, UrlFetch) and not cmd.urls[2].extended
    assert roundtrip(f'a URLFETCH ("{_URL}" binary)'.encode(), canonical=False) == UrlFetch(
        "a", (UrlFetchArg(_URL, ("BINARY",)),))
    # "Metadata items MUST NOT appear more than once per URL requested, and clients
    # MUST NOT request both BINARY and BODY"; unknown parameters are not served.
    for bad in ("BINARY BODY", "BODY BODY", "SIZE", ""):
        with pytest.raises(g.ParseError):
            g.parse_command(f'a URLFETCH ("{_URL}" {bad}'.encode() + b")")
    with pytest.raises(g.ParseError):
        g.parse_command(f'a URLFETCH ("{_URL}" BINARY'.encode())


def test_urlfetch_data_rfc5524() -> None:
    """RFC 5524 §5 url-metadata: one parenthesized item each; literal8 for NUL octets."""
    body = SinglePart("IMAGE", "PNG", (), None, None, "BINARY", 3)
    e = Encoder()
    UrlFetchData(((_URL, (UrlMetaBodyPartStructure(body), UrlMetaBinary(b"\x00ab"))),
                  ("x", (UrlMetaBody(b"hi"),)), ("y", (UrlMetaBinary(None),)),
                  ("z", None), ("w", b"data"))).encode(e)
    assert e.join() == (
        f'* URLFETCH {_URL} (BODYPARTSTRUCTURE ("IMAGE" "PNG" NIL NIL NIL "BINARY" 3)) '
        '(BINARY ~{3}\r\n\x00ab) x (BODY {2}\r\nhi) y (BINARY NIL) z NIL w {4}\r\ndata'
    ).encode("latin-1")
