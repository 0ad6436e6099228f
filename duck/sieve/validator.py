"""From parsed commands to checked ones: known names, right arguments, ``require``d
extensions (RFC 5228 sections 2.10.5, 3.2, 8.3), ``encoded-character`` applied.

The result (``Script``) is what the interpreter runs: tags sorted out into a
dict, positional arguments in order, ``if``/``elsif``/``else`` chained.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from .errors import SieveValidationError
from .nodes import Argument, Command, Number, StringList, Tag, Test
from .spec import COMMANDS, COMPARATORS, DATE_PARTS, EXTENSIONS, RELATIONS, TESTS, Spec

#: Variable names (RFC 5229 section 3): identifier, or a namespace-qualified one.
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


@attrs.frozen
class CheckedTest:
    """A validated test."""

    name: str
    tags: dict[str, Any]
    args: tuple[Any, ...]
    tests: tuple[CheckedTest, ...]
    line: int


@attrs.frozen
class CheckedCommand:
    """A validated command; ``branches`` holds an ``if`` chain's (test or None, block)."""

    name: str
    tags: dict[str, Any]
    args: tuple[Any, ...]
    block: tuple[CheckedCommand, ...]
    line: int
    branches: tuple[tuple[CheckedTest | None, tuple[CheckedCommand, ...]], ...] = ()


@attrs.frozen
class Script:
    """A checked script: its capabilities and commands."""

    requires: frozenset[str]
    commands: tuple[CheckedCommand, ...]
    #: True when the script uses the body test (the caller must supply body parts).
    uses_body: bool = False
    #: Every command and test name the script uses.
    used: frozenset[str] = frozenset()

    @property
    def needs_message(self) -> bool:
        """True when running may need the whole message, not only its header: a
        body test, a redirect, or an include that may bring either."""
        return self.uses_body or bool(self.used & {"redirect", "include"})


def validate(commands: tuple[Command, ...]) -> Script:
    """Check parsed commands; SieveValidationError (with a line number) when wrong."""
    checker = _Checker()
    checked = checker.block(commands, top=True)
    return Script(frozenset(checker.requires), checked, checker.uses_body,
                  frozenset(checker.used))


class _Checker:
    def __init__(self) -> None:
        self.requires: set[str] = set()
        self.uses_body = False
        self.used: set[str] = set()

    def need(self, extension: str | None, what: str, line: int) -> None:
        if extension is not None and extension not in self.requires:
            raise SieveValidationError(
                f"{what} needs require \"{extension}\"", line)

    def block(self, commands: tuple[Command, ...], top: bool = False
              ) -> tuple[CheckedCommand, ...]:
        out: list[CheckedCommand] = []
        chain: list[tuple[CheckedTest | None, tuple[CheckedCommand, ...]]] | None = None
        chain_line = 0
        seen_other = False
        for command in commands:
            name = command.name
            self.used.add(name)
            if name == "require":
                if not top or seen_other:
                    raise SieveValidationError(
                        "require must come before any other command", command.line)
                self.require(command)
                continue
            seen_other = True
            if name in ("elsif", "else"):
                if chain is None:
                    raise SieveValidationError(f"{name} without a preceding if", command.line)
                chain_spec = COMMANDS[name]
                tags, args, tests = self.arguments(command.name, chain_spec, command.arguments,
                                                   command.tests, command.test_list,
                                                   command.line)
                block = self.command_block(command, chain_spec)
                chain.append((tests[0] if tests else None, block))
                if name == "else":
                    out.append(CheckedCommand("if", {}, (), (), chain_line, tuple(chain)))
                    chain = None
                continue
            if chain is not None:
                out.append(CheckedCommand("if", {}, (), (), chain_line, tuple(chain)))
                chain = None
            spec = COMMANDS.get(name)
            if spec is None:
                raise SieveValidationError(f"unknown command {name!r}", command.line)
            self.need(spec.extension, f"command {name!r}", command.line)
            tags, args, tests = self.arguments(name, spec, command.arguments, command.tests,
                                               command.test_list, command.line)
            block = self.command_block(command, spec)
            if name == "if":
                chain = [(tests[0], block)]
                chain_line = command.line
                continue
            self.check_values(name, tags, args, command.line)
            out.append(CheckedCommand(name, tags, args, block, command.line))
        if chain is not None:
            out.append(CheckedCommand("if", {}, (), (), chain_line, tuple(chain)))
        return tuple(out)

    def command_block(self, command: Command, spec: Spec) -> tuple[CheckedCommand, ...]:
        if spec.block and command.block is None:
            raise SieveValidationError(f"{command.name} needs a {{ block }}", command.line)
        if not spec.block and command.block is not None:
            raise SieveValidationError(f"{command.name} takes no block", command.line)
        return self.block(command.block) if command.block is not None else ()

    def require(self, command: Command) -> None:
        if command.tests or command.block is not None:
            raise SieveValidationError("require takes a string list only", command.line)
        if len(command.arguments) != 1 or not isinstance(command.arguments[0], StringList):
            raise SieveValidationError("require takes one string list", command.line)
        for name in command.arguments[0].values:
            if name not in EXTENSIONS:
                raise SieveValidationError(f"unsupported extension {name!r}", command.line)
            self.requires.add(name)

    def arguments(self, name: str, spec: Spec, arguments: tuple[Argument, ...],
                  tests: tuple[Test, ...], test_list: bool, line: int
                  ) -> tuple[dict[str, Any], tuple[Any, ...], tuple[CheckedTest, ...]]:
        tags: dict[str, Any] = {}
        groups: set[str] = set()
        positional: list[Number | StringList] = []
        items = list(arguments)
        i = 0
        while i < len(items):
            arg = items[i]
            i += 1
            if isinstance(arg, Tag):
                if positional:
                    raise SieveValidationError(
                        f"tag :{arg.name} after a positional argument of {name}", arg.line)
                tag = spec.tags.get(arg.name)
                if tag is None:
                    raise SieveValidationError(f"{name} has no tag :{arg.name}", arg.line)
                self.need(tag.extension, f":{arg.name}", arg.line)
                if tag.group in groups:
                    raise SieveValidationError(
                        f"{name}: :{arg.name} conflicts with another tag", arg.line)
                groups.add(tag.group)
                value: Any = True
                if tag.takes is not None:
                    if i >= len(items):
                        raise SieveValidationError(f":{arg.name} needs a value", arg.line)
                    value = self.value(items[i], tag.takes, f":{arg.name}")
                    i += 1
                tags[arg.name] = value
            else:
                positional.append(arg)
        wanted = spec.positional
        if len(positional) < len(wanted) - spec.optional_leading or len(positional) > len(wanted):
            raise SieveValidationError(
                f"{name} takes {len(wanted)} positional argument(s), not {len(positional)}",
                line)
        kinds = wanted[len(wanted) - len(positional):]
        args = tuple(self.value(a, kind, name) for a, kind in zip(positional, kinds, strict=True))
        if len(positional) < len(wanted):
            args = (None,) * (len(wanted) - len(positional)) + args
        checked_tests = tuple(self.test(t) for t in tests)
        if spec.tests == "none" and tests:
            raise SieveValidationError(f"{name} takes no test", line)
        if spec.tests == "one" and (len(tests) != 1 or test_list):
            raise SieveValidationError(f"{name} needs exactly one test", line)
        if spec.tests == "list" and not test_list:
            raise SieveValidationError(f"{name} needs a test list in ( )", line)
        return tags, args, checked_tests

    def value(self, arg: Argument, kind: str, what: str) -> Any:
        if kind == "number":
            if not isinstance(arg, Number):
                raise SieveValidationError(f"{what} needs a number", arg.line)
            return arg.value
        if not isinstance(arg, StringList):
            raise SieveValidationError(f"{what} needs a string", arg.line)
        values = arg.values
        if "encoded-character" in self.requires:
            values = tuple(decode_encoded(v, arg.line) for v in values)
        if kind == "string":
            if not arg.single and len(values) != 1:
                raise SieveValidationError(f"{what} needs a single string", arg.line)
            return values[0]
        return values

    def test(self, test: Test) -> CheckedTest:
        spec = TESTS.get(test.name)
        if spec is None:
            raise SieveValidationError(f"unknown test {test.name!r}", test.line)
        self.need(spec.extension, f"test {test.name!r}", test.line)
        if test.name == "body":
            self.uses_body = True
        self.used.add(test.name)
        tags, args, tests = self.arguments(test.name, spec, test.arguments, test.tests,
                                           test.test_list, test.line)
        self.check_values(test.name, tags, args, test.line)
        return CheckedTest(test.name, tags, args, tests, test.line)

    def check_values(self, name: str, tags: dict[str, Any], args: tuple[Any, ...],
                     line: int) -> None:
        comparator = tags.get("comparator")
        if comparator is not None:
            if comparator not in COMPARATORS:
                raise SieveValidationError(f"unknown comparator {comparator!r}", line)
            self.need(COMPARATORS[comparator], f"comparator {comparator!r}", line)
            if comparator == "i;ascii-numeric" and ("contains" in tags or "matches" in tags):
                raise SieveValidationError(
                    "i;ascii-numeric cannot be used with :contains or :matches", line)
        for relational in ("value", "count"):
            if relational in tags and tags[relational].lower() not in RELATIONS:
                raise SieveValidationError(
                    f"bad relational operator {tags[relational]!r}", line)
        if "last" in tags and "index" not in tags and name != "duplicate":
            raise SieveValidationError(":last needs :index", line)
        if "index" in tags and tags["index"] < 1:
            raise SieveValidationError(":index counts from 1", line)
        if name in ("date", "currentdate"):
            part = args[-2]
            if "${" not in part and part.lower() not in DATE_PARTS:
                raise SieveValidationError(f"unknown date part {part!r}", line)
            zone = tags.get("zone")
            if isinstance(zone, str) and "${" not in zone and not _ZONE.match(zone):
                raise SieveValidationError(f"bad time zone {zone!r}", line)
        if name == "set" and not _VARIABLE_NAME.match(args[0]):
            raise SieveValidationError(f"bad variable name {args[0]!r}", line)
        if (name in ("setflag", "addflag", "removeflag") and args[0] is not None
                and not _VARIABLE_NAME.match(args[0])):
            raise SieveValidationError(f"bad variable name {args[0]!r}", line)
        if name == "hasflag" and args[0] is not None:
            for variable in args[0]:
                if not _VARIABLE_NAME.match(variable):
                    raise SieveValidationError(f"bad variable name {variable!r}", line)
        if name == "global":
            if "variables" not in self.requires:
                raise SieveValidationError('global needs require "variables"', line)
            for variable in args[0]:
                if not _VARIABLE_NAME.match(variable):
                    raise SieveValidationError(f"bad variable name {variable!r}", line)
        if name == "include" and ("/" in args[0] or not args[0] or "${" in args[0]):
            raise SieveValidationError(f"bad script name {args[0]!r}", line)


_ZONE = re.compile(r"[+-][0-9]{4}\Z")
_ENCODED = re.compile(r"\$\{(hex|unicode):([^}]*)\}", re.IGNORECASE)
_HEX_ITEMS = re.compile(r"[ \t\r\n]*([0-9A-Fa-f]+)")


def decode_encoded(value: str, line: int) -> str:
    """Apply ``${hex:..}`` and ``${unicode:..}`` (RFC 5228 section 2.4.2.4). A
    malformed sequence stays as written, as the RFC says; a bad code point
    (surrogate, > 10FFFF) is an error."""

    def replace(match: re.Match[str]) -> str:
        body = match.group(2)
        if not re.fullmatch(r"[ \t\r\n]*([0-9A-Fa-f]+[ \t\r\n]*)*", body):
            return match.group(0)
        items = [int(h, 16) for h in _HEX_ITEMS.findall(body)]
        if match.group(1).lower() == "hex":
            if any(v > 0xFF for v in items):
                return match.group(0)
            return bytes(items).decode("utf-8", errors="replace")
        for v in items:
            if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
                raise SieveValidationError(f"invalid unicode character U+{v:X}", line)
        return "".join(chr(v) for v in items)

    return _ENCODED.sub(replace, value)
