"""The layer rules of DESIGN.md, enforced."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DUCK = ROOT / "duck"


@pytest.mark.parametrize("module", ["duck.imap.grammar", "duck.mime"])
def test_bottom_layers_import_no_io(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in ('trio', 'pymongo', 'bson', 'gridfs', 'duck.store') "
        "if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"


_IMPORT = re.compile(r"^\s*(?:from|import)\s+([\w.]+)", re.MULTILINE)


def _imports(path: Path) -> set[str]:
    return set(_IMPORT.findall(path.read_text(encoding="utf-8")))


def test_only_the_store_imports_pymongo() -> None:
    offenders = []
    for path in DUCK.rglob("*.py"):
        if "store" in path.relative_to(DUCK).parts[:1]:
            continue
        if any(m.split(".")[0] in ("pymongo", "bson", "gridfs") for m in _imports(path)):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_store_and_mime_import_no_protocol() -> None:
    offenders = []
    for package in ("store", "mime"):
        for path in (DUCK / package).rglob("*.py"):
            for module in _imports(path):
                # mime imports nothing else of duck; the store may import only mime.
                relative_up = module.startswith("..") and (
                    package == "mime" or not module.startswith("..mime")
                )
                absolute_up = re.match(r"duck\.(imap|lmtp|api|server|cli)\b", module)
                if absolute_up or relative_up:
                    offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []
