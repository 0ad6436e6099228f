"""Incremental extraction of searchable text from text/* part bodies.

Transfer decoding (base64, quoted-printable) and charset decoding both run
incrementally on whatever chunks the indexer hands over, so a text part is never
held whole; decoding stops once the message's text budget is spent.
"""

from __future__ import annotations

import binascii
import html
import re

from duck.mime.charsets import incremental_decoder

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_B64_DELETE = bytes(c for c in range(256) if c not in _B64_ALPHABET)
#: A quoted-printable line longer than this is decoded without waiting for its end.
_QP_MAX_PENDING = 64 * 1024

_BLANKS = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class TextBudget:
    """Characters of text still allowed for one message."""

    def __init__(self, limit: int) -> None:
        self.remaining = limit
        self.exhausted = False


class TextExtractor:
    """Decodes one text part's body as it streams in."""

    def __init__(self, encoding: str, charset: str, html_markup: bool, budget: TextBudget):
        self._encoding = encoding
        self._decoder = incremental_decoder(charset)
        self._html = html_markup
        self._budget = budget
        self._pending = b""
        self._out: list[str] = []

    def feed(self, data: bytes) -> None:
        """Add the next encoded body bytes."""
        if self._budget.remaining <= 0:
            self._budget.exhausted = True
            return
        self._emit(self._transfer_decode(data, final=False), final=False)

    def close(self) -> str:
        """End of the body: the part's decoded text (HTML roughly stripped)."""
        if self._budget.remaining > 0:
            self._emit(self._transfer_decode(b"", final=True), final=True)
        result = "".join(self._out)
        self._out = []
        if self._html:
            result = strip_html(result)
        return result

    def _emit(self, data: bytes, final: bool) -> None:
        try:
            decoded = self._decoder.decode(data, final)
        except (UnicodeError, ValueError, TypeError):
            decoded = data.decode("utf-8", errors="replace")
        if len(decoded) > self._budget.remaining:
            decoded = decoded[: self._budget.remaining]
            self._budget.exhausted = True
        self._budget.remaining -= len(decoded)
        if decoded:
            self._out.append(decoded)

    def _transfer_decode(self, data: bytes, final: bool) -> bytes:
        if self._encoding == "base64":
            data = self._pending + data.translate(None, _B64_DELETE)
            usable = len(data) if final else len(data) // 4 * 4
            chunk, self._pending = data[:usable], data[usable:]
            if final:
                chunk += b"=" * (-len(chunk) % 4)
            try:
                return binascii.a2b_base64(chunk)
            except (binascii.Error, ValueError):
                return b""
        if self._encoding == "quoted-printable":
            data = self._pending + data
            if final:
                cut = len(data)
            else:
                cut = data.rfind(b"\n") + 1
                if cut == 0 and len(data) > _QP_MAX_PENDING:
                    cut = len(data) - 2  # keep a possibly split "=XX"
            chunk, self._pending = data[:cut], data[cut:]
            try:
                return binascii.a2b_qp(chunk)
            except (binascii.Error, ValueError):
                return chunk
        return data


def strip_html(markup: str) -> str:
    """Rough HTML to text: drop scripts, styles, comments and tags; unescape entities.

    Written with str.find rather than regular expressions so that hostile markup
    (thousands of unclosed "<" or "<!--") costs linear time.
    """
    out: list[str] = []
    lower = markup.lower()
    i = 0
    n = len(markup)
    while i < n:
        lt = markup.find("<", i)
        if lt < 0:
            out.append(markup[i:])
            break
        out.append(markup[i:lt])
        out.append(" ")
        if markup.startswith("<!--", lt):
            end = markup.find("-->", lt + 4)
            i = n if end < 0 else end + 3
            continue
        gt = markup.find(">", lt + 1)
        if gt < 0:
            break  # an unterminated tag runs to the end
        i = gt + 1
        words = lower[lt + 1 : gt].split(None, 1)  # (none in "<>" or "< >")
        name = words[0] if words else ""
        if name in ("script", "style"):
            close = lower.find("</" + name, i)
            if close < 0:
                break
            gt = markup.find(">", close)
            i = n if gt < 0 else gt + 1
    text = html.unescape("".join(out))
    text = _BLANKS.sub(" ", text)
    return _BLANK_LINES.sub("\n\n", text).strip()
