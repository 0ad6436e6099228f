"""The protocol half of duck.lmtp does no I/O: it imports neither trio nor the store."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", [
    "duck.lmtp.protocol", "duck.lmtp.backend", "duck.lmtp.address", "duck.lmtp.dotstuff",
])
def test_sans_io_modules_import_no_io(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in ('trio', 'pymongo', 'bson', 'gridfs', 'duck.store', "
        "'socket', 'ssl') if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"
