"""The grammar is a bottom layer: it imports neither trio nor pymongo
(docs/architecture.md, "Layers")."""

from __future__ import annotations

import subprocess
import sys


def test_grammar_imports_no_io_or_database_library() -> None:
    code = (
        "import sys, duck.imap.grammar\n"
        "bad = sorted(m for m in ('trio', 'pymongo', 'bson', 'gridfs') if m in sys.modules)\n"
        "duck = sorted(m for m in sys.modules if m.startswith('duck.') and\n"
        "              not m.startswith('duck.imap.grammar') and m != 'duck.imap')\n"
        "print(bad, duck)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"


def test_grammar_sources_import_only_stdlib_and_attrs() -> None:
    import ast
    import pathlib

    import duck.imap.grammar as g

    allowed_third_party = {"attrs"}
    root = pathlib.Path(g.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module.split(".")[0]]
            else:
                continue
            for name in names:
                assert name in sys.stdlib_module_names or name in allowed_third_party, (
                    f"{path.name} imports {name}"
                )
