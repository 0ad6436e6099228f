"""From a header block's fields to the envelope and the message's search metadata."""

from __future__ import annotations

import datetime
import email.utils
import re

from duck.mime.addresses import parse_address_list
from duck.mime.headers import unfold
from duck.mime.model import Envelope

_MSG_ID = re.compile(rb"<[^<>\s]*>")


def first_field(fields: list[tuple[str, bytes]], name: str) -> bytes | None:
    """Raw value of the first field called `name` (lowercase), or None."""
    for key, value in fields:
        if key == name:
            return value
    return None


def _unfolded(fields: list[tuple[str, bytes]], name: str) -> bytes | None:
    value = first_field(fields, name)
    return None if value is None else unfold(value)


def build_envelope(fields: list[tuple[str, bytes]]) -> Envelope:
    """RFC 3501 §7.4.2 ENVELOPE from raw (name, value) header fields."""
    from_ = parse_address_list(_unfolded(fields, "from"))
    # RFC 3501 §7.4.2: absent or empty Sender/Reply-To take the value of From.
    sender = parse_address_list(_unfolded(fields, "sender")) or from_
    reply_to = parse_address_list(_unfolded(fields, "reply-to")) or from_
    return Envelope(
        date=_unfolded(fields, "date"),
        subject=_unfolded(fields, "subject"),
        from_=from_,
        sender=sender,
        reply_to=reply_to,
        to=parse_address_list(_unfolded(fields, "to")),
        cc=parse_address_list(_unfolded(fields, "cc")),
        bcc=parse_address_list(_unfolded(fields, "bcc")),
        in_reply_to=_unfolded(fields, "in-reply-to"),
        message_id=_unfolded(fields, "message-id"),
    )


def message_ids(value: bytes | None) -> list[str]:
    """Every <msg-id> in a Message-ID/In-Reply-To/References value, brackets kept."""
    if not value:
        return []
    return [m.decode("utf-8", errors="replace") for m in _MSG_ID.findall(unfold(value))]


def parse_date(value: bytes | None) -> datetime.datetime | None:
    """The Date header as an aware datetime (UTC if the zone is -0000); None if bad."""
    if not value:
        return None
    raw = unfold(value).decode("ascii", errors="replace")
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed
