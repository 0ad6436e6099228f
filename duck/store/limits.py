"""Caps on per-user resources that more than one room of the store enforces."""

from __future__ import annotations

#: Most mailboxes one user may have (docs/architecture.md, "Per-user caps").
MAX_MAILBOXES = 10000
