"""Email address validation and normalisation for users and LMTP routing."""

from __future__ import annotations

import re
import unicodedata

from ..errors import InvalidInput, require_utf8

# RFC 5321 §4.5.3.1: 64 octets of local part, 255 of domain, 256 of path (with <>).
MAX_LOCAL = 64
MAX_DOMAIN = 255
MAX_ADDRESS = 254

_LABEL = re.compile(r"^(?!-)[0-9a-z\u0080-\U0010ffff-]{1,63}(?<!-)$")
# A dot-atom local part (RFC 5322 §3.2.3), extended to UTF-8 per RFC 6531.
_ATEXT = r"[0-9a-z!#$%&'*+/=?^_`{|}~\u0080-\U0010ffff-]+"
_LOCAL = re.compile(rf"^{_ATEXT}(\.{_ATEXT})*$")


def normalize_address(address: str) -> str:
    """Return the canonical form of ``address`` or raise :class:`InvalidInput`.

    Case is folded in the whole address: the Rust engine has no case-insensitive
    unique index, and no mail system worth serving distinguishes local parts by
    case. Unicode is NFC-normalised so that one address has one spelling.
    """
    if not isinstance(address, str):
        raise InvalidInput("address must be a string")
    require_utf8(address, "address")
    text = unicodedata.normalize("NFC", address.strip()).lower()
    if len(text.encode("utf-8")) > MAX_ADDRESS:
        raise InvalidInput("address too long")
    local, sep, domain = text.rpartition("@")
    if not sep or not local or not domain:
        raise InvalidInput("not an email address")
    if len(local.encode("utf-8")) > MAX_LOCAL:
        raise InvalidInput("local part too long")
    if not _LOCAL.match(local):
        raise InvalidInput("invalid local part")
    domain = domain.rstrip(".")
    labels = domain.split(".")
    if len(domain) > MAX_DOMAIN or not all(_LABEL.match(label) for label in labels):
        raise InvalidInput("invalid domain")
    return f"{local}@{domain}"


def split_detail(address: str, separator: str = "+") -> tuple[str, str | None]:
    """Split ``user+tag@domain`` into (``user@domain``, ``tag``) (sub-addressing)."""
    local, _, domain = address.rpartition("@")
    base, sep, tag = local.partition(separator)
    if not sep or not base:
        return address, None
    return f"{base}@{domain}", tag
