"""Sieve grammar (RFC 5228 section 8.2): tokens to commands and tests.

Errors say what was expected and on which line. Nesting depth is capped so a
hostile script cannot exhaust the stack.
"""

from __future__ import annotations

from .errors import SieveSyntaxError
from .lexer import Kind, Token, tokenize
from .nodes import Argument, Command, Number, StringList, Tag, Test

#: Deepest nesting of blocks and tests.
MAX_NESTING = 32
#: Most strings in one string list.
MAX_LIST = 1024


def parse(text: str) -> tuple[Command, ...]:
    """Parse a whole script; SieveSyntaxError (with a line number) if it is not Sieve."""
    return _Parser(tokenize(text)).script()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind is not Kind.END:
            self.pos += 1
        return token

    def is_punct(self, ch: str) -> bool:
        token = self.peek()
        return token.kind is Kind.PUNCT and token.value == ch

    def expect(self, ch: str, what: str) -> Token:
        token = self.take()
        if token.kind is not Kind.PUNCT or token.value != ch:
            raise SieveSyntaxError(f"expected {what}, found {_describe(token)}", token.line)
        return token

    def nest(self, line: int) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise SieveSyntaxError("nesting too deep", line)

    def script(self) -> tuple[Command, ...]:
        commands = self.commands()
        token = self.peek()
        if token.kind is not Kind.END:
            raise SieveSyntaxError(f"expected a command, found {_describe(token)}", token.line)
        return commands

    def commands(self) -> tuple[Command, ...]:
        out: list[Command] = []
        while self.peek().kind is Kind.IDENTIFIER:
            out.append(self.command())
        return tuple(out)

    def command(self) -> Command:
        name = self.take()
        arguments = self.arguments()
        tests, test_list = self.tests(name.line)
        if self.is_punct(";"):
            self.take()
            return Command(name.value, arguments, tests, None, name.line, test_list)
        if self.is_punct("{"):
            self.take()
            self.nest(name.line)
            block = self.commands()
            self.depth -= 1
            self.expect("}", "a command or '}'")
            return Command(name.value, arguments, tests, block, name.line, test_list)
        token = self.peek()
        raise SieveSyntaxError(
            f"expected ';' or '{{' after {name.value!r}, found {_describe(token)}", token.line)

    def arguments(self) -> tuple[Argument, ...]:
        out: list[Argument] = []
        while True:
            token = self.peek()
            if token.kind is Kind.TAG:
                self.take()
                out.append(Tag(token.value, token.line))
            elif token.kind is Kind.NUMBER:
                self.take()
                out.append(Number(token.number, token.line))
            elif token.kind is Kind.STRING:
                self.take()
                out.append(StringList((token.value,), True, token.line))
            elif self.is_punct("["):
                out.append(self.string_list())
            else:
                return tuple(out)

    def string_list(self) -> StringList:
        start = self.take()
        values: list[str] = []
        while True:
            token = self.take()
            if token.kind is not Kind.STRING:
                raise SieveSyntaxError(
                    f"expected a string in the list, found {_describe(token)}", token.line)
            values.append(token.value)
            if len(values) > MAX_LIST:
                raise SieveSyntaxError("string list too long", token.line)
            if self.is_punct(","):
                self.take()
                continue
            self.expect("]", "',' or ']' in the string list")
            return StringList(tuple(values), False, start.line)

    def tests(self, line: int) -> tuple[tuple[Test, ...], bool]:
        token = self.peek()
        if token.kind is Kind.IDENTIFIER:
            return (self.test(),), False
        if self.is_punct("("):
            return self.test_list(), True
        return (), False

    def test(self) -> Test:
        name = self.take()
        if name.kind is not Kind.IDENTIFIER:
            raise SieveSyntaxError(f"expected a test, found {_describe(name)}", name.line)
        self.nest(name.line)
        arguments = self.arguments()
        tests, test_list = self.tests(name.line)
        self.depth -= 1
        return Test(name.value, arguments, tests, name.line, test_list)

    def test_list(self) -> tuple[Test, ...]:
        self.take()
        out = [self.test()]
        while self.is_punct(","):
            self.take()
            out.append(self.test())
        self.expect(")", "',' or ')' in the test list")
        return tuple(out)


def _describe(token: Token) -> str:
    if token.kind is Kind.END:
        return "the end of the script"
    if token.kind is Kind.STRING:
        return "a string"
    if token.kind is Kind.TAG:
        return f"':{token.value}'"
    return repr(token.value)
