"""RFC 3834 / RFC 5230 rules for automatic replies, the reply built, redirect loops."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes
from email.policy import default

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duck.outbound import autoreply as ar

USER = "alice@example.com"


def msg(*fields: str, body: str = "hi\r\n") -> bytes:
    return ("\r\n".join(fields) + "\r\n\r\n" + body).encode()


PERSONAL = msg("From: Bob <bob@example.org>", f"To: Alice <{USER}>",
               "Subject: lunch?", "Message-ID: <m1@example.org>")


def refusal(message: bytes, sender: str = "bob@example.org", **kw: object) -> str | None:
    return ar.reply_refusal(message, sender, [USER], **kw)  # type: ignore[arg-type]


def test_a_personal_message_gets_a_reply() -> None:
    assert refusal(PERSONAL) is None


@pytest.mark.parametrize("value, reason", [
    ("auto-replied", ar.AUTO_SUBMITTED),     # RFC 3834 §5.2
    ("auto-generated", ar.AUTO_SUBMITTED),
    ("auto-notified; owner-email=x@y", ar.AUTO_SUBMITTED),
    ("AUTO-REPLIED", ar.AUTO_SUBMITTED),
    ("no", None),                            # "no" is the one value that allows it
    ("No ; (a comment)", None),
])
def test_auto_submitted(value: str, reason: str | None) -> None:
    assert refusal(msg(f"Auto-Submitted: {value}", f"To: {USER}")) == reason


@pytest.mark.parametrize("field", [
    "List-Id: <dev.lists.example.org>", "List-Unsubscribe: <mailto:u@example.org>",
    "List-Post: <mailto:dev@example.org>", "List-Help: <mailto:h@example.org>",
    "List-Subscribe: <mailto:s@example.org>", "List-Owner: <mailto:o@example.org>",
    "List-Archive: <https://example.org/a>",
])
def test_mailing_list_fields(field: str) -> None:
    assert refusal(msg(field, f"To: {USER}")) == ar.MAILING_LIST


@pytest.mark.parametrize("value, reason", [
    ("bulk", ar.BULK), ("list", ar.BULK), ("junk", ar.BULK), ("Bulk", ar.BULK),
    ("first-class", None),
])
def test_precedence(value: str, reason: str | None) -> None:
    assert refusal(msg(f"Precedence: {value}", f"To: {USER}")) == reason


@pytest.mark.parametrize("sender, reason", [
    ("", ar.NULL_SENDER), ("<>", ar.NULL_SENDER),
    ("MAILER-DAEMON@example.org", ar.AUTOMATED_SENDER),
    ("owner-dev@lists.example.org", ar.AUTOMATED_SENDER),
    ("dev-request@lists.example.org", ar.AUTOMATED_SENDER),
    ("listserv@example.org", ar.AUTOMATED_SENDER),
    ("majordomo@example.org", ar.AUTOMATED_SENDER),
    ("bounces+123@example.org", ar.AUTOMATED_SENDER),
    ("Alice@Example.COM", ar.OWN_ADDRESS),  # a reply to oneself (RFC 5230 §4.5)
    ("bob@example.org", None),
    ("requester@example.org", None),
])
def test_envelope_senders(sender: str, reason: str | None) -> None:
    assert refusal(PERSONAL, sender) == reason


def test_only_when_addressed_to_the_user() -> None:
    # RFC 5230 §4.5: a message not addressed to the user (a list, a Bcc) is not
    # answered; any of To, Cc, Bcc and the Resent- fields counts, and so does one
    # of the :addresses given.
    to_list = msg("To: dev@lists.example.org")
    assert refusal(to_list) == ar.NOT_ADDRESSED
    assert refusal(msg("To: x@example.org", f"Cc: A <{USER.upper()}>")) is None
    assert refusal(msg("To: x@example.org", f"Resent-To: {USER}")) is None
    assert ar.reply_refusal(msg("To: Al <al@example.net>"), "bob@example.org",
                            [USER, "al@example.net"]) is None
    assert refusal(to_list, require_addressed=False) is None
    # A folded header field counts too.
    assert refusal(msg("To: x@example.org,\r\n  alice@example.com")) is None


def test_the_reply() -> None:
    original = msg("From: Bob <bob@example.org>", f"To: {USER}",
                   "Subject: =?utf-8?q?caf=C3=A9?=\r\n tonight",
                   "Message-ID: <m2@example.org>",
                   "References: <m0@example.org> <m1@example.org>")
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    data = ar.build_reply(original, from_address=USER, to_address="bob@example.org",
                          text="I am away until Monday. — Alice", from_name="Alice",
                          hostname="mail.example.com", now=when)
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    reply = message_from_bytes(data, policy=default)
    assert reply["From"].addresses[0].addr_spec == USER
    assert reply["To"] == "bob@example.org"
    assert reply["Subject"] == "Auto: café tonight"
    assert reply["In-Reply-To"] == "<m2@example.org>"
    assert reply["References"] == "<m0@example.org> <m1@example.org> <m2@example.org>"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["Date"].datetime == when
    assert reply["Message-ID"].endswith("@mail.example.com>")
    assert reply.get_content_type() == "text/plain"
    assert reply.get_content().strip() == "I am away until Monday. — Alice"
    # The reply itself is never answered by a responder that follows the rules.
    assert ar.reply_refusal(data, "", ["bob@example.org"]) is not None
    assert ar.reply_refusal(data, USER, ["bob@example.org"]) == ar.AUTO_SUBMITTED


def test_reply_subject_and_html() -> None:
    data = ar.build_reply(PERSONAL, from_address=USER, to_address="bob@example.org",
                          text="away", html="<p>away</p>", subject="Out of office")
    reply = message_from_bytes(data, policy=default)
    assert reply["Subject"] == "Out of office"
    assert reply["Message-ID"].endswith("@example.com>")  # the user's domain by default
    assert reply.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in reply.iter_parts()]  # type: ignore[attr-defined]
    assert kinds == ["text/plain", "text/html"]
    assert ar.reply_subject(msg("Subject: Auto: away")) == "Auto: away"
    assert ar.reply_subject(msg("To: x@y.z")) == "Auto:"
    no_id = message_from_bytes(ar.build_reply(msg("Subject: x"), from_address=USER,
                                              to_address="b@example.org", text="t"),
                               policy=default)
    assert no_id["In-Reply-To"] is None and no_id["References"] is None


def test_redirect_loop_protection() -> None:
    copy = ar.redirect_copy(PERSONAL, "Alice@Example.com")
    assert copy == b"Delivered-To: alice@example.com\r\n" + PERSONAL
    assert ar.redirect_refusal(PERSONAL, USER) is None
    # Come back round to the same recipient: a loop.
    assert ar.redirect_refusal(copy, USER) == ar.LOOP
    # Redirected on by someone else: allowed, until too many hops.
    onward = ar.redirect_copy(copy, "carol@example.net")
    assert ar.redirect_refusal(onward, "dave@example.net") is None
    many = PERSONAL
    for i in range(ar.MAX_REDIRECT_HOPS):
        many = ar.redirect_copy(many, f"hop{i}@example.net")
    assert ar.redirect_refusal(many, "last@example.net") == ar.TOO_MANY_HOPS
    relayed = b"Received: from x\r\n" * ar.MAX_RECEIVED + PERSONAL
    assert ar.redirect_refusal(relayed, "last@example.net") == ar.TOO_MANY_HOPS
    with pytest.raises(ValueError):
        ar.redirect_copy(PERSONAL, "a@b\r\nBcc: c@d")


@given(st.binary(max_size=2000), st.text(max_size=40))
def test_rules_are_total(data: bytes, sender: str) -> None:
    assert ar.reply_refusal(data, sender, [USER]) in (
        None, ar.AUTO_SUBMITTED, ar.MAILING_LIST, ar.BULK, ar.NULL_SENDER,
        ar.AUTOMATED_SENDER, ar.OWN_ADDRESS, ar.NOT_ADDRESSED)
    assert ar.redirect_refusal(data, USER) in (None, ar.LOOP, ar.TOO_MANY_HOPS)
