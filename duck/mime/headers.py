"""Header fields: splitting, unfolding, RFC 2047 words, RFC 2045/2231 parameters.

All functions are total on arbitrary bytes: they never raise on content.
"""

from __future__ import annotations

import binascii
import re
from urllib.parse import unquote_to_bytes

from duck.mime.charsets import decode_bytes

_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_EOL_TAIL = re.compile(rb"[\r\n]+\Z")
# RFC 2047 §2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_WSP_ONLY = re.compile(rb"\A[ \t\r\n]*\Z")


def split_field(raw: bytes) -> tuple[str, bytes]:
    """Split one raw header field (folding kept) into (lowercased name, raw value)."""
    name, _, value = raw.partition(b":")
    return name.strip().decode("latin-1").lower(), value


def unfold(value: bytes) -> bytes:
    """RFC 5322 §2.2.3 unfolding; also drops the leading WSP and the final line end."""
    stripped = value.rstrip(b"\r\n")  # (what _EOL_TAIL removes)
    if b"\n" not in stripped:
        # Most fields are one line: the only LF is in the final line end, where
        # no WSP follows it, so _FOLD would change nothing (and costs a regex).
        return stripped.lstrip(b" \t")
    value = _FOLD.sub(b"", value)
    value = _EOL_TAIL.sub(b"", value)
    return value.lstrip(b" \t")


def text(value: bytes) -> str:
    """Raw header text as str: 8-bit bytes read as UTF-8 (RFC 6532), U+FFFD if invalid."""
    return value.decode("utf-8", errors="replace")


def _decode_word(charset: bytes, encoding: bytes, payload: bytes) -> bytes | None:
    try:
        if encoding in (b"b", b"B"):
            payload = payload + b"=" * (-len(payload) % 4)
            return binascii.a2b_base64(payload)
        return binascii.a2b_qp(payload, header=True)
    except (binascii.Error, ValueError):
        return None


def decode_words(value: bytes) -> str:
    """Decode RFC 2047 encoded words in an unfolded header value.

    Whitespace between two adjacent encoded words is dropped (RFC 2047 §6.2) and
    adjacent words in the same charset are joined before decoding, so a multi-byte
    character split across words survives. Unknown charsets decode as UTF-8.
    """
    if b"=?" not in value:
        return text(value)
    # Segments: (charset or None for literal text, bytes).
    segments: list[tuple[str | None, bytes]] = []
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        decoded = _decode_word(match.group(1), match.group(2), match.group(3))
        if decoded is None:
            continue
        # RFC 2231 §5: charset may carry a language suffix, "utf-8*en".
        charset = match.group(1).split(b"*", 1)[0].decode("latin-1").lower()
        previous_is_word = bool(segments) and segments[-1][0] is not None
        if between and not (previous_is_word and _WSP_ONLY.match(between)):
            segments.append((None, between))
        if segments and segments[-1][0] == charset:
            segments[-1] = (charset, segments[-1][1] + decoded)
        else:
            segments.append((charset, decoded))
        pos = match.end()
    segments.append((None, value[pos:]))
    return "".join(
        text(data) if charset is None else decode_bytes(data, charset) for charset, data in segments
    )


def decode_header(value: bytes) -> str:
    """Unfold and RFC 2047-decode a raw header value."""
    return decode_words(unfold(value))


def _split_outside_quotes(value: str) -> list[str]:
    """Split at ';' outside quoted strings, dropping RFC 5322 comments."""
    if '"' not in value and "(" not in value:
        return value.split(";")
    pieces: list[str] = []
    current: list[str] = []
    in_quote = False
    depth = 0
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if in_quote:
            current.append(ch)
            if ch == "\\" and i + 1 < n:
                current.append(value[i + 1])
                i += 1
            elif ch == '"':
                in_quote = False
        elif depth:
            if ch == "\\":
                i += 1
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
        elif ch == '"':
            in_quote = True
            current.append(ch)
        elif ch == "(":
            depth = 1
        elif ch == ";":
            pieces.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    pieces.append("".join(current))
    return pieces


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"':
        end = value.rfind('"')
        inner = value[1:end] if end > 0 else value[1:]
        return re.sub(r"\\(.)", r"\1", inner, flags=re.DOTALL)
    if value.startswith('"'):
        return value[1:]
    return value


_CONTINUATION = re.compile(r"^(?P<name>[^*]+)\*(?:(?P<num>[0-9]+)(?P<enc>\*)?)?$")


def parse_params(pieces: list[str]) -> list[tuple[str, str]]:
    """Parse 'name=value' pieces into (lowercased name, value), RFC 2231 decoded.

    Continuations (name*0, name*1...) are joined in numeric order; charset-encoded
    pieces (name*=utf-8''%E2%82%AC) are percent-decoded and decoded in their charset.
    When both a plain and an RFC 2231 form of a name appear, the RFC 2231 one wins.
    """
    order: list[str] = []
    plain: dict[str, str] = {}
    # name -> list of (number, encoded, value)
    extended: dict[str, list[tuple[int, bool, str]]] = {}
    for piece in pieces:
        name, eq, value = piece.partition("=")
        name = name.strip().lower()
        if not eq or not name:
            continue
        match = _CONTINUATION.match(name)
        if match is None:
            if name not in plain:
                plain[name] = _unquote(value)
                if name not in order:
                    order.append(name)
            continue
        base = match.group("name")
        if len(match.group("num") or "") > 6:
            continue
        if match.group("num") is None:
            number, encoded = 0, True
        else:
            number, encoded = int(match.group("num")), match.group("enc") is not None
        extended.setdefault(base, []).append((number, encoded, _unquote(value)))
        if base not in order:
            order.append(base)
    result: list[tuple[str, str]] = []
    for name in order:
        if name in extended:
            result.append((name, _join_extended(extended[name])))
        else:
            result.append((name, plain[name]))
    return result


def _join_extended(pieces: list[tuple[int, bool, str]]) -> str:
    pieces.sort(key=lambda piece: piece[0])
    charset: str | None = None
    raw = bytearray()
    for index, (_number, encoded, value) in enumerate(pieces):
        if encoded:
            if index == 0 and value.count("'") >= 2:
                charset, _lang, value = value.split("'", 2)
            raw += unquote_to_bytes(value)
        else:
            raw += value.encode("utf-8", errors="replace")
    return decode_bytes(bytes(raw), charset or "utf-8")


def parse_content_type(value: bytes | None) -> tuple[str, str, list[tuple[str, str]]] | None:
    """Parse a Content-Type value into (type, subtype, params); None if invalid."""
    if value is None:
        return None
    pieces = _split_outside_quotes(text(unfold(value)))
    kind, slash, subtype = pieces[0].partition("/")
    kind, subtype = kind.strip().lower(), subtype.strip().lower()
    if not slash or not _is_token(kind) or not _is_token(subtype):
        return None
    return kind, subtype, parse_params(pieces[1:])


def parse_disposition(value: bytes | None) -> tuple[str, list[tuple[str, str]]] | None:
    """Parse a Content-Disposition value (RFC 2183) into (type, params)."""
    if value is None:
        return None
    pieces = _split_outside_quotes(text(unfold(value)))
    kind = pieces[0].strip().lower()
    if not _is_token(kind):
        return None
    return kind, parse_params(pieces[1:])


def parse_language(value: bytes | None) -> list[str]:
    """Content-Language (RFC 3282): the list of language tags."""
    if value is None:
        return []
    joined = "".join(_split_outside_quotes(text(unfold(value))))
    return [tag.strip() for tag in joined.split(",") if tag.strip()]


def parse_token(value: bytes | None) -> str | None:
    """A single token value such as Content-Transfer-Encoding, lowercased."""
    if value is None:
        return None
    token = _split_outside_quotes(text(unfold(value)))[0].strip().lower()
    return token or None


_TOKEN = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$")


def _is_token(value: str) -> bool:
    return bool(_TOKEN.match(value))
