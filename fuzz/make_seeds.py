"""Write the seed corpus for fuzz_raw.py (RFC-style commands and responses)."""

from __future__ import annotations

from pathlib import Path

SEEDS = [
    b"a1 LOGIN fred {6}\r\nsecret\r\na2 SELECT INBOX (CONDSTORE)\r\n",
    b"a3 UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>) (CHANGEDSINCE 5)\r\n",
    b"a4 UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR (SEEN FROM {3+}\r\nabc) NOT 1:5,*\r\n",
    b'a5 APPEND Drafts (\\Seen) " 7-Feb-1994 21:52:25 -0800" ~{5+}\r\nab\x00cd\r\n',
    b"a6 STORE 2:4 (UNCHANGEDSINCE 9) +FLAGS.SILENT (\\Deleted $Junk)\r\n",
    b'a7 LIST (SUBSCRIBED RECURSIVEMATCH) "" (% "&U,BTFw-/*") RETURN (STATUS (MESSAGES))\r\n',
    b"a8 NOTIFY SET STATUS (selected (MessageNew (UID) MessageExpunge))\r\n",
    b"a9 IDLE\r\nDONE\r\na10 SORT (REVERSE DATE) UTF-8 ALL\r\n",
    b'* 1 FETCH (UID 5 BODY[] {5}\r\nhello ENVELOPE (NIL "s" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n',
    b"* OK [PERMANENTFLAGS (\\Seen \\*)] Limited\r\n",
    b'* LIST (\\HasNoChildren) "/" INBOX ("CHILDINFO" ("SUBSCRIBED"))\r\n',
    b'* 2 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" NIL NIL NIL "7BIT" 3 1)("TEXT" "HTML" NIL NIL'
    b' NIL "7BIT" 3 1) "ALTERNATIVE"))\r\n',
]


def main() -> None:
    """Write one file per seed next to this script."""
    out = Path(__file__).resolve().parent / "seeds"
    out.mkdir(exist_ok=True)
    for i, seed in enumerate(SEEDS):
        (out / f"seed{i:02d}").write_bytes(b"\x61" + seed)  # first byte: control


if __name__ == "__main__":
    main()
