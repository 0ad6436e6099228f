"""Charset lookup that is safe on hostile input.

Python's codec registry also holds bytes-to-bytes codecs (zlib, base64, rot13...)
and special-purpose ones (idna, unicode_escape); a MIME charset label must never
reach those, so every lookup goes through `text_codec`.
"""

from __future__ import annotations

import codecs
import functools

#: Text codecs that are not character sets a mail could legitimately declare.
_REFUSED = frozenset(
    {"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape", "mbcs", "oem"}
)

#: Labels whose declared repertoire is a subset of another we decode with instead.
_ALIASES = {
    # 8-bit bytes in "us-ascii" text are common; UTF-8 salvages them and is a superset.
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "ansi_x3.4-1968": "utf-8",
    "iso-8859-8-i": "iso-8859-8",
    "ks_c_5601-1987": "cp949",
    "x-unknown": "utf-8",
    "unknown-8bit": "utf-8",
    "gb2312": "gb18030",
    "gbk": "gb18030",
}


@functools.lru_cache(maxsize=256)
def text_codec(label: str | None) -> str:
    """Return the name of a text codec for a MIME charset label (UTF-8 if unknown)."""
    if not label:
        return "utf-8"
    name = label.strip().strip('"').lower()
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return "utf-8"
    if not getattr(info, "_is_text_encoding", True) or info.name.replace("_", "-") in _REFUSED:
        return "utf-8"
    return info.name


def decode_bytes(data: bytes, label: str | None) -> str:
    """Decode `data` in charset `label`; undecodable bytes become U+FFFD, never raise."""
    codec = text_codec(label)
    try:
        return data.decode(codec, errors="replace")
    except (UnicodeError, LookupError, ValueError):
        return data.decode("utf-8", errors="replace")


def incremental_decoder(label: str | None) -> codecs.IncrementalDecoder:
    """An incremental decoder for charset `label` with errors='replace'."""
    codec = text_codec(label)
    try:
        return codecs.getincrementaldecoder(codec)(errors="replace")
    except (LookupError, ValueError, TypeError):
        return codecs.getincrementaldecoder("utf-8")(errors="replace")
