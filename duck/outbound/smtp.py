"""A small SMTP client for the relay: one message per connection, blocking.

Why smtplib in a worker thread: it is the standard library (no new dependency),
well exercised, and does what a relay client needs (EHLO, STARTTLS and implicit
TLS with an ``ssl`` context, AUTH PLAIN/LOGIN/CRAM-MD5, 8BITMIME, SMTPUTF8,
per-recipient replies, socket timeouts). The maintained asynchronous client,
aiosmtplib, runs on asyncio only; duck runs on trio, and a thread per message in
flight (a handful at most) costs nothing next to the network round trips.

``send`` never raises for what the relay or the network does: it sorts the
recipients into sent, refused (a 5xx reply: permanent) and deferred (a 4xx reply,
a timeout, a dropped connection: try again later), as RFC 5321 §4.2.1 and §4.5.4
ask a client to. It returns as soon as the relay has answered the final dot,
with the connection still open: the caller records the outcome first, then
calls ``close`` (QUIT), so that the window in which a crash sends a message
twice is one database write, not an extra round trip to the relay.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

#: TLS modes of the relay connection.
TLS_MODES = ("starttls", "tls", "none")


@attrs.frozen
class RelaySettings:
    """Where and how to reach the relay."""

    host: str
    port: int
    #: "starttls" (required: a relay that does not offer it is not used), "tls"
    #: (implicit TLS, e.g. port 465) or "none".
    tls: str = "starttls"
    user: str | None = None
    password: str | None = None
    #: Seconds each command's reply may take (RFC 5321 §4.5.3.2 allows minutes;
    #: a relay is expected to be near).
    timeout: float = 30.0
    #: Seconds the reply to the final dot may take (RFC 5321 §4.5.3.2.6: 10
    #: minutes): a relay still accepting the message must not be given up on,
    #: or the retry would send it twice.
    final_timeout: float = 300.0
    helo: str = "localhost"
    #: CA file to verify the relay's certificate with (the system's by default);
    #: ``verify`` False accepts any certificate (a relay on loopback, tests).
    ca_file: Path | None = None
    verify: bool = True

    def ssl_context(self) -> ssl.SSLContext:
        """The client TLS context for this relay."""
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def longest_attempt(self) -> float:
        """An upper bound of one attempt's duration: connect, greeting, EHLO,
        STARTTLS, EHLO, AUTH, MAIL, RCPTs (one timeout each, a few to spare) and the
        final dot. A claim on a queued message must outlast it."""
        return 10 * self.timeout + self.final_timeout


def parse_relay(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) as (host, port); ValueError when malformed."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not host:port: {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"not host:port: {value!r}")
    return host, int(port)


@attrs.frozen
class Attempt:
    """What one attempt did (``close`` ends the session; call it once)."""

    sent: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()
    deferred: tuple[str, ...] = ()
    error: str = ""
    close: Callable[[], None] = attrs.field(default=lambda: None, repr=False, eq=False)


class _Client(smtplib.SMTP):
    """The final dot's reply gets its own (longer) timeout."""

    final_timeout = 300.0

    def data(self, msg: Any) -> tuple[int, bytes]:
        # smtplib sends DATA, waits for 354, then the message and the dot, all in
        # this one call; the 354 comes as fast as any reply, so the longer
        # timeout costs nothing there.
        if self.sock is not None:
            self.sock.settimeout(self.final_timeout)
        return super().data(msg)


class _TlsClient(smtplib.SMTP_SSL):
    """Implicit TLS, with the same final timeout."""

    final_timeout = 300.0

    def data(self, msg: Any) -> tuple[int, bytes]:
        if self.sock is not None:
            self.sock.settimeout(self.final_timeout)
        return super().data(msg)


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"[:500]


def _sort(replies: dict[str, tuple[int, bytes]], rcpts: list[str]
          ) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Recipients by their RCPT replies: sent (not in ``replies``), refused (5xx)
    and deferred (anything else)."""
    sent, refused, deferred = [], [], []
    for rcpt in rcpts:
        if rcpt not in replies:
            sent.append(rcpt)
        elif 500 <= replies[rcpt][0] < 600:
            refused.append((rcpt, _reply(*replies[rcpt])))
        else:
            deferred.append(rcpt)
    return sent, refused, deferred


def _all(rcpts: list[str], code: int, message: bytes | str) -> Attempt:
    reply = _reply(code, message)
    if 500 <= code < 600:
        return Attempt(refused=tuple((r, reply) for r in rcpts), error=reply)
    return Attempt(deferred=tuple(rcpts), error=reply)


def _quietly(client: smtplib.SMTP) -> Callable[[], None]:
    def close() -> None:
        try:
            if client.sock is not None:
                client.sock.settimeout(client.timeout)
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()

    return close


def send(settings: RelaySettings, sender: str, recipients: list[str],
         message: bytes) -> Attempt:
    """Send ``message`` from ``sender`` ("" is ``MAIL FROM:<>``) to ``recipients``
    through the relay (blocking; run it in a worker thread)."""
    rcpts = list(recipients)
    client: smtplib.SMTP | None = None
    try:
        if settings.tls == "tls":
            tls_client = _TlsClient(settings.host, settings.port, local_hostname=settings.helo,
                                    timeout=settings.timeout, context=settings.ssl_context())
            tls_client.final_timeout = settings.final_timeout
            client = tls_client
        else:
            plain_client = _Client(settings.host, settings.port,
                                   local_hostname=settings.helo, timeout=settings.timeout)
            plain_client.final_timeout = settings.final_timeout
            client = plain_client
        client.ehlo_or_helo_if_needed()
        if settings.tls == "starttls":
            if not client.has_extn("starttls"):
                # Never fall back to plain text when TLS was asked for.
                client.close()
                return Attempt(deferred=tuple(rcpts), error="relay does not offer STARTTLS")
            client.starttls(context=settings.ssl_context())
            client.ehlo()
        if settings.user is not None:
            client.login(settings.user, settings.password or "")
        options = []
        if any(b > 0x7F for b in message) and client.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if not all(a.isascii() for a in (sender, *rcpts)):
            if not client.has_extn("smtputf8"):
                client.close()
                return Attempt(refused=tuple((r, "relay lacks SMTPUTF8") for r in rcpts),
                               error="an address needs SMTPUTF8, which the relay lacks")
            options.append("SMTPUTF8")
        replies = client.sendmail(sender, rcpts, message, mail_options=options)
        sent, refused, deferred = _sort(replies, rcpts)  # type: ignore[arg-type]
        error = "some recipients deferred" if deferred else ""
        return Attempt(tuple(sent), tuple(refused), tuple(deferred), error, _quietly(client))
    except smtplib.SMTPRecipientsRefused as exc:
        _, refused, deferred = _sort(exc.recipients, rcpts)  # type: ignore[arg-type]
        attempt = Attempt(refused=tuple(refused), deferred=tuple(deferred),
                          error="every recipient refused" if not deferred else
                          "recipients deferred")
    except smtplib.SMTPAuthenticationError as exc:
        # A credentials problem is the operator's to fix: keep the mail meanwhile.
        reply = _reply(exc.smtp_code, exc.smtp_error)
        attempt = Attempt(deferred=tuple(rcpts), error=f"relay AUTH: {reply}")
    except smtplib.SMTPResponseException as exc:  # MAIL or DATA refused, 4xx or 5xx
        attempt = _all(rcpts, exc.smtp_code, exc.smtp_error)
    except (smtplib.SMTPException, OSError) as exc:
        # Connection refused or dropped, a timeout, a TLS failure, no AUTH offered.
        attempt = Attempt(deferred=tuple(rcpts), error=f"{type(exc).__name__}: {exc}"[:500])
    if client is not None:
        client.close()
    return attempt
