"""Store values as JSON: envelopes decoded for applications, events for SSE and hooks."""

from __future__ import annotations

import datetime as dt
import email.header
import json
from typing import Any

from duck.mime.model import Address, Envelope

from ..store import HookEvent, MessageMeta, UserEvent
from .bodies import converter
from .models import AddressJson, EnvelopeJson


def decode_header(raw: bytes | None) -> str | None:
    """Raw header text (RFC 2047 encoded words, maybe 8-bit) as a Python string."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (ValueError, LookupError, UnicodeError):
        return text  # a malformed encoded word: show it as it is


def addresses(items: list[Address]) -> list[AddressJson]:
    """Envelope addresses as JSON (group markers are dropped)."""
    out = []
    for a in items:
        if a.mailbox is None or a.host is None:
            continue
        mailbox = a.mailbox.decode("utf-8", "replace")
        host = a.host.decode("utf-8", "replace")
        out.append(AddressJson(decode_header(a.name), f"{mailbox}@{host}" if host else mailbox))
    return out


def envelope(env: Envelope | None) -> EnvelopeJson:
    """The decoded envelope (all members None/empty when unknown)."""
    env = env or Envelope()

    def raw(value: bytes | None) -> str | None:
        return value.decode("utf-8", "replace") if value is not None else None

    return EnvelopeJson(
        date=raw(env.date), subject=decode_header(env.subject), from_=addresses(env.from_),
        sender=addresses(env.sender), reply_to=addresses(env.reply_to),
        to=addresses(env.to), cc=addresses(env.cc), bcc=addresses(env.bcc),
        in_reply_to=raw(env.in_reply_to), message_id=raw(env.message_id),
    )


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC, or None."""
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def _message(meta: MessageMeta | None) -> dict[str, Any] | None:
    if meta is None:
        return None  # already expunged when the event was read
    env = envelope(meta.envelope)
    return {
        "from": converter.unstructure(env.from_),
        "subject": env.subject,
        "size": meta.size,
        "flags": list(meta.flags),
        "internal_date": iso(meta.internal_date),
        "emailid": meta.emailid,
        "message_id": env.message_id,
    }


def user_event(user_id: str, event: UserEvent) -> dict[str, Any]:
    """The SSE ``data`` of a change-feed event."""
    data: dict[str, Any] = {"user": user_id, "mailbox": event.mailbox_id, "path": event.path}
    if event.modseq is not None:
        data["modseq"] = event.modseq
    if event.uid is not None:
        data["uid"] = event.uid
    if event.kind == "message.flags" and event.flags is not None:
        data["flags"] = list(event.flags)
    if event.kind == "message.new":
        msg = _message(event.message)
        if msg is not None:
            data.update(msg)
        elif event.flags is not None:
            data["flags"] = list(event.flags)
    if event.counters is not None:
        c = event.counters
        data.update(messages=c.messages, unseen=c.unseen, size=c.size,
                    highest_modseq=c.highest_modseq, uid_next=c.uid_next)
    return data


def hook_body(event: HookEvent) -> bytes:
    """The exact JSON body a webhook receives for an event (stored and signed)."""
    data: dict[str, Any] = {
        "id": event.event_id, "event": event.kind, "user": event.user_id,
        "mailbox": event.mailbox_id, "path": event.path, "modseq": event.modseq,
        "time": iso(event.at),
    }
    if event.uid is not None:
        data["uid"] = event.uid
    if event.flags is not None:
        data["flags"] = list(event.flags)
    if event.kind == "message.new":
        msg = _message(event.message)
        if msg is not None:
            data.update(msg)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
