"""Parsing one LMTP command line into a typed event (RFC 5321 section 4.1, RFC 2033).

Pure and stateless: ordering is the protocol machine's business. A line that
cannot be parsed becomes a ``ProtocolError`` carrying the reply to send.
"""

from __future__ import annotations

from duck.lmtp.address import AddressError, AddressErrorKind, Mailbox, parse_path
from duck.lmtp.events import (
    Bdat,
    BodyType,
    DataStart,
    Event,
    Lhlo,
    MailFrom,
    Noop,
    ProtocolError,
    Quit,
    RcptTo,
    Rset,
    StartTls,
    Vrfy,
)
from duck.lmtp.replies import BAD_UTF8, SYNTAX_UNRECOGNIZED, Reply, reply

#: RFC 5321 section 4.5.3.1.4: a command line is at most 512 octets with its CRLF.
MAX_COMMAND_LINE = 512
#: MAIL may be longer by what its parameters add: RFC 1870 section 3 allows 26 more
#: octets for SIZE; " BODY=BINARYMIME" (RFC 3030) and " SMTPUTF8" (RFC 6531) add 25.
MAX_MAIL_LINE = MAX_COMMAND_LINE + 26 + 25
#: BDAT sizes beyond 20 digits are nonsense (and would be slow to convert).
_MAX_SIZE_DIGITS = 20

#: SMTP verbs that are valid elsewhere but not offered here (RFC 5321 section 4.2.4: 502).
_NOT_IMPLEMENTED = frozenset({"EXPN", "HELP", "TURN", "ETRN", "SEND", "SOML", "SAML", "AUTH"})

_PARAM_SYNTAX = reply(501, "5.5.4", "Syntax error in parameters")
_PARAM_UNKNOWN = reply(555, "5.5.4", "MAIL FROM/RCPT TO parameter not recognized")
_NO_ARGS = reply(501, "5.5.4", "This command takes no arguments")
_USE_LHLO = reply(500, "5.5.1", "This is LMTP: use LHLO")
_NON_ASCII = reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")


def parse_command(line: bytes, *, smtputf8: bool) -> Event:
    """Parse one command line (without its CRLF) into a command event or ``ProtocolError``.

    ``smtputf8`` says whether the open transaction declared SMTPUTF8, which
    allows UTF-8 in the RCPT path (RFC 6531 section 3.4).
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return ProtocolError(BAD_UTF8)
    # Trailing spaces are not allowed by RFC 5321 section 4.1.1, but some clients
    # send them and nothing is ambiguous about dropping them.
    text = text.rstrip(" ")
    verb, _, args = text.partition(" ")
    verb = verb.upper()
    if not verb.isascii():
        return ProtocolError(SYNTAX_UNRECOGNIZED)
    handler = _HANDLERS.get(verb)
    if handler is not None:
        return handler(args, smtputf8)
    if verb in ("HELO", "EHLO"):
        # RFC 2033 section 4.1: LMTP servers answer LHLO only.
        return ProtocolError(_USE_LHLO)
    if verb in _NOT_IMPLEMENTED:
        return ProtocolError(reply(502, "5.5.1", f"{verb} not implemented"))
    return ProtocolError(SYNTAX_UNRECOGNIZED)


def _lhlo(args: str, smtputf8: bool) -> Event:
    domain = args.strip(" ")
    if not domain or " " in domain:
        return ProtocolError(reply(501, "5.5.4", "LHLO needs one domain argument"))
    return Lhlo(domain)


def _mail(args: str, smtputf8: bool) -> Event:
    path_text = _after_keyword(args, "FROM:")
    if path_text is None:
        return ProtocolError(reply(501, "5.5.4", "Syntax: MAIL FROM:<address>"))
    try:
        # Parsed permissively first: SMTPUTF8 comes after the path on this very line.
        mailbox, rest = parse_path(path_text, null_allowed=True, smtputf8=True)
    except AddressError as e:
        return ProtocolError(_address_reply(e, "5.1.7"))
    params = _split_params(rest)
    if params is None:
        return ProtocolError(_PARAM_SYNTAX)
    size: int | None = None
    body: BodyType | None = None
    utf8 = False
    seen: set[str] = set()
    for keyword, value in params:
        if keyword in seen:
            return ProtocolError(reply(501, "5.5.4", f"Duplicate {keyword} parameter"))
        seen.add(keyword)
        if keyword == "SIZE":
            if value is None or not _is_number(value):
                return ProtocolError(reply(501, "5.5.4", "Bad SIZE value"))
            size = int(value)
        elif keyword == "BODY":
            try:
                body = BodyType((value or "").upper())
            except ValueError:
                return ProtocolError(reply(501, "5.5.4", "Bad BODY value"))
        elif keyword == "SMTPUTF8":
            if value is not None:
                return ProtocolError(reply(501, "5.5.4", "SMTPUTF8 takes no value"))
            utf8 = True
        else:
            return ProtocolError(_PARAM_UNKNOWN)
    if not utf8 and not _ascii(mailbox):
        # RFC 6531 section 3.5 and RFC 5248: X.6.7 for non-ASCII without SMTPUTF8.
        return ProtocolError(_NON_ASCII)
    return MailFrom(mailbox, size=size, body=body, smtputf8=utf8)


def _rcpt(args: str, smtputf8: bool) -> Event:
    path_text = _after_keyword(args, "TO:")
    if path_text is None:
        return ProtocolError(reply(501, "5.5.4", "Syntax: RCPT TO:<address>"))
    try:
        mailbox, rest = parse_path(path_text, null_allowed=False, smtputf8=smtputf8,
                                   postmaster_allowed=True)
    except AddressError as e:
        return ProtocolError(_address_reply(e, "5.1.3"))
    params = _split_params(rest)
    if params is None:
        return ProtocolError(_PARAM_SYNTAX)
    if params:
        # No RCPT parameters are offered (no DSN), RFC 5321 section 4.1.1.11: 555.
        return ProtocolError(_PARAM_UNKNOWN)
    assert mailbox is not None  # null path refused above
    return RcptTo(mailbox)


def _data(args: str, smtputf8: bool) -> Event:
    return ProtocolError(_NO_ARGS) if args else DataStart()


def _bdat(args: str, smtputf8: bool) -> Event:
    parts = args.split(" ")
    size_text = parts[0]
    last = len(parts) == 2 and parts[1].upper() == "LAST"
    if not _is_number(size_text) or len(parts) > 2 or (len(parts) == 2 and not last):
        # Without a readable size the chunk boundary is lost, so the rest of the
        # stream cannot be told from commands (RFC 3030 section 2: state indeterminate).
        return ProtocolError(reply(501, "5.5.4", "Syntax: BDAT size [LAST]"), fatal=True)
    return Bdat(int(size_text), last)


def _rset(args: str, smtputf8: bool) -> Event:
    return ProtocolError(_NO_ARGS) if args else Rset()


def _noop(args: str, smtputf8: bool) -> Event:
    # RFC 5321 section 4.1.1.9: NOOP may carry a string, which is ignored.
    return Noop()


def _quit(args: str, smtputf8: bool) -> Event:
    return ProtocolError(_NO_ARGS) if args else Quit()


def _vrfy(args: str, smtputf8: bool) -> Event:
    if not args.strip(" "):
        return ProtocolError(reply(501, "5.5.4", "VRFY needs an argument"))
    return Vrfy(args.strip(" "))


def _starttls(args: str, smtputf8: bool) -> Event:
    return ProtocolError(_NO_ARGS) if args else StartTls()


_HANDLERS = {
    "LHLO": _lhlo,
    "MAIL": _mail,
    "RCPT": _rcpt,
    "DATA": _data,
    "BDAT": _bdat,
    "RSET": _rset,
    "NOOP": _noop,
    "QUIT": _quit,
    "VRFY": _vrfy,
    "STARTTLS": _starttls,
}


def _after_keyword(args: str, keyword: str) -> str | None:
    if args[:len(keyword)].upper() != keyword:
        return None
    # RFC 5321 section 4.1.2 has no space after the colon; Postfix, Exim and many
    # clients tolerate one, and it is unambiguous, so we do too.
    return args[len(keyword):].lstrip(" ")


def _split_params(rest: str) -> list[tuple[str, str | None]] | None:
    """``[(KEYWORD, value or None)]`` from `` KEY=value KEY2``, or None if malformed."""
    if not rest:
        return []
    if not rest.startswith(" "):
        return None
    out: list[tuple[str, str | None]] = []
    for item in rest.split(" "):
        if not item:
            continue  # several spaces between parameters are harmless
        keyword, eq, value = item.partition("=")
        # esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); esmtp-value is
        # printable ASCII except "=" (RFC 5321 section 4.1.2).
        if not keyword.isascii() or not keyword.replace("-", "").isalnum() or keyword[0] == "-":
            return None
        if eq and (not value or not all(33 <= ord(c) <= 126 and c != "=" for c in value)):
            return None
        out.append((keyword.upper(), value if eq else None))
    return out


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= _MAX_SIZE_DIGITS


def _ascii(mailbox: Mailbox | None) -> bool:
    return mailbox is None or str(mailbox).isascii()


def _address_reply(error: AddressError, syntax_status: str) -> Reply:
    if error.kind is AddressErrorKind.NON_ASCII:
        return _NON_ASCII
    if error.kind is AddressErrorKind.TOO_LONG:
        return reply(501, "5.5.4", "Path too long")
    return reply(501, syntax_status, f"Bad address syntax: {error}")
