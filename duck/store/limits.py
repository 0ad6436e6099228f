"""Caps on per-user resources that more than one room of the store enforces."""

from __future__ import annotations

#: Most mailboxes one user may have (a per-user cap, DESIGN.md house style).
MAX_MAILBOXES = 10000
