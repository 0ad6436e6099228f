"""RFC examples of server responses: serialize, parse back, and literal choice."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

import duck.imap.grammar as g
from duck.imap.grammar.encode import Encoder
from duck.imap.grammar.responses import Completed
from duck.imap.grammar.serializer import serialize

from .helpers import response_roundtrip
from .strategies import tags

S = g.SequenceSet.parse
F = g.FetchAttr


@pytest.mark.parametrize("line", [
    b"* OK IMAP4rev1 server ready",
    b"* OK [ALERT] System shutdown in 10 minutes",
    b"A001 OK LOGIN completed",
    b"* BAD Empty command line",
    b"* PREAUTH IMAP4rev1 server logged in as Smith",
    b"* BYE Autologout; idle for too long",
    b"* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI LOGINDISABLED",
    b"* 172 EXISTS",
    b"* 1 RECENT",
    b"* 44 EXPUNGE",
    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
    b"* OK [UNSEEN 12] Message 12 is first unseen",
    b"* OK [UIDVALIDITY 3857529045] UIDs valid",
    b"* OK [UIDNEXT 4392] Predicted next UID",
    b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited",
    b"A142 OK [READ-WRITE] SELECT completed",
    b'* LIST (\\Noselect) "/" ~/Mail/foo',
    b'* LIST () NIL INBOX',
    b'* LSUB () "." #news.comp.mail.misc',
    b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)",
    b"* SEARCH 2 84 882",
    b"* SEARCH",
    b"* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)",
    b"* SORT 2 84 882",
    b"* THREAD (166)(167)(168)(169)(172)(170)(171)(173)(174 (175)(176)(178)(181)(180))"
    b"(179)(177 (183)(182)(188)(184)(185)(186)(187)(189))(190)(191)(192)(193)(194 195)"
    b"((196)(197)(198))(199)(200 202)(201)(203)(204)(205)(206 207)(208)",
    b"* THREAD",
    b'* ESEARCH (TAG "A285") UID MIN 7 MAX 3800',
    b'* ESEARCH (TAG "A284") MIN 4',
    b'* ESEARCH (TAG "A283") ALL 2,10:11',
    b"* ESEARCH",
    b"* VANISHED (EARLIER) 300:310,405,411",
    b"* VANISHED 405,407,410,425",
    b"A003 OK [APPENDUID 38505 3955] APPEND completed",
    b"A004 OK [COPYUID 38505 304,319:320 3956:3958] Done",
    b"A005 NO [TRYCREATE] No such mailbox",
    b"A006 OK [HIGHESTMODSEQ 715194045007] Ok",
    b"* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences",
    b"d105 OK [MODIFIED 7,9] Conditional STORE failed",
    b"A001 NO [AUTHENTICATIONFAILED] Authentication failed",
    b"A002 NO [OVERQUOTA] Sorry",
    b"A003 NO [BADCHARSET (UTF-8 US-ASCII)] bad charset",
    b"A004 OK [CAPABILITY IMAP4rev1 LITERAL+ ID] Logged in",
    b"* OK [CLOSED] Previous mailbox closed",
    b"A005 OK [MAILBOXID (F2212ea87-6097-4256-9d51-71338625)] Completed",
    b"A006 NO [METADATA LONGENTRIES 2199] Too big",
    b"A007 NO [METADATA TOOMANY] Too many",
    b"* ENABLED CONDSTORE QRESYNC",
    b"* QUOTAROOT INBOX \"\"",
    b'* QUOTA "" (STORAGE 10 512)',
    b'* METADATA "" (/shared/comment "Shared comment")',
    b"* METADATA INBOX /shared/comment /private/comment",
    b'* NAMESPACE (("" "/")) (("~" "/")) (("#shared/" "/")("#public/" "/")("#ftp/" "/")'
    b'("#news." "."))',
    b'* NAMESPACE (("" "/" "X-PARAM" ("FLAG1" "FLAG2"))) NIL NIL',
    b'* ID ("name" "Cyrus" "version" "1.5" "os" "sunos" "os-version" "5.5" '
    b'"support-url" "mailto:cyrus-bugs+@andrew.cmu.edu")',
    b"* ID NIL",
    b"+ Ready for additional command text",
    b"+ [ALERT] go on",
    b'* 12 FETCH (FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" RFC822.SIZE 4286)',
    b"* 23 FETCH (FLAGS (\\Seen) UID 4827313)",
    b"* 4 FETCH (MODSEQ (12121231000))",
    b"* 1 FETCH (EMAILID (M6d99ac3275bb4e) THREADID (T64b478a75b7ea9))",
    b"* 2 FETCH (THREADID NIL SAVEDATE NIL)",
    b"* 3 FETCH (BINARY.SIZE[1.2] 1234 BINARY.SIZE[] 9)",
    # RFC 9394 §3, RFC 5267 §4.3.
    b'* ESEARCH (TAG "A01") UID PARTIAL (-1:-100 200:250,252:300)',
    b'* ESEARCH (TAG "A02") COUNT 0 PARTIAL (1:10 NIL)',
    b'* ESEARCH (TAG "B01") UID ADDTO (0 32768:32769)',
    b'* ESEARCH (TAG "C01") UID ADDTO (1 7 5 9,8) REMOVEFROM (0 32768)',
])
def test_rfc_response_examples(line: bytes) -> None:
    response_roundtrip(line)


def test_lenient_forms_parse() -> None:
    # Forms that parse to the same value as a canonical line.
    assert g.parse_response(b"* OK [READ-ONLY]") == g.UntaggedStatus("OK", g.Code("READ-ONLY"))
    assert g.parse_response(b"* LIST (\\HasNoChildren) \".\" \"INBOX.Sent\"\r\n") == g.ListData(
        ("\\HasNoChildren",), ".", "INBOX.Sent")
    assert g.parse_response(b"* OK [X-FOO bar baz] text") == g.UntaggedStatus(
        "OK", g.OtherCode("X-FOO", "bar baz"), "text")


def test_fetch_envelope_and_bodystructure_rfc3501() -> None:
    line = (
        b'* 12 FETCH (ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg '
        b'summary and minutes" (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" '
        b'NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) ((NIL NIL "minutes" "CNRI.Reston.VA.US")'
        b'("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL "<B27397-0100000@cac.washington.edu>") '
        b'BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92))'
    )
    resp = response_roundtrip(line)
    assert isinstance(resp, g.FetchData)
    env = resp.get(F.ENVELOPE)
    assert env.subject == b"IMAP4rev1 WG mtg summary and minutes"
    assert env.cc[1] == g.Address(b"John Klensin", None, b"KLENSIN", b"MIT.EDU")
    assert env.bcc == () and env.message_id == b"<B27397-0100000@cac.washington.edu>"
    body = resp.get(F.BODY)
    assert body == g.SinglePart("TEXT", "PLAIN", (("CHARSET", "US-ASCII"),), size=3028, lines=92)


def test_bodystructure_multipart_with_extension_data() -> None:
    line = (
        b'* 1 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 '
        b'23 NIL NIL NIL NIL)("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
        b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73 NIL '
        b'("attachment" ("filename" "cc.diff")) ("en" "de") "loc" 5 ("x" (1 NIL))) "MIXED" '
        b'("BOUNDARY" "x") NIL "fr" NIL))'
    )
    resp = response_roundtrip(line)
    assert isinstance(resp, g.FetchData)
    body = resp.get(F.BODYSTRUCTURE)
    assert isinstance(body, g.MultiPart) and body.subtype == "MIXED"
    assert body.ext == g.BodyExt(params=(("BOUNDARY", "x"),), language=("fr",))
    second = body.parts[1]
    assert isinstance(second, g.SinglePart) and second.ext is not None
    assert second.ext.disposition == g.Disposition("attachment", (("filename", "cc.diff"),))
    assert second.ext.extensions == (5, ("x", (1, None)))


def test_message_rfc822_part() -> None:
    inner = g.SinglePart("TEXT", "PLAIN", size=10, lines=1)
    part = g.SinglePart("MESSAGE", "RFC822", size=100, lines=5,
                        envelope=g.Envelope(subject=b"fwd"), body=inner)
    resp = g.FetchData(1, [(F.BODY, g.MultiPart([part, inner]))])
    wire = g.serialize(resp)
    assert b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 100 (NIL "fwd" NIL' in wire
    assert g.parse_response(wire) == resp
    with pytest.raises(ValueError):
        g.SinglePart("MESSAGE", "RFC822", size=1)  # needs envelope, body and lines
    with pytest.raises(ValueError):
        g.FetchData(1, [(F.BODY, g.SinglePart("A", "B", ext=g.BodyExt()))])  # BODY: no ext


def test_body_section_data_uses_literals_and_literal8() -> None:
    key = g.BodySection((1,), partial=(0, 5)).response_key()
    resp = g.FetchData(5, [(key, b"ab\r\nc"), (g.BodySection(binary=True), b"\x00\xff"),
                           (F.RFC822_HEADER, None), (g.BodySection((2,), g.SectionText.TEXT), b"")])
    wire = g.serialize(resp)
    assert wire == (b'* 5 FETCH (BODY[1]<0> {5}\r\nab\r\nc BINARY[] ~{2}\r\n\x00\xff '
                    b'RFC822.HEADER NIL BODY[2.TEXT] "")\r\n')
    assert g.parse_response(wire) == resp


def test_strings_choose_atom_quoted_or_literal() -> None:
    cases = {
        "plain": b"plain", "two words": b'"two words"', 'q"uo\\te': b'"q\\"uo\\\\te"',
        "": b'""', "NIL": b"NIL", "8bit\u00e9": b"{6}\r\n8bit\xc3\xa9", "cr\rlf": b"{5}\r\ncr\rlf",
    }
    for value, expected in cases.items():
        wire = g.serialize(g.QuotaRootData("INBOX", (value,)))
        assert wire == b"* QUOTAROOT INBOX " + expected + b"\r\n", value
        assert g.parse_response(wire) == g.QuotaRootData("INBOX", (value,))
    # nstring context: the string "NIL" must not become the atom NIL.
    env = g.serialize(g.FetchData(1, [(F.ENVELOPE, g.Envelope(subject=b"NIL"))]))
    assert b'(NIL "NIL" NIL' in env


def test_serialize_chunks_streams_literal_bodies() -> None:
    source = object()
    body = g.LiteralBody(1000, source)
    resp = g.FetchData(7, [(F.UID, 9), (g.BodySection().response_key(), body), (F.FLAGS, ())])
    chunks = list(g.serialize_chunks(resp))
    assert chunks == [b"* 7 FETCH (UID 9 BODY[] {1000}\r\n", body, b" FLAGS ())\r\n"]
    assert chunks[1].source is source  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        g.serialize(resp)
    plain = g.FetchData(7, [(F.UID, 9)])
    assert b"".join(g.serialize_chunks(plain)) == g.serialize(plain)  # type: ignore[arg-type]


def test_internaldate_keeps_zone() -> None:
    when = dt.datetime(1996, 7, 17, 2, 44, 25, tzinfo=dt.timezone(dt.timedelta(hours=-7)))
    wire = g.serialize(g.FetchData(1, [(F.INTERNALDATE, when)]))
    assert wire == b'* 1 FETCH (INTERNALDATE "17-Jul-1996 02:44:25 -0700")\r\n'


def test_utf8_mode_names() -> None:
    resp = g.ListData((), "/", "Entwürfe")
    assert g.serialize(resp) == b'* LIST () "/" Entw&APw-rfe\r\n'
    utf8 = g.serialize(resp, utf8=True)
    assert utf8 == '* LIST () "/" "Entwürfe"\r\n'.encode()
    assert g.parse_response(utf8, utf8=True) == resp


def test_sasl_challenge() -> None:
    wire = g.serialize(g.SaslChallenge(b"challenge"))
    assert wire == b"+ Y2hhbGxlbmdl\r\n"
    assert g.parse_response(wire, sasl=True) == g.SaslChallenge(b"challenge")


def test_invalid_values_are_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        g.TaggedStatus("a", "OK", text="two\r\nlines")
    with pytest.raises(ValueError):
        g.TaggedStatus("a", "MAYBE")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        g.ThreadNode((1,), (g.ThreadNode((2,)),))
    with pytest.raises(ValueError):
        g.FetchData(1, [(F.UID, "x")])
    with pytest.raises(ValueError):
        g.FetchData(1, [(g.BodySection(peek=True), b"")])


def test_response_reader_frames_literals() -> None:
    r = g.ResponseReader()
    r.receive_data(b"* 1 FETCH (BODY[] {12}\r\nA2 OK\r\nx\r\n\r\n)\r\n* 2 EXI")
    first = r.next_response()
    assert isinstance(first, g.FetchData)
    assert first.get(g.BodySection()) == b"A2 OK\r\nx\r\n\r\n"
    assert r.next_response() is g.NEED_DATA
    r.receive_data(b"STS\r\n")
    assert r.next_response() == g.ExistsData(2)


@pytest.mark.parametrize("line", [
    b"", b"*", b"* FOO", b"* 1 FETCH (", b"a1 MAYBE x", b"* OK [UIDNEXT x] y", b"* 1 BOGUS",
    b"* LIST (\\Noselect) / x", b"* THREAD (1)(", b"* 1 FETCH (BODY[] {5}\r\nab)",
])
def test_malformed_responses(line: bytes) -> None:
    with pytest.raises(g.ImapProtocolError):
        g.parse_response(line)


def test_streamed_binary_section_uses_literal8_when_declared() -> None:
    body = g.LiteralBody(3, "src", binary=True)
    chunks = list(g.serialize_chunks(g.FetchData(1, [(g.BodySection(binary=True), body)])))
    assert chunks[0] == b"* 1 FETCH (BINARY[] ~{3}\r\n" and chunks[1] == body
    # A BODY[] section never uses literal8, even if the source says binary.
    chunks = list(g.serialize_chunks(g.FetchData(1, [(g.BodySection(), body)])))
    assert chunks[0] == b"* 1 FETCH (BODY[] {3}\r\n"


def test_response_reader_sasl_mode() -> None:
    r = g.ResponseReader()
    r.sasl = True
    r.receive_data(b"+ aGk=\r\n")
    assert r.next_response() == g.SaslChallenge(b"hi")


@given(tags, st.sampled_from(["NOOP", "FETCH", "UID STORE", "APPEND", "X-VERB"]))
def test_completed_is_the_tagged_ok_it_stands_for(tag: str, verb: str) -> None:
    """The usual tagged OK, made without TaggedStatus's checks, has its bytes (on the
    wire, which sends a Completed's line whole, and through an Encoder)."""
    expected = serialize(g.TaggedStatus(tag, "OK", None, f"{verb} completed"))
    done = Completed(tag, verb)
    assert done.line == expected
    e = Encoder()
    done.encode(e)
    assert e.join() + b"\r\n" == expected
