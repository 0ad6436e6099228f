"""``duck serve``: one trio nursery supervising every component (docs/architecture.md).

Start order: the embedded database (unless a URI is configured), the store, then
the listeners (IMAP, IMAPS, LMTP, HTTP API). Shutdown: stop accepting, let
sessions close politely and in-flight work finish within the grace period, then
cancel what is left and stop the embedded database.

With ``--workers N`` each worker process runs one :class:`Server` on the parent's
database URI and on listening sockets the parent bound (duck/workers.py).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import signal
import ssl
from collections.abc import Callable
from functools import partial
from typing import Any

import attrs
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from . import observe, telemetry
from .api.app import ApiState, create_app
from .api.auth import is_loopback
from .api.dispatch import Dispatcher
from .api.sse import SseHub
from .config import Config
from .ctl.locate import ServerState, keep_state
from .imap.limits import ServerLimits
from .imap.server import serve_imap
from .imap.session import ServerContext
from .lmtp.server import LmtpServer, LmtpServerConfig, serve_lmtp
from .lmtp.store_backend import StoreBackend
from .managesieve.server import ManageSieveConfig, ManageSieveContext, serve_managesieve
from .managesieve.store_backend import StoreBackend as ManageSieveStoreBackend
from .mta.socketmap import serve_socketmap
from .net import inherit_listeners, inherited_fds, open_listeners
from .outbound.sender import Sender
from .outbound.smtp import RelaySettings, parse_relay
from .pop3.server import Pop3Config, Pop3Context, serve_pop3
from .pop3.store_backend import StoreBackend as Pop3StoreBackend
from .pop3.store_backend import StoreSettings as Pop3StoreSettings
from .store import EmbeddedDatabase, Notifier, Store, ThrottlePolicy, textindex
from .store.push.siblings import Link
from .throttle import ConnectionCounter
from .tls import ensure_self_signed, server_context

log = logging.getLogger(__name__)


async def open_database(
    config: Config, nursery: trio.Nursery, *, oplog: bool = True
) -> tuple[str, EmbeddedDatabase | None]:
    """The database's URI: the configured deployment's, or that of an embedded server
    started in ``nursery`` (which then stops it when it is cancelled); ``oplog``:
    whether that server keeps one (change streams read it)."""
    if config.mongo_uri:
        return config.mongo_uri, None
    embedded = EmbeddedDatabase(
        data_dir=config.data_dir,
        engine=config.embedded_engine,  # type: ignore[arg-type]
        cache_size=config.embedded_cache_size,
        log_file_max=config.embedded_log_file_max,
        oplog=oplog,
    )
    uri: str = await nursery.start(embedded.run)
    return uri, embedded


def throttle_policy(config: Config) -> ThrottlePolicy:
    """The store's login throttle from the configuration."""
    return ThrottlePolicy(
        user_limit=config.login_user_limit, peer_limit=config.login_peer_limit,
        window=dt.timedelta(seconds=config.login_window_seconds),
        delay_base=config.login_delay_base, delay_max=config.login_delay_max)


@attrs.define
class Server:
    """A running server: its ports, its store, and the switch that stops it."""

    config: Config
    shutdown: trio.Event = attrs.Factory(trio.Event)
    api_state: ApiState = attrs.Factory(ApiState)
    store: Store | None = None
    embedded: EmbeddedDatabase | None = None
    mongo_uri: str | None = None
    ports: dict[str, int] = attrs.Factory(dict)
    ssl_context: ssl.SSLContext | None = None
    notifier: Notifier | None = None
    dispatcher: Dispatcher | None = None
    #: The outbound sender (only with ``smtp_relay`` set).
    outbound: Sender | None = None
    #: Listening sockets inherited from the parent process, as descriptors by port
    #: (``--workers``); a port not here is bound by this process.
    listen_fds: dict[int, list[int]] = attrs.Factory(dict)
    #: This process's number among the parent's workers; None when serving alone.
    worker: int | None = None
    #: The other workers' journal entries and this one's to them, where the parent
    #: started the embedded server they share (workers.py; push/siblings.py).
    siblings: Link | None = None
    #: Shared by the IMAP listeners (connection limits).
    _imap_context: ServerContext | None = None
    #: Shared by the POP3 listeners.
    _pop3_context: Pop3Context | None = None
    _managesieve_context: ManageSieveContext | None = None
    #: This server's metrics (its own registry) and event log lines (duck/observe.py).
    observer: observe.Observer = attrs.Factory(observe.Observer)

    def request_shutdown(self) -> None:
        """Begin a graceful shutdown (idempotent)."""
        self.shutdown.set()

    async def run(self, *, task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until ``request_shutdown`` (or cancellation); reports itself once ready."""
        telemetry.register(self.observer, self)
        with inherit_listeners(self.listen_fds), observe.using(self.observer):
            await self._run(task_status)

    async def _run(self, task_status: trio.TaskStatus[Server]) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        components = self.api_state.components
        optional = {"imaps": config.imaps_port, "pop3": config.pop3_port,
                    "pop3s": config.pop3s_port, "managesieve": config.managesieve_port,
                    "managesieves": config.managesieves_port}
        for name in ("database", "imap", "lmtp", "api", *(k for k, v in optional.items() if v)):
            components[name] = False
        async with trio.open_nursery() as root:
            # The database outlives the listeners: it is stopped last.
            # On an embedded server it starts, this process is the server's only
            # writer (workers.py starts the one its workers share, without one as
            # well): nothing reads change streams (the notifier below is fed by the
            # store), so the server keeps no oplog.
            self.mongo_uri, self.embedded = await open_database(config, root, oplog=False)
            textindex.configure(config.search_index)
            self.store = await Store.open(self.mongo_uri, config.database,
                                          digest_in_background=True)
            try:
                if self.worker is None:
                    # The admin commands find the database here (duck/ctl/locate.py).
                    await root.start(keep_state, config.data_dir, ServerState(
                        os.getpid(), self.mongo_uri, config.database))
                await self.store.set_journal_retention(config.journal_retention)
                self.store.set_archive_days(config.archive_days)
                self.store.configure_auth(throttle_policy(config),
                                          dt.timedelta(days=config.authlog_days))
                self.api_state.store = self.store
                components["database"] = True
                # The services nursery ends only when all its tasks have (a task in a
                # worker thread finishes its call first), so the store outlives them.
                async with trio.open_nursery() as services:
                    # Change notification reaches every session of every process.
                    # Alone on the embedded server it started, this process writes
                    # all there is (but for duck ctl): no change stream to read
                    # (push/notify.py, "sole").
                    # Likewise the workers on the embedded server their parent
                    # started, told each other's entries (``siblings``).
                    sole = self.embedded is not None and self.worker is None
                    self.notifier = Notifier(
                        self.store.database, journal=self.store.journal, sole=sole,
                        siblings=self.siblings,
                        # (Its server keeps no oplog: another process's write, found
                        # by the quiet check, is then looked for by polling.)
                        change_streams=False if sole else None)
                    await services.start(self.notifier.run)
                    if config.smtp_relay:
                        await services.start(self._outbound)
                    # Archive purge, body sweep and the start-up repair, in the
                    # background under a lease (store/maintenance.py).
                    await services.start(self.store.maintenance.run,
                                         config.maintenance_interval)
                    await services.start(partial(self.store.maintenance.build_digests,
                                                 forever=True))
                    try:
                        await self._serve(task_status)
                    finally:
                        services.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await self.store.aclose()
                root.cancel_scope.cancel()  # stops the embedded database last
        log.info("duck stopped")

    async def _serve(self, task_status: trio.TaskStatus[Server]) -> None:
        config = self.config
        cert, key = config.tls_cert, config.tls_key
        if cert is None or key is None:
            cert, key = ensure_self_signed(config.data_dir, config.hostname)
        self.ssl_context = server_context(cert, key)
        components = self.api_state.components
        services = trio.CancelScope()
        async with trio.open_nursery() as watcher:
            watcher.start_soon(self._grace_watch, services)
            with services:
                async with trio.open_nursery() as nursery:
                    self.ports["imap"] = await nursery.start(self._imap, config.imap_port, None)
                    components["imap"] = True
                    if config.imaps_port:
                        self.ports["imaps"] = await nursery.start(
                            self._imap, config.imaps_port, self.ssl_context
                        )
                        components["imaps"] = True
                    for name, port, tls in (("pop3", config.pop3_port, None),
                                            ("pop3s", config.pop3s_port, self.ssl_context)):
                        if port:
                            self.ports[name] = await nursery.start(self._pop3, port, tls)
                            components[name] = True
                    for name, port, tls in (
                            ("managesieve", config.managesieve_port, None),
                            ("managesieves", config.managesieves_port, self.ssl_context)):
                        if port:
                            self.ports[name] = await nursery.start(self._managesieve, port, tls)
                            components[name] = True
                    self.ports["lmtp"] = await nursery.start(self._lmtp)
                    components["lmtp"] = True
                    if config.socketmap_port:
                        assert self.store is not None
                        self.ports["socketmap"] = await nursery.start(partial(
                            serve_socketmap, self.store, config.socketmap_host,
                            config.socketmap_port, shutdown=self.shutdown))
                    self.ports["api"] = await nursery.start(self._api)
                    components["api"] = True
                    ports = ", ".join(f"{k}={v}" for k, v in self.ports.items())
                    if self.worker is None:
                        log.info("duck ready: %s", ports)
                    else:
                        log.info("worker %d ready: %s", self.worker, ports)
                    task_status.started(self)
            # Every listener has returned (or the grace period ran out).
            watcher.cancel_scope.cancel()

    async def _outbound(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Send the outbound queue through ``smtp_relay`` (until cancelled, after
        the listeners: a delivery's redirect queued at shutdown is still sent)."""
        assert self.store is not None and self.config.smtp_relay is not None
        self.outbound = Sender(self.store, relay_settings(self.config),
                               max_age=self.config.outbound_max_age,
                               retry_base=self.config.outbound_retry_base,
                               poll_interval=self.config.outbound_poll_interval)
        log.info("outbound mail through %s (%s)", self.config.smtp_relay,
                 self.config.smtp_relay_tls)
        await self.outbound.run(task_status=task_status)

    async def _grace_watch(self, services: trio.CancelScope) -> None:
        await self.shutdown.wait()
        log.info("shutting down (grace %.0f s)", self.config.shutdown_grace)
        await trio.sleep(self.config.shutdown_grace)
        services.cancel()

    async def _imap(
        self, port: int, context: ssl.SSLContext | None, *, task_status: trio.TaskStatus[int]
    ) -> None:
        assert self.store is not None
        if self._imap_context is None:
            self._imap_context = ServerContext(
                store=self.store, config=self.config, shutdown=self.shutdown,
                notifier=self.notifier, ssl_context=self.ssl_context,
                limits=ServerLimits(),
            )
        await serve_imap(
            self._imap_context, self.config.host, port, implicit_tls=context is not None,
            task_status=task_status,
        )

    async def _pop3(
        self, port: int, context: ssl.SSLContext | None, *, task_status: trio.TaskStatus[int]
    ) -> None:
        assert self.store is not None
        config = self.config
        if self._pop3_context is None:
            backend = Pop3StoreBackend(
                self.store,
                Pop3StoreSettings(lease_seconds=config.pop3_lease_seconds,
                                  login_delay=config.pop3_login_delay,
                                  delete_mode=config.pop3_delete_mode),
                notifier=self.notifier,
            )
            self._pop3_context = Pop3Context(
                backend=backend,
                config=Pop3Config(hostname=config.hostname,
                                  allow_plaintext_auth=config.allow_plaintext_auth,
                                  expire=config.pop3_expire,
                                  login_delay=config.pop3_login_delay),
                shutdown=self.shutdown, ssl_context=self.ssl_context,
                per_ip=ConnectionCounter(config.imap_max_connections_per_ip),
            )
        await serve_pop3(
            self._pop3_context, config.host, port, implicit_tls=context is not None,
            task_status=task_status,
        )

    async def _managesieve(
        self, port: int, context: ssl.SSLContext | None, *, task_status: trio.TaskStatus[int]
    ) -> None:
        assert self.store is not None
        config = self.config
        if self._managesieve_context is None:
            self._managesieve_context = ManageSieveContext(
                backend=ManageSieveStoreBackend(self.store),
                config=ManageSieveConfig(hostname=config.hostname,
                                         allow_plaintext_auth=config.allow_plaintext_auth),
                shutdown=self.shutdown, ssl_context=self.ssl_context,
                per_ip=ConnectionCounter(config.imap_max_connections_per_ip),
            )
        await serve_managesieve(
            self._managesieve_context, config.host, port, implicit_tls=context is not None,
            task_status=task_status,
        )

    async def _lmtp(self, *, task_status: trio.TaskStatus[int]) -> None:
        assert self.store is not None
        config = self.config
        lmtp_config = LmtpServerConfig(
            hostname=config.hostname,
            max_message_size=config.max_message_size,
            allowed_networks=tuple(ipaddress.ip_network(n) for n in config.lmtp_networks),
            tls_context=self.ssl_context,
            grace_period=config.shutdown_grace,
        )
        backend = StoreBackend(self.store, max_message_size=config.max_message_size)
        listeners = await open_listeners(config.lmtp_port, config.lmtp_host)
        async with trio.open_nursery() as nursery:
            lmtp: LmtpServer = await nursery.start(
                partial(serve_lmtp, backend, listeners=listeners, config=lmtp_config)
            )
            port = lmtp.ports()[0]
            log.info("LMTP listening on %s:%d", config.lmtp_host, port)
            task_status.started(port)
            await self.shutdown.wait()
            lmtp.shutdown()

    async def _api(self, *, task_status: trio.TaskStatus[int]) -> None:
        config = self.config
        if config.api_token is None and not is_loopback(config.api_host):
            # Without a token the API would be open to the network (issue 7).
            raise OSError(f"refusing to serve the API on {config.api_host} without api_token")
        hconfig = HypercornConfig()
        fds = inherited_fds(config.api_port)
        if fds is None:
            hconfig.bind = [f"{config.api_host}:{config.api_port}"]
        else:
            hconfig.bind = [f"fd://{fd}" for fd in fds]
        hconfig.accesslog = None
        hconfig.graceful_timeout = config.shutdown_grace
        hconfig.errorlog = logging.getLogger("duck.api.hypercorn")  # type: ignore[assignment]
        self.api_state.notifier = self.notifier
        self.api_state.api_token = config.api_token
        self.api_state.api_token_ttl = config.api_token_ttl
        self.api_state.sse = SseHub(heartbeat=config.sse_heartbeat,
                                    max_per_user=config.sse_max_per_user)
        app = create_app(self.api_state)

        async with trio.open_nursery() as nursery:
            await nursery.start(self._webhooks)
            binds: list[str] = await nursery.start(
                _hypercorn, app, hconfig, self.shutdown.wait
            )
            port = int(binds[0].rsplit(":", 1)[1])
            log.info("HTTP API listening on %s:%d", config.api_host, port)
            task_status.started(port)
            # Update streams never end by themselves: they end when shutdown begins,
            # so the HTTP server is not kept waiting its grace period for them.
            await self.shutdown.wait()
            self.api_state.sse.close()

    async def _webhooks(self, *, task_status: trio.TaskStatus[None]) -> None:
        assert self.store is not None
        config = self.config
        self.dispatcher = Dispatcher(
            self.store, poll_interval=config.webhook_poll_interval, notifier=self.notifier,
            timeout=config.webhook_timeout, concurrency=config.webhook_concurrency,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(self.dispatcher.run)
            task_status.started()
            await self.shutdown.wait()
            nursery.cancel_scope.cancel()


def relay_settings(config: Config) -> RelaySettings:
    """The relay's settings from the configuration (reads the password file)."""
    assert config.smtp_relay is not None
    host, port = parse_relay(config.smtp_relay)
    password = None
    if config.smtp_relay_password_file is not None:
        password = config.smtp_relay_password_file.read_text(encoding="utf-8").strip("\r\n")
    return RelaySettings(
        host=host, port=port, tls=config.smtp_relay_tls, user=config.smtp_relay_user,
        password=password, timeout=config.smtp_relay_timeout,
        final_timeout=min(600.0, 10 * config.smtp_relay_timeout), helo=config.hostname,
        ca_file=config.smtp_relay_ca_file, verify=config.smtp_relay_verify,
    )


async def _hypercorn(
    app: Any, config: HypercornConfig, trigger: Any, *, task_status: trio.TaskStatus[list[str]]
) -> None:
    await hypercorn_serve(app, config, shutdown_trigger=trigger, task_status=task_status)


async def stop_on_signals(
    graceful: Callable[[], None],
    at_once: Callable[[], None],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Until cancelled: the first SIGINT or SIGTERM calls ``graceful``, any later one
    ``at_once``. Reports once the handlers are installed."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        count = 0
        async for signum in signals:
            count += 1
            if count == 1:
                log.info("received %s: shutting down", signal.Signals(signum).name)
                graceful()
            else:
                log.warning("second signal: stopping now")
                at_once()


async def run_server(
    config: Config, *, task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run a server for ``config``; ``await nursery.start(run_server, config)`` gives
    the running :class:`Server` once every listener is up."""
    await Server(config).run(task_status=task_status)
