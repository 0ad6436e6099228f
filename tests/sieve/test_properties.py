"""Properties: any text compiles or fails with a SieveError; any valid script run on
any message returns actions and never loses the message unless told to."""

from __future__ import annotations

import trio
from hypothesis import given
from hypothesis import strategies as st

from duck.sieve import (
    Discard,
    FileInto,
    Keep,
    Message,
    NoHooks,
    Redirect,
    Reject,
    SieveError,
    compile_script,
    run,
)

REQUIRE = ('require ["fileinto", "reject", "envelope", "imap4flags", "body", "variables", '
           '"relational", "subaddress", "date", "index", "vacation", "copy", "mailbox", '
           '"duplicate", "comparator-i;ascii-numeric", "include"];\n')

words = st.sampled_from(["a", "List", "*", "?x*", "${1}", "${v}", "\\\\Seen", "x@y.org",
                         "", "5", "10", "INBOX", "Work/Sub", "ge", "spam"])
strings = words.map(lambda w: '"' + w.replace('"', "") + '"')
string_lists = st.one_of(strings, st.lists(strings, min_size=1, max_size=3).map(
    lambda xs: "[" + ", ".join(xs) + "]"))
match = st.sampled_from(["", ":is", ":contains", ":matches", ':value "ge"', ':count "lt"'])
comparator = st.sampled_from(["", ':comparator "i;octet"', ':comparator "i;ascii-numeric"'])


@st.composite
def sieve_tests(draw: st.DrawFn, depth: int = 0) -> str:
    kinds = ["header", "address", "envelope", "exists", "size", "true", "body", "string",
             "date", "hasflag", "mailboxexists", "duplicate"]
    if depth < 2:
        kinds += ["not", "allof", "anyof"]
    kind = draw(st.sampled_from(kinds))
    m = draw(match)
    c = draw(comparator) if m in ("", ":is", ':value "ge"', ':count "lt"') else ""
    if kind in ("not",):
        return "not " + draw(sieve_tests(depth + 1))
    if kind in ("allof", "anyof"):
        subs = draw(st.lists(sieve_tests(depth + 1), min_size=1, max_size=3))
        return f"{kind} ({', '.join(subs)})"
    if kind == "header":
        return f"header {m} {c} {draw(string_lists)} {draw(string_lists)}"
    if kind == "address":
        part = draw(st.sampled_from(["", ":localpart", ":domain", ":user", ":detail"]))
        return f"address {part} {m} {c} {draw(string_lists)} {draw(string_lists)}"
    if kind == "envelope":
        return f'envelope {m} {c} ["from", "to"] {draw(string_lists)}'
    if kind == "exists":
        return f"exists {draw(string_lists)}"
    if kind == "size":
        return f"size {draw(st.sampled_from([':over', ':under']))} {draw(st.integers(0, 9))}K"
    if kind == "body":
        return f"body {m} {c} {draw(string_lists)}"
    if kind == "string":
        return f"string {m} {c} {draw(string_lists)} {draw(string_lists)}"
    if kind == "date":
        return f'date {m} {c} "date" "year" {draw(string_lists)}'
    if kind == "hasflag":
        return f"hasflag {m} {c} {draw(string_lists)}"
    if kind == "mailboxexists":
        return f"mailboxexists {draw(string_lists)}"
    if kind == "duplicate":
        return "duplicate"
    return "true"


@st.composite
def commands(draw: st.DrawFn, depth: int = 0) -> str:
    kinds = ["keep", "discard", "fileinto", "redirect", "reject", "stop", "setflag",
             "addflag", "set", "vacation"]
    if depth < 2:
        kinds += ["if"]
    kind = draw(st.sampled_from(kinds))
    if kind == "if":
        body = " ".join(draw(st.lists(commands(depth + 1), max_size=3)))
        text = f"if {draw(sieve_tests())} {{ {body} }}"
        if draw(st.booleans()):
            text += f" else {{ {' '.join(draw(st.lists(commands(depth + 1), max_size=2)))} }}"
        return text
    if kind == "fileinto":
        opts = draw(st.sampled_from(["", ":copy", ":create", ':flags "\\\\Flagged"']))
        return f"fileinto {opts} {draw(strings)};"
    if kind == "redirect":
        return f"redirect {draw(st.sampled_from(['', ':copy']))} {draw(strings)};"
    if kind == "reject":
        return f"reject {draw(strings)};"
    if kind in ("setflag", "addflag"):
        return f"{kind} {draw(string_lists)};"
    if kind == "set":
        return f'set "v" {draw(strings)};'
    if kind == "vacation":
        return f"vacation :days {draw(st.integers(0, 100))} {draw(strings)};"
    return f"{kind};"


header_names = st.sampled_from(["From", "To", "Cc", "Subject", "List", "Date", "Message-ID", "a"])
header_values = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=40)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    fields = draw(st.lists(st.tuples(header_names, header_values), max_size=6))
    head = "".join(f"{n}: {v}\r\n" for n, v in fields)
    body = draw(st.text(max_size=200))
    data = (head + "\r\n" + body).encode("utf-8", "surrogatepass")
    return Message.from_bytes(data, envelope_from=draw(st.sampled_from(["", "a+b@c.org"])),
                              envelope_to="me+x@example.com", with_body=True)


@given(st.text(max_size=300))
def test_any_text_compiles_or_fails_cleanly(text: str) -> None:
    try:
        compile_script(text)
    except SieveError as exc:
        assert str(exc)


@given(st.lists(commands(), max_size=6), messages())
def test_running_never_fails_and_never_loses_the_message(body: list[str], msg: Message) -> None:
    script = compile_script(REQUIRE + "\n".join(body))
    result = trio.run(run, script, msg, NoHooks(mailboxes=["INBOX", "Work/Sub"]))
    stored = [a for a in result.actions if isinstance(a, Keep | FileInto)]
    explicit = [a for a in result.actions if isinstance(a, Discard | Reject | Redirect)]
    # Not stored anywhere only when the script said to discard, reject or redirect.
    assert stored or explicit
    if result.error is not None:
        assert result.actions == (Keep(implicit=True),)
