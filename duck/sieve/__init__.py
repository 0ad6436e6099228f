"""Sieve (RFC 5228 and extensions): parse, check and run mail filtering scripts.

A pure package: the standard library and attrs only (tests/test_layers.py). The
caller supplies the message (``Message``) and the store's answers (``Hooks``) and
carries out the returned actions.
"""

from __future__ import annotations

from .actions import Action, Discard, FileInto, Keep, Outcome, Redirect, Reject, Vacation
from .errors import (
    SieveError,
    SieveLimitExceeded,
    SieveRuntimeError,
    SieveSyntaxError,
    SieveValidationError,
)
from .interpreter import Limits, run
from .message import BodyPart, Hooks, Message, NoHooks
from .parser import parse
from .spec import EXTENSIONS
from .validator import Script, validate

#: Largest script accepted, in octets.
MAX_SCRIPT_SIZE = 64 * 1024


def compile_script(source: str) -> Script:
    """Parse and check a script; a SieveError with a line number when it is not valid."""
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SCRIPT_SIZE:
        raise SieveSyntaxError(f"script larger than {MAX_SCRIPT_SIZE} octets")
    return validate(parse(source))


__all__ = [
    "EXTENSIONS",
    "MAX_SCRIPT_SIZE",
    "Action",
    "BodyPart",
    "Discard",
    "FileInto",
    "Hooks",
    "Keep",
    "Limits",
    "Message",
    "NoHooks",
    "Outcome",
    "Redirect",
    "Reject",
    "Script",
    "SieveError",
    "SieveLimitExceeded",
    "SieveRuntimeError",
    "SieveSyntaxError",
    "SieveValidationError",
    "Vacation",
    "compile_script",
    "parse",
    "run",
    "validate",
]
