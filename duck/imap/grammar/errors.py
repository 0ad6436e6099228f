"""Typed errors of the IMAP grammar: the only exceptions the parser lets escape."""

from __future__ import annotations


class ImapProtocolError(Exception):
    """A client sent something the grammar cannot accept.

    ``tag`` is the command's tag when one was read, ``fatal`` says the connection
    must be closed (BYE) because the byte stream cannot be resynchronised, and
    ``code`` suggests an RFC 5530 response code for the BAD/NO/BYE answer.
    """

    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        tag: str | None = None,
        fatal: bool = False,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.tag = tag
        self.fatal = fatal
        self.code = code if code is not None else self.default_code

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, tag={self.tag!r}, "
            f"fatal={self.fatal!r}, code={self.code!r})"
        )


class ParseError(ImapProtocolError):
    """The command (or response) does not match the ABNF."""

    default_code: str | None = "PARSE"


class UnknownCommand(ImapProtocolError):
    """The command verb is not one the grammar knows."""


class LineTooLong(ImapProtocolError):
    """A line exceeded ``Limits.max_line``; the stream cannot be resynchronised."""

    default_code = "TOOBIG"


class LiteralTooLarge(ImapProtocolError):
    """A literal exceeded ``Limits.max_literal`` (or LITERAL-'s 4096 octets)."""

    default_code = "TOOBIG"


class CommandTooLarge(ImapProtocolError):
    """A command with its literals exceeded ``Limits.max_command``."""

    default_code = "TOOBIG"


class NestingTooDeep(ParseError):
    """Parenthesised lists nested deeper than ``Limits.max_depth``."""

    default_code = "LIMIT"


class ReaderStateError(ImapProtocolError):
    """The reader was driven out of order (e.g. accept_literal with nothing pending).

    This is a bug in the caller rather than bad client input; it is still an
    ImapProtocolError so that nothing else escapes the grammar.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, fatal=True, code="SERVERBUG")
