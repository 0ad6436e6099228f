"""Running a checked script against a message (RFC 5228 and its extensions).

The interpreter collects actions and carries none out: the caller does, once the
run is over, so a runtime error simply means "keep" (RFC 5228 section 2.10.6)
and nothing half-done. Every run is bounded: steps, wall-clock time, actions,
redirects, variables and include depth (``Limits``).
"""

from __future__ import annotations

import re
import time
from typing import Any

import attrs

from . import matching, parts
from .actions import Action, Discard, FileInto, Keep, Outcome, Redirect, Reject, Vacation
from .errors import SieveError, SieveLimitExceeded, SieveRuntimeError
from .message import Hooks, Message
from .parser import parse
from .validator import CheckedCommand, CheckedTest, Script, validate
from .variables import Variables, apply_modifiers

#: Headers the address test reads addresses from; others compare the raw value
#: split as if it were one (RFC 5228 section 5.1 lets an implementation choose).
SYSTEM_FLAGS = {"\\seen": "\\Seen", "\\answered": "\\Answered", "\\flagged": "\\Flagged",
                "\\deleted": "\\Deleted", "\\draft": "\\Draft"}
_ATOM_SPECIALS = set('(){ %*"\\]') | {chr(c) for c in range(0x20)} | {"\x7f"}
_ADDRESS = re.compile(r"[^\s@<>()\[\],;:\"]+@[A-Za-z0-9.-]+\Z")


@attrs.frozen
class Limits:
    """Caps on one run."""

    max_steps: int = 20000
    max_seconds: float = 2.0
    max_actions: int = 32
    max_redirects: int = 4
    max_include_depth: int = 5
    max_includes: int = 16
    #: Default and cap of vacation's period, in seconds (RFC 5230 section 4.1 lets
    #: a site choose; 1 day is the least :days allows).
    vacation_default: int = 7 * 86400
    vacation_min: int = 86400
    vacation_max: int = 90 * 86400
    #: Default and cap of the duplicate test's period (RFC 7352 section 3.4).
    duplicate_default: int = 7 * 86400
    duplicate_max: int = 90 * 86400


class _Stop(Exception):
    """``stop``: end the whole run."""


class _Return(Exception):
    """``return``: end the current included script."""


@attrs.define
class _State:
    message: Message
    hooks: Hooks
    limits: Limits
    deadline: float
    steps: int = 0
    actions: list[Action] = attrs.field(factory=list)
    implicit_keep: bool = True
    flags: list[str] = attrs.field(factory=list)
    globals: dict[str, str] = attrs.field(factory=dict)
    included: set[tuple[str, str]] = attrs.field(factory=set)
    stack: list[tuple[str, str]] = attrs.field(factory=list)
    includes: int = 0


async def run(script: Script, message: Message, hooks: Hooks,
              limits: Limits | None = None, name: str = "") -> Outcome:
    """Run ``script`` against ``message``: the actions to carry out. Never raises a
    SieveError: a failure becomes a plain keep with ``Outcome.error`` set."""
    limits = limits or Limits()
    state = _State(message, hooks, limits, time.monotonic() + limits.max_seconds)
    state.stack.append(("personal", name))
    try:
        try:
            await _Frame(state, script).block(script.commands)
        except (_Stop, _Return):
            pass
        return Outcome(_finish(state))
    except SieveError as exc:
        return Outcome((Keep(implicit=True),), exc)


def _finish(state: _State) -> tuple[Action, ...]:
    actions = list(state.actions)
    if state.implicit_keep:
        actions.append(Keep(tuple(state.flags), implicit=True))
    # One copy per mailbox (RFC 5228 section 2.10.3); keep is fileinto INBOX. The
    # flags of every request for the same mailbox are merged.
    out: list[Action] = []
    stored: dict[str, int] = {}
    redirected: set[str] = set()
    for action in actions:
        if isinstance(action, Keep | FileInto):
            box = "INBOX" if isinstance(action, Keep) else _mailbox_key(action.mailbox)
            if box in stored:
                i = stored[box]
                prior = out[i]
                assert isinstance(prior, Keep | FileInto)
                merged = _merge_flags(prior.flags, action.flags)
                if isinstance(prior, FileInto):
                    create = prior.create or (isinstance(action, FileInto) and action.create)
                    out[i] = FileInto(prior.mailbox, merged, create)
                else:
                    out[i] = Keep(merged, prior.implicit)
                continue
            stored[box] = len(out)
        elif isinstance(action, Redirect):
            if action.address.lower() in redirected:
                continue
            redirected.add(action.address.lower())
        out.append(action)
    return tuple(out)


def _mailbox_key(name: str) -> str:
    return "INBOX" if name.upper() == "INBOX" else name


def _merge_flags(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    seen = {f.lower() for f in a}
    return a + tuple(f for f in b if f.lower() not in seen)


def normalize_flags(values: list[str] | tuple[str, ...]) -> list[str]:
    """Flag strings (space-separated lists allowed) to distinct valid IMAP flags;
    invalid ones are dropped (RFC 5232 section 3)."""
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        for flag in value.split():
            if flag.startswith("\\"):
                flag = SYSTEM_FLAGS.get(flag.lower(), "")
            elif any(ch in _ATOM_SPECIALS for ch in flag):
                flag = ""
            if flag and flag.lower() not in seen:
                seen.add(flag.lower())
                out.append(flag)
    return out


class _Frame:
    """One script's execution (the top one or an included one)."""

    def __init__(self, state: _State, script: Script,
                 declared_globals: set[str] | None = None) -> None:
        self.state = state
        self.script = script
        self.variables = Variables(state.globals, declared_globals or set())
        self.uses_variables = "variables" in script.requires

    # -- bookkeeping -------------------------------------------------------

    def step(self, line: int) -> None:
        state = self.state
        state.steps += 1
        if state.steps > state.limits.max_steps:
            raise SieveLimitExceeded("the script ran too many steps", line)
        if state.steps % 64 == 0 and time.monotonic() > state.deadline:
            raise SieveLimitExceeded("the script ran too long", line)

    def add(self, action: Action, line: int) -> None:
        state = self.state
        if len(state.actions) >= state.limits.max_actions:
            raise SieveLimitExceeded("too many actions", line)
        for prior in state.actions:
            if isinstance(prior, Reject) and not isinstance(action, Discard | Reject):
                raise SieveRuntimeError("reject cannot be combined with other actions", line)
            if isinstance(action, Reject) and isinstance(prior, Reject):
                raise SieveRuntimeError("only one reject per message", line)
            if isinstance(action, Reject) and isinstance(prior, Keep | FileInto | Redirect
                                                          | Vacation):
                raise SieveRuntimeError("reject cannot be combined with other actions", line)
            if isinstance(action, Vacation) and isinstance(prior, Vacation):
                raise SieveRuntimeError("only one vacation per message", line)
        state.actions.append(action)

    def expand(self, value: str) -> str:
        if not self.uses_variables:
            return value
        return self.variables.expand(value)

    def expand_all(self, values: tuple[str, ...]) -> list[str]:
        return [self.expand(v) for v in values]

    # -- commands ----------------------------------------------------------

    async def block(self, commands: tuple[CheckedCommand, ...]) -> None:
        for command in commands:
            await self.command(command)

    async def command(self, c: CheckedCommand) -> None:
        self.step(c.line)
        state = self.state
        name = c.name
        if name == "if":
            for test, block in c.branches:
                if test is None or await self.test(test):
                    await self.block(block)
                    return
            return
        if name == "stop":
            raise _Stop
        if name == "return":
            raise _Return
        if name == "keep":
            state.implicit_keep = False
            self.add(Keep(self.flags_of(c)), c.line)
        elif name == "discard":
            state.implicit_keep = False
            self.add(Discard(), c.line)
        elif name == "fileinto":
            mailbox = self.expand(c.args[0])
            if not mailbox or len(mailbox) > 1000 or any(ord(ch) < 0x20 for ch in mailbox):
                raise SieveRuntimeError(f"bad mailbox name {mailbox[:80]!r}", c.line)
            if not c.tags.get("copy"):
                state.implicit_keep = False
            self.add(FileInto(mailbox, self.flags_of(c), bool(c.tags.get("create"))), c.line)
        elif name == "redirect":
            address = self.expand(c.args[0]).strip()
            if address.startswith("<") and address.endswith(">"):
                address = address[1:-1]
            if not _ADDRESS.match(address):
                raise SieveRuntimeError(f"bad redirect address {address[:80]!r}", c.line)
            redirects = sum(1 for a in state.actions if isinstance(a, Redirect))
            if redirects >= state.limits.max_redirects:
                raise SieveLimitExceeded("too many redirects", c.line)
            if not c.tags.get("copy"):
                state.implicit_keep = False
            self.add(Redirect(address), c.line)
        elif name in ("reject", "ereject"):
            state.implicit_keep = False
            self.add(Reject(self.expand(c.args[0]), name == "ereject"), c.line)
        elif name == "vacation":
            self.add(self.vacation(c), c.line)
        elif name in ("setflag", "addflag", "removeflag"):
            self.flag_command(c)
        elif name == "set":
            value = apply_modifiers(self.expand(c.args[1]), c.tags)
            self.variables.set(c.args[0], value, c.line)
        elif name == "global":
            for variable in c.args[0]:
                self.variables.declare_global(variable)
        elif name == "include":
            await self.include(c)
        else:  # the validator lets nothing else through
            raise SieveRuntimeError(f"unknown command {name!r}", c.line)

    def flags_of(self, c: CheckedCommand) -> tuple[str, ...]:
        if "flags" in c.tags:
            return tuple(normalize_flags(self.expand_all(c.tags["flags"])))
        return tuple(self.state.flags)

    def flag_command(self, c: CheckedCommand) -> None:
        variable, values = c.args
        given = normalize_flags(self.expand_all(values))
        current = (self.state.flags if variable is None
                   else normalize_flags([self.variables.get(variable)]))
        if c.name == "setflag":
            new = given
        elif c.name == "addflag":
            new = normalize_flags(current + given)
        else:
            drop = {f.lower() for f in given}
            new = [f for f in current if f.lower() not in drop]
        if variable is None:
            self.state.flags = new
        else:
            self.variables.set(variable, " ".join(new), c.line)

    def vacation(self, c: CheckedCommand) -> Vacation:
        limits = self.state.limits
        if "seconds" in c.tags:
            # RFC 6131: 0 means "reply every time"; the cap still applies above.
            period = min(int(c.tags["seconds"]), limits.vacation_max)
        elif "days" in c.tags:
            period = int(c.tags["days"]) * 86400
            period = max(limits.vacation_min, min(period, limits.vacation_max))
        else:
            period = limits.vacation_default
        reason = self.expand(c.args[0])
        subject = self.expand(c.tags["subject"]) if "subject" in c.tags else None
        sender = self.expand(c.tags["from"]) if "from" in c.tags else None
        handle = self.expand(c.tags["handle"]) if "handle" in c.tags else ""
        if not handle:
            # RFC 5230 section 4.2: without :handle, the same reason, subject and
            # from make the same vacation.
            handle = "\0".join((reason, subject or "", sender or "", str(bool(c.tags.get("mime")))))
        return Vacation(reason, period, subject, sender,
                        tuple(self.expand_all(c.tags.get("addresses", ()))),
                        bool(c.tags.get("mime")), handle)

    async def include(self, c: CheckedCommand) -> None:
        state = self.state
        location = "global" if c.tags.get("global") else "personal"
        name = c.args[0]
        key = (location, name)
        if key in state.stack:
            raise SieveRuntimeError(f"include of {name!r} loops back to itself", c.line)
        if c.tags.get("once") and key in state.included:
            return
        if len(state.stack) > state.limits.max_include_depth:
            raise SieveLimitExceeded("includes nested too deeply", c.line)
        state.includes += 1
        if state.includes > state.limits.max_includes:
            raise SieveLimitExceeded("too many includes", c.line)
        source = await state.hooks.load_script(name, location)
        if source is None:
            if c.tags.get("optional"):
                return
            raise SieveRuntimeError(f"included script {name!r} does not exist", c.line)
        try:
            script = validate(parse(source))
        except SieveError as exc:
            raise SieveRuntimeError(f"included script {name!r}: {exc}", c.line) from exc
        state.included.add(key)
        state.stack.append(key)
        try:
            await _Frame(state, script).block(script.commands)
        except _Return:
            pass
        finally:
            state.stack.pop()

    # -- tests -------------------------------------------------------------

    async def test(self, t: CheckedTest) -> bool:
        self.step(t.line)
        name = t.name
        if name == "true":
            return True
        if name == "false":
            return False
        if name == "not":
            return not await self.test(t.tests[0])
        if name == "allof":
            for sub in t.tests:
                if not await self.test(sub):
                    return False
            return True
        if name == "anyof":
            for sub in t.tests:
                if await self.test(sub):
                    return True
            return False
        message = self.state.message
        if name == "exists":
            return all(message.header(h) for h in self.expand_all(t.args[0]))
        if name == "size":
            limit = t.args[0]
            return message.size > limit if t.tags.get("over") else message.size < limit
        if name == "header":
            values: list[str] = []
            for header in self.expand_all(t.args[0]):
                values.extend(self.indexed(t, message.header(header)))
            return self.compare(t, values, t.args[1])
        if name == "address":
            part = _part(t.tags)
            found: list[str] = []
            for header in self.expand_all(t.args[0]):
                for raw in self.indexed(t, message.raw_header(header)):
                    for addr in parts.addresses(raw):
                        value = parts.address_part(addr, part)
                        if value is not None:
                            found.append(value)
            return self.compare(t, found, t.args[1])
        if name == "envelope":
            return self.envelope(t)
        if name == "body":
            return self.compare(t, self.body_texts(t), t.args[0])
        if name == "string":
            sources = [s for s in self.expand_all(t.args[0])]
            if _match(t.tags)[0] == "count":
                sources = [s for s in sources if s]
            return self.compare(t, sources, t.args[1])
        if name == "hasflag":
            variables, keys = t.args
            if variables is None:
                flags = list(self.state.flags)
            else:
                flags = normalize_flags([self.variables.get(v) for v in variables])
            return self.compare(t, flags, keys)
        if name == "date":
            return self.date(t)
        if name == "currentdate":
            when = message.now
            if "zone" in t.tags:
                when = when.astimezone(parts.zone_of(self.expand(t.tags["zone"])))
            return self.compare(t, [parts.date_part(when, self.expand(t.args[0]))], t.args[1])
        if name == "duplicate":
            return await self.duplicate(t)
        if name == "mailboxexists":
            for box in self.expand_all(t.args[0]):
                if not await self.state.hooks.mailbox_exists(box):
                    return False
            return True
        raise SieveRuntimeError(f"unknown test {name!r}", t.line)

    def indexed(self, t: CheckedTest, values: list[str]) -> list[str]:
        index = t.tags.get("index")
        if index is None:
            return values
        i = len(values) - index if t.tags.get("last") else index - 1
        return [values[i]] if 0 <= i < len(values) else []

    def envelope(self, t: CheckedTest) -> bool:
        message = self.state.message
        part = _part(t.tags)
        found: list[str] = []
        for which in self.expand_all(t.args[0]):
            which = which.lower()
            if which == "from":
                address = message.envelope_from
            elif which == "to":
                address = message.envelope_to
            else:
                continue
            if not address:
                # RFC 5228 section 5.4: the null reverse-path is "" whatever the part.
                found.append("")
                continue
            value = parts.address_part(address, part)
            if value is not None:
                found.append(value)
        return self.compare(t, found, t.args[1])

    def body_texts(self, t: CheckedTest) -> list[str]:
        message = self.state.message
        if t.tags.get("raw"):
            return [message.raw_body]
        types = self.expand_all(t.tags["content"]) if "content" in t.tags else ["text"]
        out = []
        for part in message.parts:
            for wanted in types:
                wanted = wanted.lower()
                major = part.content_type.split("/", 1)[0]
                if not wanted or wanted == part.content_type or ("/" not in wanted
                                                                 and wanted == major):
                    out.append(part.text)
                    break
        return out

    def date(self, t: CheckedTest) -> bool:
        header, part, keys = t.args
        values = self.indexed(t, self.state.message.header(self.expand(header)))
        found: list[str] = []
        for value in values:
            when = parts.parse_date(value)
            if when is None:
                continue
            zone = t.tags.get("zone")
            if isinstance(zone, str):
                when = when.astimezone(parts.zone_of(self.expand(zone)))
            elif not t.tags.get("originalzone"):
                # Without :zone or :originalzone: the local zone (RFC 5260 section 4.1),
                # which is the zone of the clock duck runs on.
                when = when.astimezone(self.state.message.now.tzinfo)
            found.append(parts.date_part(when, self.expand(part)))
        return self.compare(t, found, keys)

    async def duplicate(self, t: CheckedTest) -> bool:
        limits = self.state.limits
        if "uniqueid" in t.tags:
            unique = self.expand(t.tags["uniqueid"])
        else:
            header = self.expand(t.tags.get("header", "Message-ID"))
            values = self.state.message.header(header)
            if not values:
                return False
            unique = values[0].strip()
            if header.lower() == "message-id":
                unique = unique.strip("<>")
        seconds = int(t.tags.get("seconds", limits.duplicate_default))
        seconds = max(0, min(seconds, limits.duplicate_max))
        handle = self.expand(t.tags.get("handle", ""))
        key = f"{handle}\0{unique}"
        return await self.state.hooks.duplicate(key, seconds, bool(t.tags.get("last")))

    def compare(self, t: CheckedTest, values: list[str], keys: tuple[str, ...]) -> bool:
        comparator = t.tags.get("comparator", "i;ascii-casemap")
        kind, operator = _match(t.tags)
        expanded = self.expand_all(keys)
        if kind == "count":
            count = str(len(values))
            return any(matching.relation(operator, matching.order(comparator, count, k))
                       for k in expanded)
        for value in values:
            for key in expanded:
                if kind == "is":
                    if matching.equals(comparator, value, key):
                        return True
                elif kind == "contains":
                    if matching.contains(comparator, value, key):
                        return True
                elif kind == "value":
                    if matching.relation(operator, matching.order(comparator, value, key)):
                        return True
                else:
                    result = matching.matches(comparator, value, key)
                    if result.matched:
                        if self.uses_variables:
                            self.variables.set_matches((value, *result.captures))
                        return True
        return False


def _part(tags: dict[str, Any]) -> str:
    for name in ("localpart", "domain", "user", "detail"):
        if tags.get(name):
            return name
    return "all"


def _match(tags: dict[str, Any]) -> tuple[str, str]:
    if "value" in tags:
        return "value", tags["value"]
    if "count" in tags:
        return "count", tags["count"]
    for name in ("contains", "matches"):
        if tags.get(name):
            return name, ""
    return "is", ""
