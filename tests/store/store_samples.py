"""Message builders shared by the store tests."""

from __future__ import annotations


def simple_message(subject: str = "hello", body: str = "Hi there.\r\n",
                   sender: str = "bob@example.com") -> bytes:
    """A small single-part message."""
    return (
        f"From: Bob <{sender}>\r\nTo: alice@example.com\r\nSubject: {subject}\r\n"
        "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <m1@example.com>\r\n\r\n"
        f"{body}"
    ).encode()


def multipart_message(attachment: bytes, text: str = "See attached.\r\n",
                      subject: str = "report") -> bytes:
    """A multipart/mixed message with a text part and a binary attachment."""
    return (
        b"From: carol@example.com\r\nTo: alice@example.com\r\nSubject: " + subject.encode()
        + b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XyZ\"\r\n\r\n"
        b"preamble\r\n--XyZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + text.encode() + b"\r\n--XyZ\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + attachment + b"\r\n--XyZ--\r\nepilogue\r\n"
    )
