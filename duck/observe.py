"""What a running server tells its operator: Prometheus metrics and event log lines.

One :class:`Observer` per server instance, with its own ``CollectorRegistry`` (tests
run several servers in one process). The server makes it current for its tasks
(:func:`using`, a context variable that every task started below inherits, as
``net.inherit_listeners`` does); the protocol code asks :func:`current` once per
connection and reports through it:

- a connection opened and closed (``duck_connections_open``, ``duck_connections_total``;
  one ``duck.conn`` log line each, with the peer and the protocol);
- a command and how long it took (``duck_command_seconds``: a count in a bucket and
  a sum, per (protocol, command), made into the histogram's samples when scraped);
- a delivery's outcome per recipient (``duck_deliveries_total``,
  ``duck_delivered_bytes_total``; one ``duck.delivery`` line each), a recipient
  refused at RCPT included;
- an API request (``duck_api_requests_total``; one ``duck.api`` line each).

Figures other parts already keep are read when scraped: store round trips per
command (``duck/store/engine/metrics.py``), the notifier's lag, the outbound queue's
depth and the embedded database's state, through :meth:`Observer.add_source`.
Outside a server (unit tests of a protocol) :func:`current` is a no-op observer.
"""

from __future__ import annotations

import logging
import math
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

conn_log = logging.getLogger("duck.conn")
delivery_log = logging.getLogger("duck.delivery")
api_log = logging.getLogger("duck.api.access")

#: Command latency buckets, seconds: sub-millisecond flag reads up to long SEARCHes.
COMMAND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0, 30.0)
#: Media type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: A scrape-time source: an async function that sets gauges from a live figure.
Source = Callable[[], Awaitable[None]]


class _Scraped(Collector):
    """Families whose values are read from other objects when scraped."""

    def __init__(self) -> None:
        self.readers: list[Callable[[], Iterable[Metric]]] = []

    def collect(self) -> Iterator[Metric]:
        for reader in self.readers:
            yield from reader()

    def describe(self) -> list[Metric]:
        return []  # values only exist at scrape time


class _Times:
    """One (protocol, command)'s latencies: counts per bucket, their sum."""

    __slots__ = ("counts", "created", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(COMMAND_BUCKETS) + 1)
        self.sum = 0.0
        self.created = time.time()


class Observer:
    """The metrics of one server and its event log lines."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections_open = Gauge("duck_connections_open", "Connections open now",
                                      ["protocol"], registry=r)
        self.connections = Counter("duck_connections", "Connections accepted",
                                   ["protocol"], registry=r)
        #: (protocol, command) -> its counts per bucket (COMMAND_BUCKETS, then +Inf),
        #: their sum of seconds and when it was first seen (``duck_command_seconds``).
        self._commands: dict[tuple[str, str], _Times] = {}
        self.deliveries = Counter("duck_deliveries", "Delivery outcomes, per recipient",
                                  ["outcome"], registry=r)
        self.delivered_bytes = Counter("duck_delivered_bytes",
                                       "Bytes of messages stored, per recipient", registry=r)
        self.api_requests = Counter("duck_api_requests", "HTTP API requests answered",
                                    ["method", "status"], registry=r)
        self._sources: list[Source] = []
        self._scraped = _Scraped()
        self._scraped.readers.append(self._command_family)
        r.register(self._scraped)

    # -- events ------------------------------------------------------------------------

    def connection_opened(self, protocol: str, peer: str) -> None:
        """A client connected."""
        self.connections_open.labels(protocol).inc()
        self.connections.labels(protocol).inc()
        conn_log.info("open %s peer=%s", protocol, peer,
                      extra={"event": "open", "protocol": protocol, "peer": peer})

    def connection_closed(self, protocol: str, peer: str, seconds: float) -> None:
        """A client's connection ended after ``seconds``."""
        self.connections_open.labels(protocol).dec()
        conn_log.info("close %s peer=%s duration=%.3f", protocol, peer, seconds,
                      extra={"event": "close", "protocol": protocol, "peer": peer,
                             "duration": round(seconds, 6)})

    def command(self, protocol: str, name: str, seconds: float) -> None:
        """A command of ``protocol`` took ``seconds`` (the hot path of every command).

        Counted here rather than by prometheus_client's Histogram, whose observe is
        six Python calls and two locks, a few percent of a NOOP's CPU; the family
        is made from these counts when scraped (``_command_family``), with the same
        samples. Every command of a server is counted on its event loop's thread."""
        times = self._commands.get((protocol, name))
        if times is None:
            times = self._commands[(protocol, name)] = _Times()
        times.counts[bisect_left(COMMAND_BUCKETS, seconds)] += 1
        times.sum += seconds

    def _command_family(self) -> Iterator[Metric]:
        family = HistogramMetricFamily("duck_command_seconds", "Command latency",
                                       labels=["protocol", "command"])
        for (protocol, name), times in sorted(self._commands.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*COMMAND_BUCKETS, math.inf), times.counts, strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            family.add_metric([protocol, name], buckets, times.sum)
            family.add_sample("duck_command_seconds_created",
                              {"protocol": protocol, "command": name}, times.created)
        yield family

    def delivery(self, queue_id: str, recipient: str, outcome: str, size: int) -> None:
        """One recipient's copy of a delivered message: ``outcome`` is ``stored`` or why
        not (also for a recipient refused at RCPT, with ``size`` 0)."""
        self.deliveries.labels(outcome).inc()
        if outcome == "stored":
            self.delivered_bytes.inc(size)
        delivery_log.info("delivery %s to=%s outcome=%s size=%d", queue_id, recipient,
                          outcome, size,
                          extra={"queue_id": queue_id, "recipient": recipient,
                                 "outcome": outcome, "size": size})

    def api_request(self, method: str, path: str, status: int, seconds: float) -> None:
        """An API request was answered."""
        self.api_requests.labels(method, str(status)).inc()
        api_log.info("%s %s %d %.3f", method, path, status, seconds,
                     extra={"method": method, "path": path, "status": status,
                            "duration": round(seconds, 6)})

    # -- scraping ----------------------------------------------------------------------

    def add_source(self, source: Source) -> None:
        """Run ``source`` before each scrape (it sets gauges from a live figure)."""
        self._sources.append(source)

    def add_reader(self, reader: Callable[[], Iterable[Metric]]) -> None:
        """Yield ``reader()``'s families at each scrape."""
        self._scraped.readers.append(reader)

    async def scrape(self) -> bytes:
        """The text exposition of every family, the sources read first."""
        for source in self._sources:
            await source()
        return generate_latest(self.registry)


def counter_family(name: str, text: str, labels: list[str],
                   values: Iterable[tuple[list[str], float]]) -> CounterMetricFamily:
    """A counter family read at scrape time (``name`` without ``_total``)."""
    family = CounterMetricFamily(name, text, labels=labels)
    for label_values, value in values:
        family.add_metric(label_values, value)
    return family


def counter_total(name: str, text: str, value: float) -> CounterMetricFamily:
    """A one-sample counter without labels, read at scrape time (``name`` without
    ``_total``)."""
    return CounterMetricFamily(name, text, value=value)


def gauge_family(name: str, text: str, value: float) -> GaugeMetricFamily:
    """A one-sample gauge read at scrape time."""
    return GaugeMetricFamily(name, text, value=value)


class _Quiet(Observer):
    """The observer outside a server (a protocol run alone, in tests): connection and
    command events are dropped; deliveries and API requests are still logged."""

    def connection_opened(self, protocol: str, peer: str) -> None:
        pass

    def connection_closed(self, protocol: str, peer: str, seconds: float) -> None:
        pass

    def command(self, protocol: str, name: str, seconds: float) -> None:
        pass


_NONE = _Quiet()
_current: ContextVar[Observer] = ContextVar("duck_observer", default=_NONE)


def current() -> Observer:
    """The observer of the server this task belongs to (a quiet one outside any)."""
    return _current.get()


@contextmanager
def using(observer: Observer) -> Iterator[Observer]:
    """Within this block, and in every task started from it, ``current()`` is
    ``observer``."""
    token = _current.set(observer)
    try:
        yield observer
    finally:
        _current.reset(token)
