"""The layer rules of docs/architecture.md, enforced."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DUCK = ROOT / "duck"


@pytest.mark.parametrize("module", ["duck.imap.grammar", "duck.mime", "duck.sieve",
                                    "duck.managesieve.protocol"])
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


def _absolute_imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved (``from . import x``
    names ``package.x``)."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join((*base, *(node.module.split(".") if node.module else ())))
            if node.module:
                found.add(module)
            else:
                found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_store_and_mime_import_no_protocol() -> None:
    offenders = []
    for package in ("store", "mime"):
        for path in (DUCK / package).rglob("*.py"):
            for module in _absolute_imports(path):
                # mime imports nothing else of duck; the store may import only mime.
                allowed = ("duck.mime",) if package == "mime" else ("duck.mime", "duck.store")
                if module.startswith("duck") and not module.startswith(allowed):
                    offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []


def test_sieve_imports_nothing_else_of_duck() -> None:
    # The Sieve language is pure: the caller brings the message and the store.
    offenders = [f"{path.relative_to(ROOT)}: {module}"
                 for path in (DUCK / "sieve").rglob("*.py")
                 for module in _absolute_imports(path)
                 if module.startswith("duck") and not module.startswith("duck.sieve")]
    assert offenders == []


STORE = DUCK / "store"

#: The store's rooms and the rooms each may import (duck/store/__init__.py).
#: "vocabulary" is errors.py, models.py and limits.py; "top" is store.py, admin.py
#: and the package's __init__.
STORE_ROOMS: dict[str, set[str]] = {
    "vocabulary": set(),
    "engine": {"vocabulary"},
    "accounts": {"engine", "vocabulary"},
    "index": {"engine", "vocabulary"},
    "push": {"engine", "vocabulary"},
    "mail": {"accounts", "index", "push", "engine", "vocabulary"},
    "outbound": {"engine", "vocabulary"},
    "sieve": {"engine", "vocabulary"},
    "top": {"mail", "accounts", "index", "push", "outbound", "sieve", "engine", "vocabulary"},
}
_VOCABULARY = {"errors", "models", "limits", "rights"}


def _room(module: str) -> str:
    """The room of a dotted module name below duck.store."""
    parts = module.split(".")[2:]
    if parts and parts[0] in STORE_ROOMS:
        return parts[0]
    return "vocabulary" if parts and parts[0] in _VOCABULARY else "top"


def _room_offenders(path: Path, module_name: str) -> list[str]:
    own = _room(module_name)
    return [
        f"{module_name} ({own}) -> {module} ({_room(module)})"
        for module in _absolute_imports(path)
        if module.startswith("duck.store")
        and _room(module) != own
        and _room(module) not in STORE_ROOMS[own]
    ]


def test_store_rooms_import_down_only() -> None:
    modules = sorted(STORE.rglob("*.py"))
    rooms = {p.relative_to(STORE).parts[0] for p in modules if len(p.relative_to(STORE).parts) > 1}
    assert rooms == set(STORE_ROOMS) - {"vocabulary", "top"}, "a room the test does not order"
    offenders = []
    for path in modules:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        offenders += _room_offenders(path, name)
    assert offenders == []


@pytest.mark.parametrize(
    "form",
    ["from ..mail import flags", "from ..mail.flags import x",
     "from duck.store.push import journal", "from .. import store", "import duck.store.index"],
)
def test_store_room_rule_sees_an_upward_import(form: str) -> None:
    # The rule is only as good as its import reader: an upward import from the engine,
    # in each form the store uses, must be seen.
    probe = STORE / "engine" / "_layers_probe.py"
    probe.write_text(form + "\n", encoding="utf-8")
    try:
        assert _room_offenders(probe, "duck.store.engine._layers_probe"), form
    finally:
        probe.unlink()


def test_imap_commands_and_session_do_not_import_each_other() -> None:
    # What both need (Done, State, the command context) is in duck/imap/context.py.
    offenders = [
        str(path.relative_to(ROOT))
        for path in (DUCK / "imap" / "commands").glob("*.py")
        if "duck.imap.session" in _absolute_imports(path)
    ]
    assert offenders == []
    context = _absolute_imports(DUCK / "imap" / "context.py")
    assert not any(m.startswith(("duck.imap.session", "duck.imap.commands")) for m in context)


@pytest.mark.parametrize("module", ["duck.pop3.protocol", "duck.pop3.multiline",
                                    "duck.pop3.maildrop"])
def test_pop3_sans_io_modules_import_no_io(module: str) -> None:
    # LMTP's shape (docs/architecture.md): the protocol machine does no I/O.
    test_bottom_layers_import_no_io(module)


def test_pop3_imports_no_other_protocol() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in (DUCK / "pop3").glob("*.py")
        for module in _absolute_imports(path)
        if module.startswith(("duck.imap", "duck.lmtp", "duck.api"))
    ]
    assert offenders == []


@pytest.mark.parametrize("module", ["duck.outbound.autoreply", "duck.outbound.smtp"])
def test_outbound_pure_modules_import_no_io(module: str) -> None:
    # The RFC 3834 rules and the SMTP client are usable from any layer (the Sieve
    # interpreter, LMTP delivery, the API): no trio, no database.
    test_bottom_layers_import_no_io(module)


def test_outbound_imports_no_protocol_and_only_the_store_api() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in (DUCK / "outbound").glob("*.py")
        for module in _absolute_imports(path)
        if module.startswith(("duck.imap", "duck.lmtp", "duck.api", "duck.pop3",
                              "duck.server", "duck.store."))
    ]
    assert offenders == []


def test_rules_import_no_protocol() -> None:
    # Mail rules sit between the protocols that deliver and the store.
    protocols = ("duck.imap", "duck.lmtp", "duck.pop3", "duck.api", "duck.managesieve",
                 "duck.server", "duck.cli")
    offenders = [f"{path.relative_to(ROOT)}: {module}"
                 for path in (DUCK / "rules").rglob("*.py")
                 for module in _absolute_imports(path)
                 if module.startswith(protocols)]
    assert offenders == []
