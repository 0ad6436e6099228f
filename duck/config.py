"""Server configuration: defaults < TOML file (``--config``) < ``DUCK_*`` env < flags."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import attrs

from .outbound.smtp import TLS_MODES, parse_relay

#: More worker processes than this is a typo, not a deployment.
MAX_WORKERS = 256


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


@attrs.define
class Config:
    """Everything ``duck serve`` needs. Port 0 means "any free port" (tests)."""

    data_dir: Path = attrs.field(default=Path("duck-data"), converter=Path)
    host: str = "127.0.0.1"
    imap_port: int = 1143
    #: 0 disables the implicit-TLS listener.
    imaps_port: int = 1993
    lmtp_port: int = 2424
    #: POP3 with STLS, and POP3 over implicit TLS; 0 disables either.
    pop3_port: int = 1110
    pop3s_port: int = 1995
    #: ManageSieve (RFC 5804) with STARTTLS (4190, its IANA port), and over
    #: implicit TLS (no IANA port: off unless set); 0 disables either.
    managesieve_port: int = 4190
    managesieves_port: int = 0
    lmtp_host: str = "127.0.0.1"
    #: Postfix socketmap recipient lookups (duck/mta/socketmap.py); 0 (the default)
    #: disables it. docs suggest 2425.
    socketmap_port: int = 0
    socketmap_host: str = "127.0.0.1"
    api_port: int = 8080
    api_host: str = "127.0.0.1"
    mongo_uri: str | None = None
    database: str = "duck"
    embedded_engine: str = "rust"
    embedded_cache_size: str = "256M"
    #: The embedded (Rust) server's write-ahead log file, preallocated in full and
    #: read through at every start: smaller starts faster (duck/store/engine/embedded.py).
    embedded_log_file_max: str = "100MB"
    log_level: str = "INFO"
    #: ``text`` lines, or ``json`` lines (one object per line; duck/logs.py).
    log_format: str = "text"
    hostname: str = "localhost"
    tls_cert: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    tls_key: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    #: Allow LOGIN/AUTHENTICATE without TLS from non-loopback clients.
    allow_plaintext_auth: bool = False
    #: Networks allowed to connect to LMTP (CIDR strings).
    lmtp_networks: list[str] = attrs.Factory(lambda: ["127.0.0.0/8", "::1/128"])
    #: Largest accepted message (APPENDLIMIT, LMTP SIZE), bytes.
    max_message_size: int = 64 * 1024 * 1024
    #: Octets of command literals all IMAP sessions of a process hold at once (an
    #: APPEND streamed into the store counts a fixed share); clients beyond it wait
    #: their turn (duck/imap/limits.py).
    literal_memory: int = 512 * 1024 * 1024
    #: Seconds in-flight work may take to finish at shutdown.
    shutdown_grace: float = 10.0
    #: Server processes sharing the listening ports (duck/workers.py); 1 serves in
    #: this process. Per-process limits below apply per worker.
    workers: int = 1
    #: Each serving process's event-loop thread at the lowest real-time priority
    #: (SCHED_FIFO 1) where the system allows it and a CPU is left over for the rest
    #: (duck/realtime.py).
    loop_realtime: bool = True
    #: Journal retention in seconds (SSE replay, QRESYNC); 7 days.
    journal_retention: int = 7 * 24 * 3600
    #: SEARCH substring index (trigrams): fast BODY/TEXT/FROM searches at the cost
    #: of slower delivery and COPY (duck/store/index/textindex.py has the figures).
    search_index: bool = False
    #: API access token; without one the API serves loopback clients only.
    api_token: str | None = None
    #: IMAP connections allowed per client address and per user (per process).
    imap_max_connections_per_ip: int = 64
    imap_max_connections_per_user: int = 32
    #: Seconds between SSE heartbeats (comment lines that keep proxies from cutting).
    sse_heartbeat: float = 15.0
    #: Live SSE streams one user may have on one process.
    sse_max_per_user: int = 256
    #: Seconds between webhook queue scans (deliveries are also sent as slots free).
    webhook_poll_interval: float = 0.5
    #: Seconds a webhook endpoint gets to answer before the attempt counts as failed.
    webhook_timeout: float = 10.0
    #: Webhook POSTs in flight at once per process.
    webhook_concurrency: int = 8
    #: What POP3's QUIT does with deleted messages: "expunge", or "trash" (move
    #: them to the user's \\Trash folder).
    pop3_delete_mode: str = "expunge"
    #: Seconds a POP3 maildrop lease lasts unless renewed (a session renews it at a
    #: third of this; a crashed process blocks the maildrop at most this long).
    pop3_lease_seconds: float = 60.0
    #: RFC 2449 LOGIN-DELAY: least seconds between two POP3 sessions on one
    #: maildrop; 0 for none.
    pop3_login_delay: int = 0
    #: RFC 2449 EXPIRE: "NEVER" (mail stays until deleted), or a number of days;
    #: 0 removes retrieved messages at QUIT.
    pop3_expire: str = "NEVER"
    #: The SMTP relay that Sieve redirects and vacation replies go through
    #: ("host:port"); unset, they wait in the outbound queue and nothing is sent.
    smtp_relay: str | None = None
    #: "starttls" (required of the relay), "tls" (implicit, e.g. port 465) or "none".
    smtp_relay_tls: str = "starttls"
    #: AUTH to the relay (PLAIN, LOGIN or CRAM-MD5, as it offers); the password is
    #: read from a file so that it is in neither the config nor the command line.
    smtp_relay_user: str | None = None
    smtp_relay_password_file: Path | None = attrs.field(
        default=None, converter=attrs.converters.optional(Path))
    #: CA certificates to verify the relay with (the system's by default);
    #: smtp_relay_verify = false accepts any certificate.
    smtp_relay_ca_file: Path | None = attrs.field(
        default=None, converter=attrs.converters.optional(Path))
    smtp_relay_verify: bool = True
    #: Seconds each relay reply may take (the final dot's: ten times this, at
    #: most 600).
    smtp_relay_timeout: float = 30.0
    #: Seconds a queued message is retried before its recipients are given up
    #: and it is marked failed (RFC 5321 §4.5.4.1: 4-5 days); at most 30 days.
    outbound_max_age: float = 5 * 24 * 3600.0
    #: First retry delay in seconds; each next one doubles, up to an hour.
    outbound_retry_base: float = 60.0
    #: Longest seconds between looks at the queue (messages queued by other
    #: processes; this process's own wake its sender at once).
    outbound_poll_interval: float = 10.0
    #: Days an expunged message (or one of a deleted mailbox) is kept in the archive,
    #: restorable through the API, before the background purge; 0 deletes at once.
    archive_days: int = 14
    #: Seconds between background maintenance passes (archive purge, body sweep);
    #: one process at a time runs them, under a lease.
    maintenance_interval: float = 3600.0
    #: Days the authentication log keeps each login attempt (a TTL index).
    authlog_days: int = 30
    #: Failed logins per user name / per client address within
    #: ``login_window_seconds`` before logins are refused until the window ends;
    #: counted in the database, across every duck process.
    login_user_limit: int = 20
    login_peer_limit: int = 100
    login_window_seconds: int = 900
    #: Seconds a failed login's answer is held back: doubling from this, at most
    #: ``login_delay_max`` (successful logins are never delayed).
    login_delay_base: float = 0.25
    login_delay_max: float = 5.0
    #: Default lifetime of a user's API token, seconds.
    api_token_ttl: int = 24 * 3600

    def validate(self) -> Config:
        """Check value ranges; raise ConfigError naming the bad key."""
        for key in ("imap_port", "imaps_port", "lmtp_port", "api_port", "pop3_port",
                    "pop3s_port", "managesieve_port", "managesieves_port", "socketmap_port"):
            value = getattr(self, key)
            if not isinstance(value, int) or not 0 <= value <= 65535:
                raise ConfigError(f"{key}: not a port number: {value!r}")
        if self.embedded_engine not in ("rust", "python"):
            raise ConfigError(
                f"embedded_engine: must be rust or python, not {self.embedded_engine!r}"
            )
        if not re.fullmatch(r"\d+[KMG]B?", str(self.embedded_log_file_max), re.IGNORECASE):
            raise ConfigError(f"embedded_log_file_max: not a size like 100MB: "
                              f"{self.embedded_log_file_max!r}")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format: must be text or json, not {self.log_format!r}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"log_level: unknown level {self.log_level!r}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key must be given together")
        if self.max_message_size <= 0:
            raise ConfigError("max_message_size: must be positive")
        if self.literal_memory < 1024 * 1024:
            raise ConfigError("literal_memory: at least 1 MiB")
        if not isinstance(self.workers, int) or not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError(f"workers: must be 1 to {MAX_WORKERS}, not {self.workers!r}")
        if self.pop3_delete_mode not in ("expunge", "trash"):
            raise ConfigError(
                f"pop3_delete_mode: must be expunge or trash, not {self.pop3_delete_mode!r}")
        if not self.pop3_lease_seconds >= 1:
            raise ConfigError("pop3_lease_seconds: must be at least 1")
        if not isinstance(self.pop3_login_delay, int) or self.pop3_login_delay < 0:
            raise ConfigError("pop3_login_delay: must be a non-negative number of seconds")
        self.pop3_expire = str(self.pop3_expire).strip().upper()
        if self.pop3_expire != "NEVER" and not (
                self.pop3_expire.isdigit() and len(self.pop3_expire) < 6):
            raise ConfigError(f"pop3_expire: must be NEVER or days, not {self.pop3_expire!r}")
        self._validate_outbound()
        if not isinstance(self.archive_days, int) or not 0 <= self.archive_days <= 36500:
            raise ConfigError(f"archive_days: must be 0 to 36500, not {self.archive_days!r}")
        if not self.maintenance_interval >= 1:
            raise ConfigError("maintenance_interval: must be at least 1 second")
        for key in ("authlog_days", "login_user_limit", "login_peer_limit",
                    "login_window_seconds", "api_token_ttl"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be a positive integer")
        if not 0 <= self.login_delay_base <= self.login_delay_max <= 60:
            raise ConfigError("login_delay_base, login_delay_max: 0 <= base <= max <= 60")
        if self.api_token is None and not _loopback(self.api_host):
            raise ConfigError(
                f"api_host: {self.api_host!r} is not a loopback address; set api_token "
                "to serve the API beyond this host"
            )
        if self.api_token is not None and len(self.api_token) < 16:
            raise ConfigError("api_token: must be at least 16 characters")
        return self


    def _validate_outbound(self) -> None:
        if self.smtp_relay is not None:
            try:
                relay_host, _ = parse_relay(self.smtp_relay)
            except ValueError as exc:
                raise ConfigError(f"smtp_relay: {exc}") from exc
            if self.smtp_relay_tls not in TLS_MODES:
                raise ConfigError(f"smtp_relay_tls: must be one of {', '.join(TLS_MODES)}, "
                                  f"not {self.smtp_relay_tls!r}")
            if (self.smtp_relay_user is not None and self.smtp_relay_tls == "none"
                    and not _loopback(relay_host)):
                raise ConfigError("smtp_relay_user: AUTH in clear text to a relay beyond "
                                  "this host; set smtp_relay_tls to starttls or tls")
        if (self.smtp_relay_user is None) != (self.smtp_relay_password_file is None):
            raise ConfigError("smtp_relay_user and smtp_relay_password_file go together")
        if not 0 < self.smtp_relay_timeout <= 600:
            raise ConfigError("smtp_relay_timeout: must be 0 to 600 seconds")
        if not 0 < self.outbound_max_age <= 30 * 24 * 3600:
            raise ConfigError("outbound_max_age: must be up to 30 days (in seconds)")
        if not 0 < self.outbound_retry_base <= 3600:
            raise ConfigError("outbound_retry_base: must be 0 to 3600 seconds")
        if not 0 < self.outbound_poll_interval <= 3600:
            raise ConfigError("outbound_poll_interval: must be 0 to 3600 seconds")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_FIELDS = {f.name: f for f in attrs.fields(Config)}


def _coerce(key: str, value: Any) -> Any:
    field = _FIELDS[key]
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind.startswith("list"):
            if isinstance(value, str):
                return [item.strip() for item in value.split(",") if item.strip()]
            return list(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}: invalid value {value!r}") from exc
    return value


def load_config(
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Build the configuration from file, environment (``DUCK_<KEY>``) and overrides."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            with open(config_file, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
        for key, value in data.items():
            key = key.replace("-", "_")
            if key not in _FIELDS:
                raise ConfigError(f"unknown configuration key {key!r} in {config_file}")
            values[key] = _coerce(key, value)
    env = os.environ if environ is None else environ
    for key in _FIELDS:
        name = f"DUCK_{key.upper()}"
        if name in env:
            values[key] = _coerce(key, env[name])
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _coerce(key, value)
    return Config(**values).validate()
