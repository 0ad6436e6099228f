"""The events the LMTP protocol machine produces, one class per command or data step.

Frozen attrs classes, like h11's events. Each command event expects exactly one
reply, sent with ``LmtpProtocol.send``; ``DataEnd`` and a last ``ChunkEnd`` expect
``replies`` replies (one per accepted recipient, RFC 2033 section 4.2).
"""

from __future__ import annotations

import enum

import attrs

from duck.lmtp.address import Mailbox
from duck.lmtp.replies import Reply


class BodyType(enum.Enum):
    """The MAIL ``BODY=`` parameter (RFC 6152, RFC 3030)."""

    SEVEN_BIT = "7BIT"
    EIGHT_BIT_MIME = "8BITMIME"
    BINARY_MIME = "BINARYMIME"


@attrs.frozen
class Lhlo:
    """``LHLO domain`` (RFC 2033 section 4.1); resets any transaction."""

    domain: str


@attrs.frozen
class MailFrom:
    """``MAIL FROM:<reverse-path>`` with its ESMTP parameters; ``address`` None is ``<>``."""

    address: Mailbox | None
    size: int | None = None
    body: BodyType | None = None
    smtputf8: bool = False

    @property
    def reverse_path(self) -> str:
        """The path as text without angle brackets ("" for the null path)."""
        return "" if self.address is None else str(self.address)


@attrs.frozen
class RcptTo:
    """``RCPT TO:<forward-path>``."""

    address: Mailbox


@attrs.frozen
class DataStart:
    """``DATA``: reply 354 to start the message, or an error to refuse it."""


@attrs.frozen
class DataChunk:
    """Message bytes as they arrive, dot-unstuffed for DATA, verbatim for BDAT."""

    data: bytes


@attrs.frozen
class DataEnd:
    """The end of DATA (``<CRLF>.<CRLF>``): send ``replies`` replies, in RCPT order.

    ``rejected`` is set when the protocol already refused the message (too big);
    every recipient then gets that reply.
    """

    replies: int
    rejected: Reply | None = None


@attrs.frozen
class Bdat:
    """``BDAT size [LAST]`` (RFC 3030); ``DataChunk`` events and a ``ChunkEnd`` follow."""

    size: int
    last: bool


@attrs.frozen
class ChunkEnd:
    """All octets of one BDAT chunk were received: send ``replies`` replies.

    One reply for an intermediate chunk; for ``last`` one per accepted recipient.
    ``rejected`` as for ``DataEnd``.
    """

    last: bool
    replies: int
    rejected: Reply | None = None


@attrs.frozen
class DataAbort:
    """The message in progress is refused (``reply`` says why); no reply is expected now.

    The server drops what it has written for this message. The protocol keeps
    discarding the rest of the message and then emits ``DataEnd``/``ChunkEnd``
    with ``rejected`` set.
    """

    reply: Reply


@attrs.frozen
class Rset:
    """``RSET``: the transaction is already cleared; reply 250."""


@attrs.frozen
class Noop:
    """``NOOP``."""


@attrs.frozen
class Quit:
    """``QUIT``: reply 221 and close."""


@attrs.frozen
class Vrfy:
    """``VRFY string``."""

    argument: str


@attrs.frozen
class StartTls:
    """``STARTTLS`` (RFC 3207): reply 220, then handshake; any pipelined bytes were dropped."""


@attrs.frozen
class ProtocolError:
    """The client broke the protocol; send ``reply`` (once).

    ``fatal``: the stream cannot be resynchronised (a BDAT whose size cannot be
    read); the server closes the connection after the reply.
    """

    reply: Reply
    fatal: bool = False


@attrs.frozen
class ConnectionClosed:
    """The client closed its side, or QUIT was answered."""


class Sentinel(enum.Enum):
    """The non-event results of ``next_event``."""

    NEED_DATA = "NEED_DATA"
    PAUSED = "PAUSED"


#: ``next_event`` needs more bytes: call ``receive_data``.
NEED_DATA = Sentinel.NEED_DATA
#: ``next_event`` waits for the reply to the last event: call ``send``.
PAUSED = Sentinel.PAUSED

Event = (
    Lhlo | MailFrom | RcptTo | DataStart | DataChunk | DataEnd | Bdat | ChunkEnd | DataAbort
    | Rset | Noop | Quit | Vrfy | StartTls | ProtocolError | ConnectionClosed
)
