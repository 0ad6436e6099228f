"""Address parts (RFC 5228 section 2.7.4, RFC 5233) and date parts (RFC 5260)."""

from __future__ import annotations

import datetime as dt
import email.utils

#: The separator between user and detail (RFC 5233; the LMTP side uses "+" too).
DETAIL_SEPARATOR = "+"


def addresses(value: str) -> list[str]:
    """The addresses (``local@domain``) in a header value; group names and display
    names are dropped; an unparsable value yields what could be read."""
    found = []
    for _, addr in email.utils.getaddresses([value]):
        if addr:
            found.append(addr)
    return found


def address_part(address: str, part: str) -> str | None:
    """One part of an address: all, localpart, domain, user, detail. None when the
    part is absent (no detail): RFC 5233 section 4 says the test then fails."""
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    if part == "localpart":
        return local
    if part == "domain":
        return domain
    if part == "user":
        return local.split(DETAIL_SEPARATOR, 1)[0]
    if part == "detail":
        if DETAIL_SEPARATOR not in local:
            return None
        return local.split(DETAIL_SEPARATOR, 1)[1]
    return address


def parse_date(value: str) -> dt.datetime | None:
    """An RFC 5322 date-time (with its own zone), None when it is not one. A
    Received field's date is after its last ';' (RFC 5260 section 4.1)."""
    if ";" in value:
        value = value.rsplit(";", 1)[1]
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:  # "-0000": the zone is unknown; RFC 5322 says UTC
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def zone_of(text: str) -> dt.timezone:
    """A ``+hhmm`` / ``-hhmm`` zone."""
    sign = -1 if text[0] == "-" else 1
    minutes = int(text[1:3]) * 60 + int(text[3:5])
    return dt.timezone(sign * dt.timedelta(minutes=minutes))


def _zone_text(when: dt.datetime) -> str:
    offset = when.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def date_part(when: dt.datetime, part: str) -> str:
    """One date part of RFC 5260 section 4.2."""
    part = part.lower()
    if part == "year":
        return f"{when.year:04d}"
    if part == "month":
        return f"{when.month:02d}"
    if part == "day":
        return f"{when.day:02d}"
    if part == "date":
        return f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
    if part == "julian":
        # Modified Julian Day: days since 1858-11-17.
        return str((when.date() - dt.date(1858, 11, 17)).days)
    if part == "hour":
        return f"{when.hour:02d}"
    if part == "minute":
        return f"{when.minute:02d}"
    if part == "second":
        return f"{when.second:02d}"
    if part == "time":
        return f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
    if part == "iso8601":
        zone = _zone_text(when)
        return when.strftime("%Y-%m-%dT%H:%M:%S") + f"{zone[:3]}:{zone[3:]}"
    if part == "std11":
        return email.utils.format_datetime(when)
    if part == "zone":
        return _zone_text(when)
    if part == "weekday":
        return str((when.weekday() + 1) % 7)  # 0 is Sunday
    return ""
