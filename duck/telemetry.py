"""The scrape-time metric families of a running server (``GET /metrics``).

``duck/observe.py`` counts events as they happen; these are figures other parts
keep anyway, read when Prometheus scrapes: store round trips per command, the
notifier's lag, the outbound queue's depth, the embedded database's state. With
``--workers N`` each worker process reports its own figures (a scrape reaches one
of them); the embedded database is the parent's and is reported by none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import Gauge
from prometheus_client.core import Metric

from .observe import Observer, counter_family, counter_total, gauge_family
from .store import StoreError, metrics

if TYPE_CHECKING:
    from .server import Server


#: The store's one-sample counters on /metrics: (name, figure, help).
STORE_COUNTERS = (
    ("duck_store_group_commits", "groups",
     "Transactions committed for several store calls at once"),
    ("duck_store_group_commit_members", "members",
     "Store calls whose writes went in a group's transaction"),
    ("duck_store_group_commit_failures", "failures",
     "Groups taken back (their members tried again alone)"),
    ("duck_store_group_commits_early", "early",
     "Groups committed as their writes came back (nothing left for their members"
     " to decide)"),
    ("duck_store_user_lock_waits", "lock_waits",
     "Writes that waited for another write of their user"),
    ("duck_store_user_lock_wait_seconds", "lock_seconds",
     "Seconds writes waited for another write of their user"),
    ("duck_store_parse_worker_messages", "parse_indexed",
     "Messages indexed by a parse worker process"),
    ("duck_store_parse_worker_failures", "parse_failures",
     "Messages a parse worker failed at (indexed by the serving process instead)"),
)


def register(observer: Observer, server: Server) -> None:
    """Add the server's scrape-time families to its observer."""

    def round_trips() -> Iterator[Metric]:
        stats = metrics.statistics()
        yield counter_family(
            "duck_store_round_trips", "Database round trips, by the command that made them",
            ["command"], (([label if label != metrics.OTHER else "other"], s["round_trips"])
                          for label, s in stats.items()))
        yield counter_family(
            "duck_store_database_commands",
            "Database round trips, by the command that made them and the database command",
            ["command", "database_command"],
            (([label if label != metrics.OTHER else "other", name], n)
             for label, s in stats.items() for name, n in s["by_db_command"].items()))

    def group_commits() -> Iterator[Metric]:
        if server.store is None:
            return
        figures = {**server.store.database.group_commits(),
                   **{f"lock_{k}": v for k, v in
                      server.store.messages.lock_statistics().items()},
                   **{f"parse_{k}": v for k, v in
                      server.store.messages.parse_statistics().items()}}
        for name, key, text in STORE_COUNTERS:
            yield counter_total(name, text, figures[key])
        yield counter_family(
            "duck_store_group_commit_seconds",
            "Seconds the groups spent in each phase: gathering members, waiting for a"
            " place among the groups in flight, the writes' round trip, the commit's",
            ["phase"], (([phase], value) for phase, value in
                        server.store.database.group_commit_seconds().items()))

    def notifier() -> Iterator[Metric]:
        if server.notifier is None:
            return
        stats = server.notifier.statistics()
        yield gauge_family("duck_notifier_lag_seconds",
                           "From the last change's write to its wake-up", stats["lag"])
        yield counter_total("duck_notifier_events", "Changes the notifier saw",
                            stats["events_seen"])
        yield counter_total("duck_notifier_caught_up",
                            "Wake-ups for changes the change stream had not brought",
                            stats["caught_up"])
        siblings = stats.get("siblings")
        if siblings is not None:  # (a worker of duck serve --workers N)
            yield counter_family(
                "duck_notifier_sibling_entries",
                "Journal entries this worker sent to the other workers, and received",
                ["direction"], [(["sent"], siblings["sent"]),
                                (["received"], siblings["received"])])
            yield counter_total(
                "duck_notifier_sibling_lost",
                "Times entries of other workers were lost on the way (every session"
                " here then read the journal itself)", siblings["lost"])

    def journal() -> Iterator[Metric]:
        if server.store is None:
            return
        stats = server.store.journal.statistics()
        yield counter_total("duck_journal_reads", "Journal reads sent to the database",
                            stats["reads"])
        yield counter_total("duck_journal_reads_shared",
                            "Journal reads answered from memory (another reader's read, "
                            "or this process's own commits)", stats["shared"])

    def embedded() -> Iterator[Metric]:
        if server.embedded is None:
            return
        stats = server.embedded.statistics()
        yield gauge_family("duck_embedded_database_up", "1 while the embedded database runs",
                           1 if stats["pid"] is not None else 0)
        yield counter_total("duck_embedded_database_restarts",
                            "Restarts of the embedded database after it died",
                            int(stats["restarts"]))  # type: ignore[call-overload]

    for reader in (round_trips, group_commits, notifier, journal, embedded):
        observer.add_reader(reader)

    depth = Gauge("duck_outbound_queue_depth", "Outbound messages waiting to be sent",
                  registry=observer.registry)

    async def outbound() -> None:
        if server.store is None:
            return
        try:
            depth.set((await server.store.outbound.statistics())["queued"])
        except StoreError:
            pass  # the database is down: the gauge keeps its last value

    observer.add_source(outbound)
