"""Typed LMTP replies: reply code, enhanced status code and text, and their wire form.

Every reply after the greeting and LHLO carries an enhanced status code
(RFC 2034 section 3); the codes come from RFC 3463 and the RFC 5248 registry.
The mapping from typed failures to replies lives in one table, ``FAILURE_REPLIES``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

import attrs

#: Longest reply text line we emit, in octets, CRLF and code included
#: (RFC 5321 section 4.5.3.1.5: 512 octets).
MAX_REPLY_LINE = 512


@attrs.frozen
class EnhancedStatus:
    """An RFC 3463 enhanced status code ``class.subject.detail``."""

    klass: int
    subject: int
    detail: int

    def __attrs_post_init__(self) -> None:
        if self.klass not in (2, 4, 5):
            raise ValueError(f"enhanced status class must be 2, 4 or 5, not {self.klass}")
        if not (0 <= self.subject <= 999 and 0 <= self.detail <= 999):
            raise ValueError("enhanced status subject and detail are 0..999")

    def __str__(self) -> str:
        return f"{self.klass}.{self.subject}.{self.detail}"

    @classmethod
    def parse(cls, text: str) -> EnhancedStatus:
        """Parse ``"2.0.0"`` into an EnhancedStatus."""
        parts = text.split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"not an enhanced status code: {text!r}")
        return cls(int(parts[0]), int(parts[1]), int(parts[2]))


def _check_lines(instance: Reply, attribute: attrs.Attribute[tuple[str, ...]],
                 value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("a reply has at least one line")
    for line in value:
        if "\r" in line or "\n" in line:
            raise ValueError("reply text must not contain CR or LF")


def _to_lines(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Reply:
    """One (possibly multi-line) reply: ``code``, optional enhanced status, text lines."""

    code: int = attrs.field()
    status: EnhancedStatus | None
    lines: tuple[str, ...] = attrs.field(converter=_to_lines, validator=_check_lines)

    @code.validator
    def _check_code(self, attribute: attrs.Attribute[int], value: int) -> None:
        if not 200 <= value <= 599:
            raise ValueError(f"reply code out of range: {value}")
        if self.status is not None and self.status.klass != value // 100:
            raise ValueError(f"enhanced status {self.status} does not match code {value}")

    @property
    def positive(self) -> bool:
        """True for 2xx and 3xx replies (the command was accepted)."""
        return self.code < 400

    @property
    def text(self) -> str:
        """All text lines joined by newlines (for logs and tests)."""
        return "\n".join(self.lines)

    def to_bytes(self) -> bytes:
        """The wire form: ``code-`` continuation lines, ``code SP`` on the last line."""
        out = []
        last = len(self.lines) - 1
        for i, line in enumerate(self.lines):
            sep = " " if i == last else "-"
            prefix = f"{self.code}{sep}"
            if self.status is not None:
                prefix += f"{self.status} "
            out.append((prefix + line).encode("utf-8") + b"\r\n")
        return b"".join(out)


def reply(code: int, status: str | None, *lines: str) -> Reply:
    """Build a Reply from ``reply(250, "2.0.0", "OK")``."""
    return Reply(code, None if status is None else EnhancedStatus.parse(status), lines)


def multiline(code: int, status: str | None, lines: Sequence[str]) -> Reply:
    """Build a multi-line Reply from a sequence of text lines."""
    return reply(code, status, *lines)


class Failure(enum.Enum):
    """Why a recipient, or a whole message, was not delivered.

    The backend reports these; ``FAILURE_REPLIES`` turns them into replies.
    """

    #: No such user (RFC 3463 5.1.1 "bad destination mailbox address").
    UNKNOWN_USER = "unknown-user"
    #: Mailbox disabled, not accepting messages (5.2.1).
    MAILBOX_DISABLED = "mailbox-disabled"
    #: Over quota, and the condition is not expected to clear soon (5.2.2).
    OVER_QUOTA = "over-quota"
    #: Over quota, but worth retrying later (4.2.2).
    OVER_QUOTA_TEMPORARY = "over-quota-temporary"
    #: The store is unreachable or failed (4.3.0).
    UNAVAILABLE = "unavailable"
    #: The message is larger than the server accepts (5.3.4).
    MESSAGE_TOO_BIG = "message-too-big"
    #: The store refused the content itself (5.6.0).
    CONTENT_REJECTED = "content-rejected"
    #: The server is shutting down (4.3.2).
    SHUTTING_DOWN = "shutting-down"
    #: The recipient's Sieve script refused the message (RFC 5429 reject/ereject:
    #: 5.7.1, "delivery not authorized, message refused").
    REJECTED_BY_RULE = "rejected-by-rule"


#: The one table from typed failures to replies.
FAILURE_REPLIES: dict[Failure, Reply] = {
    Failure.UNKNOWN_USER: reply(550, "5.1.1", "No such user here"),
    Failure.MAILBOX_DISABLED: reply(550, "5.2.1", "Mailbox disabled, not accepting messages"),
    Failure.OVER_QUOTA: reply(552, "5.2.2", "Mailbox full"),
    Failure.OVER_QUOTA_TEMPORARY: reply(452, "4.2.2", "Mailbox full, try again later"),
    Failure.UNAVAILABLE: reply(451, "4.3.0", "Temporary failure, try again later"),
    Failure.MESSAGE_TOO_BIG: reply(552, "5.3.4", "Message size exceeds fixed maximum"),
    Failure.CONTENT_REJECTED: reply(554, "5.6.0", "Message content rejected"),
    Failure.SHUTTING_DOWN: reply(421, "4.3.2", "Service shutting down"),
    Failure.REJECTED_BY_RULE: reply(550, "5.7.1", "Message refused by the recipient's rules"),
}


def failure_reply(failure: Failure, text: str | None = None) -> Reply:
    """The reply for ``failure``; ``text`` replaces the default text when given."""
    base = FAILURE_REPLIES[failure]
    if text is None:
        return base
    return Reply(base.code, base.status, (_one_line(text),))


def _one_line(text: str) -> str:
    # Backend-provided text must not smuggle a line break into the reply stream.
    return " ".join(text.splitlines()) or "-"


# Replies the protocol itself produces (RFC 5321 section 4.2.2 codes, RFC 3463 / 5248 statuses).
OK = reply(250, "2.0.0", "OK")
SYNTAX_UNRECOGNIZED = reply(500, "5.5.1", "Command unrecognized")
LINE_TOO_LONG = reply(500, "5.5.2", "Line too long")
BAD_UTF8 = reply(500, "5.5.2", "Command line is not valid UTF-8")
NOT_IMPLEMENTED = reply(502, "5.5.1", "Command not implemented")
BAD_SEQUENCE = reply(503, "5.5.1", "Bad sequence of commands")
TOO_MANY_RECIPIENTS = reply(452, "4.5.3", "Too many recipients")
START_MAIL_INPUT = reply(354, None, "Start mail input; end with <CRLF>.<CRLF>")
CLOSING = reply(221, "2.0.0", "Bye")
READY_FOR_TLS = reply(220, "2.0.0", "Ready to start TLS")
CANNOT_VRFY = reply(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery")
