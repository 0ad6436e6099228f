"""The mail store: the only package that imports pymongo, bson or gridfs.

Protocols use this public API and the store's own models; the store never
imports a protocol (docs/architecture.md, "Layers").

Inside, the store is laid out in rooms that show its data flow; arrows point
down only (``tests/test_layers.py`` holds the order):

- top: ``store.py`` (the one object the protocols hold), ``admin.py`` (account
  administration across rooms) and this public API;
- ``mail/``: the write side (mailboxes, delivery, APPEND/COPY/EXPUNGE, flags);
- ``accounts/`` (users, passwords, addresses, quota), ``index/`` (the read side:
  query model, digest, SEARCH and FETCH reads) and ``push/`` (journal, notifier,
  change feed, webhooks), side by side: none of the three uses another;
- ``outbound/``: mail duck sends itself (the outbound queue, vacation memory);
  it uses only ``engine``;
- ``sieve/``: users' Sieve scripts (one active) and the duplicate memory; it
  uses only ``engine`` too;
- ``engine/``: the database, the embedded server, schema, ids, GridFS bodies;
- the vocabulary every room speaks: ``errors.py``, ``models.py``, ``limits.py``.
"""

from . import rights
from .accounts.addresses import normalize_address, split_detail
from .accounts.apitokens import ApiToken, NewApiToken
from .accounts.apppasswords import SCOPES, AppPassword, NewAppPassword
from .accounts.authenticate import AuthResult, ScramLogin, Throttled, TwoFactorRequired
from .accounts.authlog import AuthEvent
from .accounts.loginthrottle import ThrottlePolicy
from .accounts.scram import MECHANISM as SCRAM_SHA_256
from .accounts.totp import TotpSetup
from .accounts.users import ResolvedAddress, User, Users
from .backup import BackupReport, read_manifest
from .doctor import DoctorReport, Finding
from .engine import metrics
from .engine.bodies import SweepReport
from .engine.database import STORE_THREADS, Database, set_store_concurrency
from .engine.embedded import EmbeddedDatabase, EmbeddedDatabaseError
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
from .index import query, textindex
from .mail.acl import SHARED_OWNER, SharedMailbox, rights_of
from .mail.flags import normalize_flag
from .mail.imports import Imports
from .mail.ingest import Ingest
from .mail.leases import Lease, Leases, Refusal
from .mail.mailboxes import DELIMITER, INBOX, normalize_path
from .mail.metadata import Metadata, MetadataTooLarge, MetadataTooMany, valid_entry
from .models import (
    FETCH_FIELDS,
    SPECIAL_USES,
    SYSTEM_FLAGS,
    AppendResult,
    ArchivedMessage,
    CopyResult,
    Delivered,
    DeliveryTarget,
    FlagChange,
    FlagsSnapshot,
    Ingested,
    JournalEntry,
    Mailbox,
    MessageRecord,
    MessageSummary,
    Restored,
    Segment,
    StoreFlagsResult,
)
from .outbound.queue import Outbound, OutboundMessage, OutboundStatus, Outcome
from .push.events import (
    Cursor,
    FeedBatch,
    MailboxCounters,
    MessageMeta,
    UserEvent,
)
from .push.notify import ANY_KEY, Notifier, Subscription, mailbox_key, user_key
from .push.webhooks import (
    EVENT_TYPES,
    MAX_ATTEMPTS,
    Delivery,
    Hook,
    HookEvent,
    backoff,
)
from .restore import RestoreReport
from .sieve.autoreply import Autoreply, Forwarding, MailRules
from .sieve.scripts import (
    MAX_SCRIPT_SIZE,
    MAX_SCRIPTS,
    ScriptActive,
    ScriptError,
    ScriptQuotaExceeded,
    SieveScript,
    SieveScripts,
)
from .store import Store, open_store

__all__ = [
    "ANY_KEY",
    "DELIMITER",
    "EVENT_TYPES",
    "FETCH_FIELDS",
    "INBOX",
    "MAX_ATTEMPTS",
    "MAX_SCRIPTS",
    "MAX_SCRIPT_SIZE",
    "SCOPES",
    "SCRAM_SHA_256",
    "SHARED_OWNER",
    "SPECIAL_USES",
    "STORE_THREADS",
    "SYSTEM_FLAGS",
    "AlreadyExists",
    "ApiToken",
    "AppPassword",
    "AppendResult",
    "ArchivedMessage",
    "AuthEvent",
    "AuthResult",
    "AuthenticationFailed",
    "Autoreply",
    "BackupReport",
    "CopyResult",
    "Cursor",
    "Database",
    "Delivered",
    "Delivery",
    "DeliveryTarget",
    "DoctorReport",
    "EmbeddedDatabase",
    "EmbeddedDatabaseError",
    "FeedBatch",
    "Finding",
    "FlagChange",
    "FlagsSnapshot",
    "Forwarding",
    "Hook",
    "HookEvent",
    "Imports",
    "Ingest",
    "Ingested",
    "InvalidInput",
    "JournalEntry",
    "Lease",
    "Leases",
    "MailRules",
    "Mailbox",
    "MailboxCounters",
    "MessageMeta",
    "MessageRecord",
    "MessageSummary",
    "Metadata",
    "MetadataTooLarge",
    "MetadataTooMany",
    "NewApiToken",
    "NewAppPassword",
    "NotFound",
    "Notifier",
    "Outbound",
    "OutboundMessage",
    "OutboundStatus",
    "Outcome",
    "OverQuota",
    "Refusal",
    "ResolvedAddress",
    "RestoreReport",
    "Restored",
    "ScramLogin",
    "ScriptActive",
    "ScriptError",
    "ScriptQuotaExceeded",
    "Segment",
    "SharedMailbox",
    "SieveScript",
    "SieveScripts",
    "Store",
    "StoreError",
    "StoreFlagsResult",
    "StoreUnavailable",
    "Subscription",
    "SweepReport",
    "ThrottlePolicy",
    "Throttled",
    "TooBig",
    "TotpSetup",
    "TwoFactorRequired",
    "User",
    "UserEvent",
    "Users",
    "backoff",
    "mailbox_key",
    "metrics",
    "normalize_address",
    "normalize_flag",
    "normalize_path",
    "open_store",
    "query",
    "read_manifest",
    "rights",
    "rights_of",
    "set_store_concurrency",
    "split_detail",
    "textindex",
    "user_key",
    "valid_entry",
]
