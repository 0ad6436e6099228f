"""Request and response bodies of the HTTP API, as attrs classes.

The same classes validate requests (``bodies.read_model``), serialise responses
(``bodies.ok``) and generate the OpenAPI document (``openapi.py``): the document
cannot drift from the code. A field spelled with a trailing ``_`` is a Python
keyword (``from``, ``not``) and has no underscore in JSON.
"""

from __future__ import annotations

from typing import Literal

import attrs
from attrs import validators as v

MAX_PAGE = 250
#: Largest integer accepted anywhere: exact in JSON (IEEE double) and in BSON.
MAX_INT = 2**53 - 1
_COUNT = v.and_(v.ge(0), v.le(MAX_INT))
MAX_FLAGS = 100
_FLAGS = v.deep_iterable(v.instance_of(str), v.and_(v.instance_of(list), v.max_len(MAX_FLAGS)))


# -- generic ---------------------------------------------------------------------


@attrs.frozen
class Success:
    """A write that has nothing more to say."""

    success: bool = True


@attrs.frozen
class Error:
    """Every error: ``code`` is machine-readable, ``error`` names the field at fault."""

    success: bool
    error: str
    code: str


# -- users -----------------------------------------------------------------------


@attrs.frozen
class CreateUser:
    """Body of a user-creation request."""

    username: str
    password: str
    quota: int | None = attrs.field(default=None, validator=v.optional(_COUNT))


@attrs.frozen
class Created:
    """A created user."""

    id: str
    username: str
    success: bool = True


@attrs.frozen
class Quota:
    """Storage quota and usage, bytes."""

    allowed: int
    used: int
    success: bool = True


@attrs.frozen
class UserInfo:
    """A user's public record."""

    id: str
    username: str
    quota: Quota
    created: str
    disabled: bool
    #: The folder POP3 serves as the user's maildrop.
    pop3_folder: str = "INBOX"
    success: bool = True


@attrs.frozen
class UserQuery:
    """A page of users sorted by user name: names containing ``query``
    (case-insensitive), after the name ``after``."""

    query: str | None = attrs.field(default=None, validator=v.optional(v.max_len(256)))
    limit: int = attrs.field(default=50, validator=v.and_(v.ge(1), v.le(MAX_PAGE)))
    after: str | None = attrs.field(default=None, validator=v.optional(v.max_len(1024)))


@attrs.frozen
class UserList:
    """A page of users; pass ``next`` as ``after`` for the next page (null: the last)."""

    results: list[UserInfo]
    next: str | None
    success: bool = True


@attrs.frozen
class ChangePassword:
    """New password."""

    password: str = attrs.field(validator=v.min_len(1))


@attrs.frozen
class Pop3Settings:
    """The user's POP3 settings: which folder POP3 serves as the maildrop."""

    folder: str = attrs.field(validator=v.and_(v.min_len(1), v.max_len(1024)))
    success: bool = True


@attrs.frozen
class SetQuota:
    """New quota in bytes."""

    quota: int = attrs.field(validator=_COUNT)


# -- addresses -------------------------------------------------------------------


@attrs.frozen
class NewAddress:
    """An address to route to the user."""

    address: str


@attrs.frozen
class AddressInfo:
    """One address; ``main`` is the user name, which cannot be removed."""

    address: str
    main: bool


@attrs.frozen
class Recipient:
    """A deliverable recipient: the address it matched (``user+tag@`` matches
    ``user@``) and the user it reaches."""

    address: str
    user: str
    success: bool = True


@attrs.frozen
class AddressList:
    """A user's addresses."""

    results: list[AddressInfo]
    success: bool = True


# -- mailboxes -------------------------------------------------------------------


@attrs.frozen
class NewMailbox:
    """A mailbox to create (missing parents are created too)."""

    path: str
    special_use: (
        Literal["\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"]
        | None
    ) = None


@attrs.frozen
class RenameMailbox:
    """A mailbox's new path."""

    path: str


@attrs.frozen
class MailboxInfo:
    """A mailbox with its counters."""

    id: str
    path: str
    special_use: str | None
    subscribed: bool
    uid_validity: int
    uid_next: int
    highest_modseq: int
    messages: int
    unseen: int
    size: int
    success: bool = True


@attrs.frozen
class MailboxList:
    """A user's mailboxes, by path."""

    results: list[MailboxInfo]
    success: bool = True


# -- messages --------------------------------------------------------------------


@attrs.frozen
class AddressJson:
    """An envelope address, RFC 2047 decoded."""

    name: str | None
    address: str | None


@attrs.frozen
class EnvelopeJson:
    """The envelope of a message (RFC 3501 §7.4.2), decoded for applications."""

    date: str | None
    subject: str | None
    from_: list[AddressJson]
    sender: list[AddressJson]
    reply_to: list[AddressJson]
    to: list[AddressJson]
    cc: list[AddressJson]
    bcc: list[AddressJson]
    in_reply_to: str | None
    message_id: str | None


@attrs.frozen
class MessageItem:
    """A message in a listing."""

    uid: int
    flags: list[str]
    size: int
    internal_date: str | None
    subject: str | None
    from_: list[AddressJson]
    emailid: str | None
    threadid: str | None


@attrs.frozen
class MessageList:
    """A page of messages; pass ``next`` as ``after`` for the next page."""

    results: list[MessageItem]
    total: int
    next: int | None
    success: bool = True


@attrs.frozen
class MessageInfo:
    """A message's metadata."""

    id: str
    mailbox: str
    uid: int
    modseq: int
    flags: list[str]
    size: int
    internal_date: str | None
    envelope: EnvelopeJson
    emailid: str | None
    threadid: str | None
    success: bool = True


@attrs.frozen
class ListQuery:
    """Paging of a listing: UIDs after ``after``, ``order`` by UID."""

    limit: int = attrs.field(default=50, validator=v.and_(v.ge(1), v.le(MAX_PAGE)))
    after: int | None = attrs.field(default=None, validator=v.optional(_COUNT))
    order: Literal["asc", "desc"] = "asc"


@attrs.frozen
class UploadQuery:
    """Flags of an uploaded message, comma-separated (``\\Seen,$label``)."""

    flags: str = ""


@attrs.frozen
class Uploaded:
    """Where an uploaded message was stored."""

    mailbox: str
    uid: int
    uid_validity: int
    success: bool = True


@attrs.frozen
class FlagUpdate:
    """Flags to add and remove, or (``set``) the whole new list."""

    add: list[str] = attrs.field(factory=list, validator=_FLAGS)
    remove: list[str] = attrs.field(factory=list, validator=_FLAGS)
    set: list[str] | None = attrs.field(default=None, validator=v.optional(_FLAGS))


@attrs.frozen
class FlagsResult:
    """A message's flags after an update."""

    uid: int
    flags: list[str]
    modseq: int
    success: bool = True


@attrs.frozen
class MoveRequest:
    """The mailbox (id) to move the message to."""

    mailbox: str


@attrs.frozen
class Moved:
    """Where the message is now."""

    mailbox: str
    uid: int
    success: bool = True


@attrs.frozen
class SearchQuery:
    """IMAP SEARCH criteria as JSON (RFC 3501 §6.4.4); all given keys must hold.

    Dates are ``YYYY-MM-DD`` (calendar days, UTC); ``uid`` is an IMAP UID set
    (``1:5,9``); ``or`` holds when any of its queries does, ``not`` negates.
    """

    seen: bool | None = None
    answered: bool | None = None
    flagged: bool | None = None
    deleted: bool | None = None
    draft: bool | None = None
    keyword: str | None = None
    unkeyword: str | None = None
    from_: str | None = None
    to: str | None = None
    cc: str | None = None
    bcc: str | None = None
    subject: str | None = None
    body: str | None = None
    text: str | None = None
    header: list[str] | None = attrs.field(
        default=None, validator=v.optional(v.and_(v.min_len(1), v.max_len(2)))
    )
    larger: int | None = attrs.field(default=None, validator=v.optional(_COUNT))
    smaller: int | None = attrs.field(default=None, validator=v.optional(_COUNT))
    before: str | None = None
    on: str | None = None
    since: str | None = None
    sent_before: str | None = None
    sent_on: str | None = None
    sent_since: str | None = None
    older: int | None = attrs.field(default=None, validator=v.optional(_COUNT))
    younger: int | None = attrs.field(default=None, validator=v.optional(_COUNT))
    uid: str | None = None
    modseq: int | None = attrs.field(default=None, validator=v.optional(_COUNT))
    emailid: str | None = None
    threadid: str | None = None
    or_: list[SearchQuery] | None = attrs.field(
        default=None, validator=v.optional(v.and_(v.min_len(1), v.max_len(100)))
    )
    not_: SearchQuery | None = None


@attrs.frozen
class SearchRequest:
    """A search with paging."""

    query: SearchQuery
    limit: int = attrs.field(default=50, validator=v.and_(v.ge(1), v.le(MAX_PAGE)))
    after: int | None = attrs.field(default=None, validator=v.optional(_COUNT))


# -- webhooks --------------------------------------------------------------------


@attrs.frozen
class NewWebhook:
    """A webhook: for one user, or every user when ``user`` is null."""

    url: str
    events: list[
        Literal["message.new", "message.deleted", "message.flags",
                "mailbox.created", "mailbox.renamed", "mailbox.deleted"]
    ] = attrs.field(factory=list)
    user: str | None = None
    secret: str | None = None


@attrs.frozen
class WebhookInfo:
    """A registered webhook (its secret is shown only at creation)."""

    id: str
    url: str
    events: list[str]
    user: str | None
    created: str
    secret: str | None = None
    success: bool = True


@attrs.frozen
class WebhookList:
    """Registered webhooks."""

    results: list[WebhookInfo]
    success: bool = True


@attrs.frozen
class WebhookQuery:
    """Only the hooks of this user."""

    user: str | None = None


# -- the archive of deleted messages -------------------------------------------------

_HEX_ID = v.optional(v.matches_re(r"^[0-9a-f]{24}$"))


@attrs.frozen
class ArchiveQuery:
    """Paging of the archive, newest first: pass a page's ``next`` as ``after``."""

    limit: int = attrs.field(default=50, validator=v.and_(v.ge(1), v.le(MAX_PAGE)))
    after: str | None = attrs.field(default=None, validator=_HEX_ID)


@attrs.frozen
class ArchivedItem:
    """A deleted message kept in the archive: where it was, the flags a restore gives
    it back (not \\Deleted), when it was archived."""

    id: str
    mailbox: str
    path: str
    uid: int
    flags: list[str]
    size: int
    internal_date: str | None
    archived: str | None
    subject: str | None
    from_: str | None
    emailid: str | None


@attrs.frozen
class ArchiveList:
    """A page of archived messages; ``next`` is the ``after`` of the next page."""

    results: list[ArchivedItem]
    total: int
    next: str | None
    success: bool = True


@attrs.frozen
class RestoreRequest:
    """Where restored messages go: a mailbox id of the user; without one, each goes
    back to the mailbox it was deleted from (INBOX when that is gone)."""

    mailbox: str | None = attrs.field(default=None, validator=_HEX_ID)


@attrs.frozen
class RestoredItem:
    """A restored message: its archive id and its new place."""

    id: str
    mailbox: str
    path: str
    uid_validity: int
    uid: int


@attrs.frozen
class RestoreResult:
    """What a restore put back."""

    results: list[RestoredItem]
    success: bool = True


@attrs.frozen
class Health:
    """Component states."""

    success: bool
    status: str
    components: dict[str, bool]


attrs.resolve_types(SearchQuery)
