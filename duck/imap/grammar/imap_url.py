"""IMAP URLs (RFC 5092) naming one message or a part of it, as CATENATE (RFC 4469)
uses them: parsed into their pieces; which message they name is the server's
business (duck/imap/commands/catenate.py).

The forms accepted are those a CATENATE URL can take when it names a message of
the logged-in user:

- ``imap://[user[;AUTH=type]@]host[:port]/`` + ``imessagepart`` (RFC 5092 §6),
- ``//host/...`` (``inetwork-path``, the same once resolved),
- ``/`` + ``imessagepart`` (``iabsolute-path``: relative to the server),
- ``;UID=n[/;SECTION=s][/;PARTIAL=o.l]`` (``irelative-path`` without a mailbox:
  relative to the selected mailbox).

``imessagepart = imailbox-ref iuid [isection] [ipartial] [iurlauth]``. A relative
path that starts with a mailbox name (``INBOX/;UID=1``) would resolve against the
base URL's last path segment (RFC 3986 §5.2.3), which for a mailbox hierarchy is no
sensible name; it is refused here rather than guessed at.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import unquote_to_bytes

import attrs

from .errors import ImapProtocolError
from .fetch_items import BodySection, parse_section_text


class ImapUrlError(ValueError):
    """The URL is not an IMAP URL of a form served (the text says why)."""


@attrs.frozen
class ImapUrl:
    """One message (or part of one) named by an IMAP URL.

    ``server`` is False for a URL relative to the selected mailbox (``mailbox``
    None); ``user`` is None when the URL names none (RFC 5092 §3: anonymous).
    ``partial`` is ``(offset, length)`` with ``length`` None for "to the end".
    """

    uid: int
    mailbox: str | None = None
    uidvalidity: int | None = None
    section: BodySection | None = None
    partial: tuple[int, int | None] | None = None
    user: str | None = None
    host: str | None = None
    server: bool = True
    urlauth: bool = False
    #: ``;EXPIRE=`` (RFC 4467 §3), as an aware datetime.
    expire: dt.datetime | None = None
    #: ``;URLAUTH=access[:mechanism:token]`` (RFC 4467 §3): the access identifier
    #: ("anonymous", "authuser", "user+name", "submit+name"; names decoded), and
    #: the mechanism (upper-cased) and token when the URL is authorized.
    access: str | None = None
    mechanism: str | None = None
    token: str | None = None
    #: The URL up to and including the access identifier (RFC 4467 §2: the "rump"
    #: the token authorizes), exactly as given.
    rump: str | None = None


#: RFC 5092 ``iserver = [iuserinfo "@"] host [":" port]``; ``iauth`` is dropped.
_SERVER_RE = re.compile(
    r"(?:(?P<user>[^;/]*)(?:;AUTH=(?:\*|[^@/]+))?@)?(?P<host>\[[^\]/@]+\]|[^:/@]+)(?::\d*)?",
    re.IGNORECASE,
)
#: ``imessagepart`` after the "/" that ends the server (or the base path).
_PART_RE = re.compile(
    r"(?P<mbox>.*?)(?:;UIDVALIDITY=(?P<uidv>[1-9][0-9]{0,9}))?"
    r"/;UID=(?P<uid>[1-9][0-9]{0,9})"
    r"(?:/;SECTION=(?P<section>[^;]*?))?"
    r"(?:/;PARTIAL=(?P<off>[0-9]{1,10})(?:\.(?P<len>[1-9][0-9]{0,9}))?)?"
    r"(?:;EXPIRE=(?P<expire>[^;]*))?"
    r"(?:;URLAUTH=(?P<access>[^:]*)(?::(?P<mech>[^:]*):(?P<token>.*))?)?",
    re.IGNORECASE | re.DOTALL,
)
_RELATIVE_RE = re.compile(r";UID=", re.IGNORECASE)
#: Octets an IMAP URL may carry unencoded (RFC 5092 ``bchar`` and friends; "%" for
#: pct-encoded, "[", "]" and ":" for a host).
_URL_CHARS_RE = re.compile(r"[A-Za-z0-9\-._~!$'()*+,&=:@/;%\[\]]*")
UINT32_MAX = 2**32 - 1


def _decode(text: str, what: str) -> str:
    """Percent-decoding to UTF-8 (RFC 5092 §3: mailbox names are UTF-8, not mUTF-7)."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise ImapUrlError(f"bad percent-encoding in the {what}")
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise ImapUrlError(f"the {what} is not UTF-8") from None


def _number(text: str, what: str) -> int:
    value = int(text)
    if value > UINT32_MAX:
        raise ImapUrlError(f"{what} out of range")
    return value


def parse_imap_url(url: str) -> ImapUrl:
    """The parts of an IMAP URL naming a message (ImapUrlError when it is not one)."""
    if not _URL_CHARS_RE.fullmatch(url):
        raise ImapUrlError("characters an IMAP URL cannot hold")
    user = host = None
    server = True
    low = url[:7].lower()
    if low.startswith("imap://") or url.startswith("//"):
        rest = url[7:] if low.startswith("imap://") else url[2:]
        m = _SERVER_RE.match(rest)
        if m is None or m.end() >= len(rest) or rest[m.end()] != "/":
            raise ImapUrlError("an IMAP URL needs a server and a message path")
        if m.group("user"):
            user = _decode(m.group("user"), "user name")
        host = _decode(m.group("host"), "host")
        path = rest[m.end() + 1:]
    elif url.startswith("/"):
        path = url[1:]
    elif _RELATIVE_RE.match(url):
        path = "/" + url  # the mailbox is the selected one
        server = False
    else:
        raise ImapUrlError("only absolute IMAP URLs, /mailbox/;UID= and ;UID= are served")
    m = _PART_RE.fullmatch(path)
    if m is None:
        raise ImapUrlError("the URL names no message (mailbox/;UID=n)")
    if server and not m.group("mbox"):
        raise ImapUrlError("the URL names no mailbox")
    if ";" in m.group("mbox"):
        raise ImapUrlError("a mailbox name in a URL has its ';' percent-encoded")
    mailbox = _decode(m.group("mbox"), "mailbox name") if server else None
    section = None
    if m.group("section") is not None:
        text = _decode(m.group("section"), "section")
        try:
            section = parse_section_text(text.encode("utf-8"))
        except (ValueError, ImapProtocolError) as exc:
            raise ImapUrlError(f"bad section: {exc}") from None
    partial = None
    if m.group("off") is not None:
        length = m.group("len")
        partial = (_number(m.group("off"), "partial offset"),
                   None if length is None else _number(length, "partial length"))
    uidv = m.group("uidv")
    expire = _expire(m.group("expire")) if m.group("expire") is not None else None
    access = m.group("access")
    rump = None
    if access is not None:
        access = _access(access)
        end = m.end("access")
        rump = url[: len(url) - len(path) + end]
    return ImapUrl(
        uid=_number(m.group("uid"), "UID"), mailbox=mailbox,
        uidvalidity=None if uidv is None else _number(uidv, "UIDVALIDITY"),
        section=section, partial=partial, user=user, host=host, server=server,
        urlauth=m.group("expire") is not None or m.group("access") is not None,
        expire=expire, access=access,
        mechanism=m.group("mech").upper() if m.group("mech") is not None else None,
        token=m.group("token"), rump=rump,
    )


def _expire(text: str) -> dt.datetime:
    """RFC 4467 §3: ``;EXPIRE=`` takes an RFC 3339 date-time with a zone."""
    try:
        value = dt.datetime.fromisoformat(_decode(text, "expiry").replace("z", "Z"))
    except ValueError:
        raise ImapUrlError("bad EXPIRE date-time") from None
    if value.tzinfo is None:
        raise ImapUrlError("EXPIRE needs a time zone")
    return value


#: RFC 4467 §9: ``access = ("submit+" enc-user) / ("user+" enc-user) / "authuser" /
#: "anonymous"``.
_ACCESS_RE = re.compile(r"(?:(?P<kind>submit|user)\+(?P<name>.+)|authuser|anonymous)",
                        re.IGNORECASE | re.DOTALL)


def _access(text: str) -> str:
    m = _ACCESS_RE.fullmatch(text)
    if m is None:
        raise ImapUrlError("bad URLAUTH access identifier")
    if m.group("kind") is None:
        return text.lower()
    return f"{m.group('kind').lower()}+{_decode(m.group('name'), 'access user name')}"
