"""Configuration precedence: defaults < TOML file < DUCK_* environment < flags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from duck.cli import build_parser, main
from duck.config import Config, ConfigError, load_config


def test_defaults_are_unprivileged_and_never_zero() -> None:
    config = load_config(environ={})
    ports = [config.imap_port, config.imaps_port, config.lmtp_port, config.api_port]
    assert ports == [1143, 1993, 2424, 8080]
    assert all(p > 1024 for p in ports)
    assert config.host == "127.0.0.1" and config.data_dir == Path("duck-data")


def test_precedence(tmp_path: Path) -> None:
    toml = tmp_path / "duck.toml"
    toml.write_text('imap_port = 2000\nlmtp_port = 2001\napi-port = 2002\nlog_level = "DEBUG"\n')
    env = {"DUCK_LMTP_PORT": "3001", "DUCK_API_PORT": "3002"}
    config = load_config(toml, {"api_port": 4002, "imap_port": None}, environ=env)
    assert (config.imap_port, config.lmtp_port, config.api_port) == (2000, 3001, 4002)
    assert config.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("imap_port = 70000\n", "imap_port"),
        ('embedded_engine = "java"\n', "embedded_engine"),
        ("no_such_key = 1\n", "no_such_key"),
        ("imap_port = [\n", "cannot read"),
    ],
)
def test_bad_file(tmp_path: Path, text: str, message: str) -> None:
    toml = tmp_path / "duck.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(toml, environ={})


def test_bad_environment() -> None:
    with pytest.raises(ConfigError, match="imap_port"):
        load_config(environ={"DUCK_IMAP_PORT": "many"})
    assert load_config(environ={"DUCK_ALLOW_PLAINTEXT_AUTH": "yes"}).allow_plaintext_auth


def test_flags_reach_the_config() -> None:
    args = build_parser().parse_args(
        ["serve", "--imap-port", "0", "--imaps-port", "0", "--embedded-engine", "python"]
    )
    assert (args.imap_port, args.imaps_port, args.embedded_engine) == (0, 0, "python")
    assert isinstance(Config(), Config)


def test_cli_rejects_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "duck.toml"
    toml.write_text("api_port = -1\n")
    assert main(["serve", "--config", str(toml)]) == 2
    assert "api_port" in capsys.readouterr().err


def test_user_create_command(tmp_path: Path, mongo_uri: str, db_name: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    password = tmp_path / "pw"
    password.write_text("s3cret\n")
    common = ["--mongo-uri", mongo_uri, "--database", db_name, "--password-file", str(password)]
    assert main(["user", "create", "Admin@Example.com", *common]) == 0
    user_id = capsys.readouterr().out.strip()
    assert len(user_id) == 24
    assert main(["user", "create", "admin@example.com", *common]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["user", "create", "not-an-address", *common]) == 1


def test_api_beyond_loopback_needs_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--api-host", "0.0.0.0", "--imap-port", "0"]) == 2
    assert "api_token" in capsys.readouterr().err
    token = "t0ken-long-enough-1234"
    config = load_config(overrides={"api_host": "0.0.0.0", "api_token": token}, environ={})
    assert config.api_token == token


def test_serve_reports_startup_errors_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500&connectTimeoutMS=500"
    argv = ["serve", "--mongo-uri", uri, "--data-dir", str(tmp_path), "--imap-port", "0",
            "--imaps-port", "0", "--lmtp-port", "0", "--api-port", "0"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "duck: database unavailable" in err and "Traceback" not in err
    # The serving loop's real-time priority (duck/realtime.py) is this thread's no more.
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
