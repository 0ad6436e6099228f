"""The README's settings table lists every setting duck/config.py has (issue 15)."""

from __future__ import annotations

from pathlib import Path

import attrs

from duck.config import Config

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_has_a_row() -> None:
    rows = [line for line in README.read_text(encoding="utf-8").splitlines()
            if line.startswith("| ")]
    keys = {cell.strip().strip("`") for row in rows for cell in row.split("|")[2:3]}
    # A row may name several keys ("`tls_cert`, `tls_key`").
    named = {part.strip().strip("`") for key in keys for part in key.split(",")}
    missing = [f.name for f in attrs.fields(Config) if f.name not in named]
    assert missing == [], f"settings without a row in README.md's table: {missing}"
