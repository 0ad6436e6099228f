"""The mail store: the only package that imports pymongo, bson or gridfs.

Protocols use this public API and the store's own models; the store never
imports a protocol (DESIGN.md, "Layers").
"""

from . import query
from .addresses import normalize_address, split_detail
from .bodies import SweepReport
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
from .events import Cursor, FeedBatch, MailboxCounters, MessageMeta, UserEvent
from .ingest import Ingest
from .mailboxes import DELIMITER, INBOX, normalize_path
from .models import (
    FETCH_FIELDS,
    SPECIAL_USES,
    SYSTEM_FLAGS,
    AppendResult,
    CopyResult,
    Delivered,
    DeliveryTarget,
    FlagChange,
    Ingested,
    JournalEntry,
    Mailbox,
    MessageRecord,
    MessageSummary,
    Segment,
    StoreFlagsResult,
)
from .store import Store, open_store
from .users import ResolvedAddress, User, Users
from .webhooks import EVENT_TYPES, Delivery, Hook, HookEvent

__all__ = [
    "DELIMITER",
    "EVENT_TYPES",
    "FETCH_FIELDS",
    "INBOX",
    "SPECIAL_USES",
    "STORE_LIMITER",
    "SYSTEM_FLAGS",
    "AlreadyExists",
    "AppendResult",
    "AuthenticationFailed",
    "CopyResult",
    "Cursor",
    "Database",
    "Delivered",
    "Delivery",
    "DeliveryTarget",
    "EmbeddedDatabase",
    "FeedBatch",
    "FlagChange",
    "Hook",
    "HookEvent",
    "Ingest",
    "Ingested",
    "InvalidInput",
    "JournalEntry",
    "Mailbox",
    "MailboxCounters",
    "MessageMeta",
    "MessageRecord",
    "MessageSummary",
    "NotFound",
    "OverQuota",
    "ResolvedAddress",
    "Segment",
    "Store",
    "StoreError",
    "StoreFlagsResult",
    "StoreUnavailable",
    "SweepReport",
    "TooBig",
    "User",
    "UserEvent",
    "Users",
    "normalize_address",
    "normalize_path",
    "open_store",
    "query",
    "set_store_concurrency",
    "split_detail",
]
