"""RFC examples: FETCH (BINARY, CONDSTORE/QRESYNC), STORE, COPY, MOVE, EXPUNGE."""

from __future__ import annotations

import pytest

import duck.imap.grammar as g

from .helpers import roundtrip

S = g.SequenceSet.parse
F = g.FetchAttr
H = g.SectionText


def test_fetch_rfc3501_examples() -> None:
    cmd = roundtrip(b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])")
    assert cmd == g.Fetch("A654", S("2:4"), (
        F.FLAGS, g.BodySection(text=H.HEADER_FIELDS, fields=("DATE", "FROM"))))
    assert roundtrip(b"A999 UID FETCH 4827313:4828442 FLAGS", canonical=False) == g.Fetch(
        "A999", S("4827313:4828442"), (F.FLAGS,), uid=True)


def test_fetch_macros_expand() -> None:
    fast = g.parse_command(b"a FETCH 1 FAST")
    assert isinstance(fast, g.Fetch) and fast.items == g.MACROS["FAST"]
    full = g.parse_command(b"a FETCH 1 full")
    assert isinstance(full, g.Fetch)
    assert full.items == (F.FLAGS, F.INTERNALDATE, F.RFC822_SIZE, F.ENVELOPE, F.BODY)
    assert g.serialize_command(full) == (
        b"a FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY)\r\n")


def test_fetch_every_item() -> None:
    cmd = roundtrip(
        b"a FETCH 1 (ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT "
        b"BODY BODYSTRUCTURE UID MODSEQ EMAILID THREADID SAVEDATE BODY[] BODY.PEEK[1.2.MIME]<0.10> "
        b"BODY[3.TEXT] BODY[HEADER] BODY[4.2.HEADER.FIELDS.NOT (X-A X-B)] BINARY[] "
        b"BINARY.PEEK[1.1]<5.7> BINARY.SIZE[2] BINARY.SIZE[])")
    assert isinstance(cmd, g.Fetch) and len(cmd.items) == 23
    assert g.BodySection((1, 2), H.MIME, peek=True, partial=(0, 10)) in cmd.items
    assert g.BodySection((1, 1), peek=True, binary=True, partial=(5, 7)) in cmd.items
    assert g.BinarySize((2,)) in cmd.items and g.BinarySize(()) in cmd.items


def test_fetch_condstore_qresync_modifiers() -> None:
    # RFC 7162 §3.1.4.1 and §3.2.6
    cmd = roundtrip(b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)")
    assert isinstance(cmd, g.Fetch) and cmd.changedsince == 12345 and not cmd.vanished
    cmd = roundtrip(b"s101 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)")
    assert isinstance(cmd, g.Fetch) and cmd.vanished
    with pytest.raises(g.ParseError):
        g.parse_command(b"s102 FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)")  # UID only
    with pytest.raises(g.ParseError):
        g.parse_command(b"s103 UID FETCH 1 (FLAGS) (VANISHED)")  # needs CHANGEDSINCE


@pytest.mark.parametrize("line", [
    b"a FETCH 1 ()", b"a FETCH 1 (BODY[0])", b"a FETCH 1 BODY[MIME]", b"a FETCH 1 BODY[1.BOGUS]",
    b"a FETCH 1 BODY[HEADER.FIELDS ()]", b"a FETCH 1 BODY[]<1>", b"a FETCH 1 BODY[]<1.0>",
    b"a FETCH 1 BINARY[TEXT]", b"a FETCH 1 FOO", b"a FETCH 1 (FLAGS", b"a FETCH 0 FLAGS",
    b"a FETCH * ALL extra",
])
def test_fetch_malformed(line: bytes) -> None:
    with pytest.raises(g.ParseError):
        g.parse_command(line)


def test_store_rfc3501_and_condstore() -> None:
    cmd = roundtrip(b"A003 STORE 2:4 +FLAGS (\\Deleted)")
    assert cmd == g.Store("A003", S("2:4"), g.StoreMode.ADD, ("\\Deleted",))
    cmd = roundtrip(b"A004 UID STORE 1 -FLAGS.SILENT (\\seen $Junk)", canonical=False)
    assert cmd == g.Store("A004", S("1"), g.StoreMode.REMOVE, ("\\Seen", "$Junk"), silent=True,
                          uid=True)
    cmd = roundtrip(b"A005 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)")
    assert isinstance(cmd, g.Store) and cmd.unchangedsince == 320162338
    cmd = roundtrip(b"A006 STORE 1 FLAGS \\Seen \\Flagged", canonical=False)  # no parens
    assert isinstance(cmd, g.Store) and cmd.mode is g.StoreMode.REPLACE
    assert cmd.flags == ("\\Seen", "\\Flagged")
    with pytest.raises(g.ParseError):
        g.parse_command(b"A007 STORE 1 +FLAGZ (\\Seen)")


def test_copy_move_expunge() -> None:
    assert roundtrip(b"A003 COPY 2:4 MEETING") == g.Copy("A003", S("2:4"), "MEETING")
    assert roundtrip(b"a UID MOVE 42:69 foo") == g.Move("a", S("42:69"), "foo", uid=True)
    assert roundtrip(b"A202 EXPUNGE") == g.Expunge("A202")
    cmd = roundtrip(b"A003 UID EXPUNGE 3000:3002")  # RFC 4315 §2.1
    assert cmd == g.Expunge("A003", S("3000:3002")) and isinstance(cmd, g.Expunge) and cmd.uid
    with pytest.raises(g.ParseError):
        g.parse_command(b"A004 EXPUNGE 1:2")


def test_flags_checked_once_are_still_checked_and_spelt_canonically() -> None:
    # to_flags remembers the flags it has checked (cmd_base._FLAGS): a remembered
    # flag keeps its canonical spelling, and a bad one is refused every time.
    from duck.imap.grammar import cmd_base

    for _ in range(2):
        assert cmd_base.to_flags(["\\seen", "$Label1", "\\DELETED"]) == (
            "\\Seen", "$Label1", "\\Deleted")
        for bad in ("two words", "paren(", "\\", "", "caf\u00e9"):
            with pytest.raises(ValueError):
                cmd_base.to_flags(["\\Seen", bad])
    assert "two words" not in cmd_base._FLAGS
    # Bounded: past its size it starts over.
    for i in range(cmd_base._FLAGS_MAX + 10):
        cmd_base.to_flags([f"kw{i}"])
    assert 0 < len(cmd_base._FLAGS) <= cmd_base._FLAGS_MAX
