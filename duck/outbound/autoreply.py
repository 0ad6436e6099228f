"""Automatic replies and redirects, the rules that keep them from doing harm.

Pure: no I/O, no trio, no database (tests/test_layers.py holds that), so the
Sieve interpreter, the LMTP delivery path and the API may all use it.

- ``reply_refusal``: whether a vacation reply may answer a message at all
  (RFC 3834 §2, RFC 5230 §4.5-§4.6); None, or the reason not to.
- ``build_reply``: the reply itself (RFC 3834 §3, RFC 5230 §5): From the user,
  To the sender, "Auto: " subject, In-Reply-To/References, ``Auto-Submitted:
  auto-replied``, Date, Message-ID, text/plain (and text/html) in UTF-8.
- ``redirect_refusal`` / ``redirect_copy``: loop protection for redirect (RFC
  5228 §4.2 asks for it): each redirect by duck prepends a ``Delivered-To`` of
  the redirecting recipient (as Postfix's local delivery does); a message that
  already carries that recipient's one has been round the loop, and one with too
  many such fields or ``Received`` hops is refused outright.

Whether the same sender was answered within ``:days`` is not a rule on one
message: the store keeps it (``store.outbound.vacation_should_reply``).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterable
from email.headerregistry import Address as EmailAddress
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from duck.mime.addresses import parse_address_list
from duck.mime.headers import decode_header, split_field, unfold

#: Most header bytes looked at (a header section longer than this is cut there).
MAX_HEADER = 256 * 1024
#: Longest subject kept in a reply (RFC 5322's line limit leaves room for folding).
MAX_SUBJECT = 500
#: Most message ids carried into References (the oldest beyond it are dropped).
MAX_REFERENCES = 20
#: A message that has been redirected this many times (Delivered-To fields), or has
#: this many Received hops (RFC 5321 §6.3 suggests a loop limit of 100), is not
#: redirected again.
MAX_REDIRECT_HOPS = 10
MAX_RECEIVED = 100

#: Reasons ``reply_refusal`` gives.
AUTO_SUBMITTED = "auto-submitted"
MAILING_LIST = "mailing-list"
BULK = "precedence"
NULL_SENDER = "null-sender"
AUTOMATED_SENDER = "automated-sender"
OWN_ADDRESS = "own-address"
NOT_ADDRESSED = "not-addressed"
#: Reasons ``redirect_refusal`` gives.
LOOP = "loop"
TOO_MANY_HOPS = "too-many-hops"

#: RFC 2369 and RFC 2919 list fields (RFC 5230 §4.6).
_LIST_FIELDS = frozenset({"list-id", "list-help", "list-subscribe", "list-unsubscribe",
                          "list-post", "list-owner", "list-archive"})
#: Local parts of senders that are programs (RFC 5230 §4.6, RFC 3834 §2).
_AUTOMATED_LOCAL = frozenset({"mailer-daemon", "listserv", "majordomo", "postmaster",
                              "noreply", "no-reply", "donotreply", "do-not-reply"})
_RECIPIENT_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
_MSG_ID = re.compile(r"<[^<>\s]+>")


def header_fields(message: bytes) -> list[tuple[str, bytes]]:
    """The message's header fields as (lowercased name, unfolded raw value), in
    order; total on any bytes."""
    end = len(message)
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = message.find(sep, 0, MAX_HEADER)
        if at != -1:
            end = min(end, at)
    head = message[:min(end, MAX_HEADER)]
    fields: list[bytes] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        elif b":" in line:
            fields.append(line)
    return [(name, unfold(value)) for name, value in map(split_field, fields)]


def _first(fields: list[tuple[str, bytes]], name: str) -> bytes | None:
    return next((value for key, value in fields if key == name), None)


def _addresses(value: bytes | None) -> list[str]:
    out = []
    for addr in parse_address_list(value):
        if addr.mailbox is not None and addr.host:
            out.append((addr.mailbox + b"@" + addr.host).decode("utf-8", "replace").lower())
    return out


def _norm(address: str) -> str:
    return address.strip().strip("<>").lower()


def reply_refusal(message: bytes, envelope_sender: str, user_addresses: Iterable[str], *,
                  require_addressed: bool = True) -> str | None:
    """None when an automatic reply may answer ``message``; else why not.

    ``envelope_sender`` is the message's return path ("" for the null one);
    ``user_addresses`` are the recipient's own addresses (its address, aliases,
    a vacation's ``:addresses``). With ``require_addressed`` (RFC 5230 §4.5's
    MUST) one of them has to appear in To, Cc, Bcc or a Resent- field: mail that
    reached the user through a list or a Bcc it cannot see gets no reply.
    """
    fields = header_fields(message)
    auto = _first(fields, "auto-submitted")
    # RFC 3834 §2 / §5: any value but "no" (parameters aside) is automatic.
    if auto is not None and auto.split(b";", 1)[0].strip().lower() != b"no":
        return AUTO_SUBMITTED
    if any(name in _LIST_FIELDS for name, _ in fields):
        return MAILING_LIST
    precedence = _first(fields, "precedence")
    if precedence is not None and precedence.strip().lower() in (b"bulk", b"list", b"junk"):
        return BULK
    sender = _norm(envelope_sender)
    if not sender:
        return NULL_SENDER
    local = sender.rsplit("@", 1)[0]
    if (local in _AUTOMATED_LOCAL or local.startswith("owner-")
            or local.endswith("-request") or local in ("bounce", "bounces")
            or local.startswith(("bounce-", "bounces-", "bounce+", "bounces+"))):
        return AUTOMATED_SENDER
    own = {_norm(a) for a in user_addresses}
    if sender in own:
        return OWN_ADDRESS
    if require_addressed:
        named = {a for name, value in fields if name in _RECIPIENT_FIELDS
                 for a in _addresses(value)}
        if not named & own:
            return NOT_ADDRESSED
    return None


def reply_subject(message: bytes, subject: str | None = None) -> str:
    """The reply's subject: ``subject`` when given (RFC 5230 §4.3), else "Auto: "
    and the original's (without stacking "Auto: " on one that has it)."""
    if subject is None:
        original = _first(header_fields(message), "subject")
        text = decode_header(original).strip() if original is not None else ""
        subject = text if text.lower().startswith("auto:") else f"Auto: {text}".rstrip()
    return " ".join(subject.split())[:MAX_SUBJECT]


def build_reply(message: bytes, *, from_address: str, to_address: str, text: str,
                subject: str | None = None, html: str | None = None,
                from_name: str | None = None, hostname: str | None = None,
                now: dt.datetime | None = None, message_id: str | None = None) -> bytes:
    """The vacation reply to ``message`` as CRLF bytes ready for the queue.

    ``from_address`` is the user's (or the script's ``:from``); ``to_address`` the
    original envelope sender. Send it with the null reverse-path (``MAIL
    FROM:<>``, RFC 3834 §3.3), so that nothing answers it in turn.
    """
    fields = header_fields(message)
    reply = EmailMessage(policy=SMTP)
    reply["From"] = EmailAddress(display_name=from_name or "", addr_spec=from_address) \
        if from_name else from_address
    reply["To"] = to_address
    reply["Subject"] = reply_subject(message, subject)
    reply["Date"] = format_datetime(now or dt.datetime.now(dt.UTC))
    # The Message-ID's right side: the server's name, else the user's domain.
    domain = hostname or from_address.rpartition("@")[2] or "localhost"
    reply["Message-ID"] = message_id or f"<{secrets.token_hex(16)}@{domain}>"
    original_id = _MSG_ID.findall(decode_header(_first(fields, "message-id") or b""))
    if original_id:
        # RFC 5230 §5.8 / RFC 5322 §3.6.4: thread the reply under the original.
        reply["In-Reply-To"] = original_id[0]
        earlier = _MSG_ID.findall(decode_header(_first(fields, "references") or b""))
        if not earlier:
            earlier = _MSG_ID.findall(decode_header(_first(fields, "in-reply-to") or b""))
        reply["References"] = " ".join([*earlier, original_id[0]][-MAX_REFERENCES:])
    reply["Auto-Submitted"] = "auto-replied"  # RFC 3834 §5.1
    reply.set_content(text, charset="utf-8")
    if html is not None:
        reply.add_alternative(html, subtype="html", charset="utf-8")
    return reply.as_bytes()


def redirect_refusal(message: bytes, recipient: str, *,
                     max_hops: int = MAX_REDIRECT_HOPS) -> str | None:
    """None when ``message``, delivered to ``recipient``, may be redirected; else
    why not: it already went through ``recipient``'s redirect (a loop), or it was
    redirected or relayed too many times."""
    fields = header_fields(message)
    delivered = [_norm(decode_header(v)) for name, v in fields if name == "delivered-to"]
    if _norm(recipient) in delivered:
        return LOOP
    if len(delivered) >= max_hops:
        return TOO_MANY_HOPS
    if sum(1 for name, _ in fields if name == "received") >= MAX_RECEIVED:
        return TOO_MANY_HOPS
    return None


def redirect_copy(message: bytes, recipient: str) -> bytes:
    """The message as a redirect sends it: unchanged but for a ``Delivered-To``
    field naming ``recipient`` prepended (signatures over the other fields hold)."""
    address = _norm(recipient)
    if any(c in address for c in "\r\n\0"):
        raise ValueError("bad recipient")
    return f"Delivered-To: {address}\r\n".encode() + message
