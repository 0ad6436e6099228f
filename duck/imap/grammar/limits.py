"""Configurable hard caps for the reader and parser."""

from __future__ import annotations

import attrs

#: RFC 7888 §4: with LITERAL- a non-synchronizing literal may carry at most 4096 octets.
LITERAL_MINUS_MAX = 4096


@attrs.frozen
class Limits:
    """Hard caps that keep one connection's memory and CPU bounded.

    ``max_line`` bounds one line (literal data excluded), ``max_literal`` one literal,
    ``max_command`` a whole command with all its lines and literals, ``max_depth`` the
    nesting of parenthesised lists. ``literal_plus`` says the server advertises
    LITERAL+ (any non-synchronizing literal up to ``max_literal``); when False the
    server is taken to advertise LITERAL- (non-synchronizing literals up to 4096
    octets). ``max_discard`` is how many octets of an over-limit non-synchronizing
    literal the reader will swallow to stay in sync before giving up (fatal).
    """

    max_line: int = 64 * 1024
    max_literal: int = 64 * 1024 * 1024
    max_command: int = 80 * 1024 * 1024
    max_depth: int = 64
    literal_plus: bool = True
    max_discard: int = 256 * 1024 * 1024
