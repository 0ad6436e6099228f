"""The mail store: the only package that imports pymongo, bson or gridfs.

Protocols use this public API and the store's own models; the store never
imports a protocol (DESIGN.md, "Layers").
"""

from .addresses import normalize_address, split_detail
from .database import STORE_LIMITER, Database, set_store_concurrency
from .embedded import EmbeddedDatabase
from .errors import (
    AlreadyExists,
    AuthenticationFailed,
    InvalidInput,
    NotFound,
    OverQuota,
    StoreError,
    StoreUnavailable,
    TooBig,
)
from .store import Store, open_store
from .users import ResolvedAddress, User, Users

__all__ = [
    "STORE_LIMITER",
    "AlreadyExists",
    "AuthenticationFailed",
    "Database",
    "EmbeddedDatabase",
    "InvalidInput",
    "NotFound",
    "OverQuota",
    "ResolvedAddress",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TooBig",
    "User",
    "Users",
    "normalize_address",
    "open_store",
    "set_store_concurrency",
    "split_detail",
]
