"""Lexer, parser and validator: what they accept, and the line numbers of what not."""

from __future__ import annotations

import pytest

from duck.sieve import (
    SieveSyntaxError,
    SieveValidationError,
    compile_script,
    parse,
)
from duck.sieve.nodes import Number, StringList, Tag


def test_tokens_and_structure() -> None:
    commands = parse('require ["fileinto"];\nIF Header :IS "x" "y" { FileInto "a"; }\n')
    assert [c.name for c in commands] == ["require", "if"]
    test = commands[1].tests[0]
    assert test.name == "header"
    assert test.arguments[0] == Tag("is", 2)
    assert commands[1].block is not None and commands[1].block[0].name == "fileinto"


def test_numbers_with_quantifiers() -> None:
    (command,) = parse("x 1K 2M 3G 7;")
    assert [a.value for a in command.arguments if isinstance(a, Number)] == [
        1024, 2 * 1024 * 1024, 3 * 1024 ** 3, 7]


def test_strings_escapes_and_multiline() -> None:
    (command,) = parse('x "a\\"b\\\\c\\d" text: # comment\n line\n..dot\n.\n;')
    strings = [a for a in command.arguments if isinstance(a, StringList)]
    assert strings[0].values == ('a"b\\cd',)
    assert strings[1].values == (" line\r\n.dot\r\n",)


def test_comments_are_skipped_and_lines_counted() -> None:
    with pytest.raises(SieveSyntaxError) as info:
        parse("# one\n/* two\nthree */\nkeep\n")
    assert info.value.line == 5  # the end of the script, where ';' was expected


@pytest.mark.parametrize(("script", "line", "words"), [
    ('keep;\nif true {\n  keep;\n', 4, "'}'"),
    ('keep;\n\n"x";', 3, "'\"'"),
    ('if header :is "a" "b"\nkeep;', 2, "unknown test 'keep'"),
    ('keep;\nfileinto "a" "b";', 2, "require"),
    ('require "fileinto";\nfileinto "a" "b";', 2, "positional"),
    ('keep;\nfrobnicate;', 2, "unknown command"),
    ('if frob { keep; }', 1, "unknown test"),
    ('keep;\nrequire "fileinto";', 2, "before any other"),
    ('require "nonsense";', 1, "unsupported extension"),
    ('if header :is :contains "a" "b" { keep; }', 1, "conflicts"),
    ('if header :comparator "i;nope" "a" "b" { keep; }', 1, "unknown comparator"),
    ('else { keep; }', 1, "without a preceding if"),
    ('if true;', 1, "needs a { block }"),
    ('keep :copy;', 1, "no tag"),
    ('"unterminated', 1, "unterminated"),
    ('x text:\nno end\n', 1, "'.' line"),
    ('require "copy";\nredirect :copy;', 2, "positional"),
    ('if size :over "x" { keep; }', 1, "number"),
    ('require "relational";\nif header :value "xx" "a" "b" { keep; }', 2, "relational operator"),
])
def test_errors_name_their_line(script: str, line: int, words: str) -> None:
    with pytest.raises((SieveSyntaxError, SieveValidationError)) as info:
        compile_script(script)
    assert info.value.line == line, str(info.value)
    if words != "'\"'":
        assert words in str(info.value)


def test_nesting_is_capped() -> None:
    deep = "if true {" * 100 + "keep;" + "}" * 100
    with pytest.raises(SieveSyntaxError, match="nesting"):
        parse(deep)


def test_script_size_is_capped() -> None:
    with pytest.raises(SieveSyntaxError, match="larger"):
        compile_script("#" + "x" * 70000 + "\nkeep;")


def test_encoded_character() -> None:
    # RFC 5228 section 2.4.2.4's examples.
    script = compile_script(
        'require ["encoded-character", "fileinto"];\n'
        'fileinto "$${hex:24 24}";\n'
        'fileinto "${hex:40}${unicode: 40 }${hex:zz}";\n')
    assert script.commands[0].args[0] == "$$$"
    assert script.commands[1].args[0] == "@@${hex:zz}"


def test_encoded_character_needs_require() -> None:
    script = compile_script('require "fileinto"; fileinto "${hex:40}";')
    assert script.commands[0].args[0] == "${hex:40}"
