"""Database round-trip counting, attributed to the protocol command that caused it.

The database is the scarce resource (docs/architecture.md, "Sessions and round trips"), so the
number of commands sent to it per IMAP command is the figure that matters. A
pymongo ``CommandListener`` registered on the store's client (database.py) counts
every command started; each is attributed to the *scope* active in the calling
context:

    with metrics.command_scope("UID FETCH"):
        await handler(...)

``command_scope`` sets a contextvar. An inline store call (inline.py) runs in the
calling task and counts each command it sends (``count``); pymongo calls run in
worker threads (threadpool.py), each in a copy of the calling task's context, so the
listener (called synchronously in that thread) sees the scope of the task that
caused the call. Work outside any scope (the notifier's change stream, webhook dispatch,
start-up) is counted under ``OTHER``.

Counters are process-global and cheap (one lock, a few integer additions per
database command); ``statistics()`` reads them, ``reset()`` clears them (the
benchmark runs the server in-process and reads them directly).
"""

from __future__ import annotations

import threading
from collections import Counter
from contextvars import ContextVar, Token
from typing import Any

import attrs
from pymongo import monitoring

#: Label of round trips made outside any command scope.
OTHER = "-"


@attrs.define
class Scope:
    """One command in progress: its label and the round trips it has made so far."""

    label: str
    round_trips: int = 0


_current: ContextVar[Scope | None] = ContextVar("duck_store_metrics_scope", default=None)


@attrs.define
class LabelStats:
    """Totals of one label: commands finished, round trips, and their breakdown."""

    commands: int = 0
    round_trips: int = 0
    #: Round trips by database command name (find, insert, getMore, ...).
    by_db_command: Counter[str] = attrs.Factory(Counter)
    #: Most round trips one command of this label made.
    max_round_trips: int = 0


class RoundTripCounter(monitoring.CommandListener):
    """A pymongo command listener that counts round trips per command scope."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._labels: dict[str, LabelStats] = {}
        self.total = 0

    # -- pymongo callbacks (called in the thread that runs the pymongo call) ---------

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        """Count one round trip for the current scope (or OTHER)."""
        self.count(event.command_name)

    def count(self, command_name: str) -> None:
        """Count one round trip of ``command_name`` for the current scope (or OTHER);
        wire.py's calls are counted here directly."""
        scope = _current.get()
        label = OTHER if scope is None else scope.label
        with self._lock:
            self.total += 1
            stats = self._labels.get(label)
            if stats is None:
                stats = self._labels[label] = LabelStats()
            stats.round_trips += 1
            stats.by_db_command[command_name] += 1
            if scope is not None:
                scope.round_trips += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to do: a round trip is counted when it starts."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to do: a failed command was a round trip all the same."""

    # -- scopes ------------------------------------------------------------------------

    def finish(self, scope: Scope) -> None:
        """Record that the command of ``scope`` is done."""
        with self._lock:
            stats = self._labels.get(scope.label)
            if stats is None:
                stats = self._labels[scope.label] = LabelStats()
            stats.commands += 1
            stats.max_round_trips = max(stats.max_round_trips, scope.round_trips)

    # -- reading -----------------------------------------------------------------------

    def statistics(self) -> dict[str, dict[str, Any]]:
        """Per label: commands, round trips, average per command, max, breakdown."""
        with self._lock:
            out: dict[str, dict[str, Any]] = {}
            for label, s in sorted(self._labels.items()):
                out[label] = {
                    "commands": s.commands,
                    "round_trips": s.round_trips,
                    "avg_round_trips": round(s.round_trips / s.commands, 2)
                    if s.commands else None,
                    "max_round_trips": s.max_round_trips,
                    "by_db_command": dict(s.by_db_command),
                }
            return out

    def reset(self) -> None:
        """Forget every count (scopes in progress keep counting from zero)."""
        with self._lock:
            self._labels.clear()
            self.total = 0


#: The process-wide counter; database.py registers it on every store client.
ROUND_TRIPS = RoundTripCounter()


class command_scope:  # (lower-case: used as the function it was)
    """Attribute the database round trips made inside the block to ``label``.

    Scopes do not nest: inside an active scope a new one is the same scope, so a
    caller may wrap a command that already wraps itself without counting it twice.
    (A class, not a ``contextmanager`` generator: every IMAP command enters one.)
    """

    __slots__ = ("_label", "_scope", "_token")

    def __init__(self, label: str) -> None:
        self._label = label
        self._scope: Scope | None = None
        self._token: Token[Scope | None] | None = None

    def __enter__(self) -> Scope:
        outer = _current.get()
        if outer is not None:
            return outer
        scope = self._scope = Scope(self._label)
        self._token = _current.set(scope)
        return scope

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            assert self._scope is not None
            ROUND_TRIPS.finish(self._scope)


def current_scope() -> Scope | None:
    """The scope active in this context, if any."""
    return _current.get()


def statistics() -> dict[str, dict[str, Any]]:
    """Round-trip statistics of this process, per label (see RoundTripCounter)."""
    return ROUND_TRIPS.statistics()


def reset() -> None:
    """Clear this process's round-trip counts."""
    ROUND_TRIPS.reset()
