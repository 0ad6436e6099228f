"""IMAP command handlers, one module per command family (importing registers them)."""

from . import (  # noqa: F401  (imported for their registrations)
    acl,
    append,
    auth,
    compress,
    expunge,
    fetch,
    general,
    idle,
    mailbox,
    metadata,
    notify,
    quota,
    search,
    select,
    sort,
    store,
    transfer,
    urlauth,
)
from .registry import REGISTRY, Entry

__all__ = ["REGISTRY", "Entry"]
