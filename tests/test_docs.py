"""The documentation stays true to the code: every setting documented, every
section the code points to present, the shipped systemd unit accepted by systemd."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from duck.config import Config

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _setting_rows() -> set[str]:
    text = (DOCS / "settings.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", text, re.MULTILINE))


def test_every_setting_is_documented_and_nothing_else() -> None:
    fields = {f.name for f in attrs.fields(Config)}
    rows = _setting_rows()
    assert sorted(fields - rows) == [], "settings missing from docs/settings.md"
    assert sorted(rows - fields) == [], "docs/settings.md names settings duck lacks"


def test_documented_flags_exist() -> None:
    from duck.cli import build_parser

    parser = build_parser()
    serve = next(a for a in parser._actions if a.dest == "command").choices["serve"]
    flags = {o for a in serve._actions for o in a.option_strings}
    text = (DOCS / "settings.md").read_text(encoding="utf-8")
    for key, flag in re.findall(r"^\| `([a-z0-9_]+)` \| [^|]+ \| ([^|]+) \|", text,
                                re.MULTILINE):
        flag = flag.strip()
        expected = "--" + key.replace("_", "-")
        if flag == "—":
            assert expected not in flags, f"{key} has a flag the page does not show"
        else:
            assert flag == f"`{expected}`" and expected in flags, key


def _headings(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {h.strip() for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


def test_references_from_the_code_resolve() -> None:
    missing = []
    for path in sorted((ROOT / "duck").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "DESIGN.md" not in text, f"{path}: points to a file the repository lacks"
        for doc in set(re.findall(r"docs/([a-z_]+\.md)", text)):
            if not (DOCS / doc).exists():
                missing.append(f"{path.relative_to(ROOT)}: docs/{doc}")
        # A section named in quotes (across a comment's line break too).
        flat = re.sub(r"\s*\n\s*(?:#:?|\*)?\s*", " ", text)
        for doc, section in re.findall(r'docs/([a-z_]+\.md), "([^"]+)"', flat):
            if (DOCS / doc).exists() and section not in _headings(DOCS / doc):
                missing.append(f"{path.relative_to(ROOT)}: docs/{doc}, {section!r}")
    assert missing == []


def test_docs_link_to_existing_files() -> None:
    for page in DOCS.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\b(docs/[a-z_]+\.md|contrib/[\w.]+)", text):
            assert (ROOT / target).exists(), f"{page.name} names {target}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not on this machine")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = (ROOT / "contrib" / "duck.service").read_text(encoding="utf-8")
    start = re.search(r"^ExecStart=(\S+)", unit, re.MULTILINE)
    assert start is not None and start.group(1) == "/opt/duck/venv/bin/duck"
    # verify also checks that the program exists: point it at this interpreter
    # running duck's CLI, leaving every other line as shipped.
    local = unit.replace("ExecStart=/opt/duck/venv/bin/duck",
                         f"ExecStart={sys.executable} -m duck.cli")
    (tmp_path / "duck.service").write_text(local, encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "duck.service")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "duck.service" not in done.stderr, done.stderr  # no warnings about the unit
