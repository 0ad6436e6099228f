"""The outbound settings: flags, environment, validation, and the sender in
``duck serve`` (started only with a relay, sending through it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from duck.cli import _config, build_parser
from duck.config import Config, ConfigError, load_config
from duck.outbound.smtp import parse_relay
from duck.server import Server, relay_settings
from tests.outbound.smtp_sink import SmtpSink


def test_flag_and_environment() -> None:
    args = build_parser().parse_args(["serve", "--smtp-relay", "relay.example.org:587",
                                      "--smtp-relay-tls", "tls"])
    config = _config(args)
    assert (config.smtp_relay, config.smtp_relay_tls) == ("relay.example.org:587", "tls")
    env = {"DUCK_SMTP_RELAY": "[::1]:25", "DUCK_OUTBOUND_MAX_AGE": "3600",
           "DUCK_SMTP_RELAY_VERIFY": "false"}
    config = load_config(environ=env)
    assert config.smtp_relay == "[::1]:25" and config.outbound_max_age == 3600
    assert config.smtp_relay_verify is False
    assert load_config(environ={}).smtp_relay is None


@pytest.mark.parametrize("value, expected", [
    ("relay:25", ("relay", 25)), ("[2001:db8::1]:587", ("2001:db8::1", 587)),
    (" 10.0.0.1:465 ", ("10.0.0.1", 465)),
])
def test_parse_relay(value: str, expected: tuple[str, int]) -> None:
    assert parse_relay(value) == expected


@pytest.mark.parametrize("overrides, key", [
    ({"smtp_relay": "relay"}, "smtp_relay"),
    ({"smtp_relay": "relay:0"}, "smtp_relay"),
    ({"smtp_relay": "relay:x"}, "smtp_relay"),
    ({"smtp_relay": "relay:25", "smtp_relay_tls": "ssl"}, "smtp_relay_tls"),
    ({"smtp_relay": "relay.example.org:25", "smtp_relay_tls": "none",
      "smtp_relay_user": "u", "smtp_relay_password_file": "pw"}, "clear text"),
    ({"smtp_relay": "relay:25", "smtp_relay_user": "u"}, "smtp_relay_password_file"),
    ({"outbound_max_age": 0}, "outbound_max_age"),
    ({"outbound_max_age": 31 * 86400}, "outbound_max_age"),
    ({"smtp_relay_timeout": 0}, "smtp_relay_timeout"),
])
def test_bad_settings(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config(overrides=overrides, environ={})


def test_relay_settings_read_the_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "relay-password"
    secret.write_text("pa ss\n")
    config = load_config(environ={}, overrides={
        "smtp_relay": "127.0.0.1:2525", "smtp_relay_tls": "none", "smtp_relay_user": "duck",
        "smtp_relay_password_file": str(secret), "hostname": "mx.example.com"})
    relay = relay_settings(config)
    assert (relay.host, relay.port, relay.user, relay.password) == (
        "127.0.0.1", 2525, "duck", "pa ss")
    assert relay.helo == "mx.example.com" and relay.tls == "none"
    assert relay.final_timeout == 300


async def test_serve_sends_the_queue_through_the_relay(
        mongo_uri: str, db_name: str, tmp_path: Path, nursery: trio.Nursery) -> None:
    sink = SmtpSink()
    port = await nursery.start(sink.serve)
    config = Config(data_dir=tmp_path / "data", imap_port=0, imaps_port=0, lmtp_port=0,
                    pop3_port=0, pop3s_port=0, managesieve_port=0, api_port=0, mongo_uri=mongo_uri,
                    database=db_name, shutdown_grace=1.0, smtp_relay=f"127.0.0.1:{port}",
                    smtp_relay_tls="none").validate()
    server: Server = await nursery.start(Server(config).run)
    try:
        assert server.outbound is not None and server.store is not None
        await server.store.outbound.enqueue("", ["bob@example.org"], b"Subject: x\r\n\r\nx\r\n",
                                            kind="vacation")
        (got,) = await sink.wait_for(1)
        assert got.recipients == ("bob@example.org",)
    finally:
        assert server.store is not None
        database = server.store.database
        await database.run_threaded(database.client.drop_database, db_name)
        server.request_shutdown()


async def test_no_relay_no_sender(duck_server: Server) -> None:
    assert duck_server.outbound is None
