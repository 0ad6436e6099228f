"""Random secrets the store hands out once and keeps only as digests.

Application passwords, API tokens and recovery codes are drawn by the server
with ``secrets`` (60 to 256 bits), so, unlike a chosen password, guessing one is
hopeless whatever the hash: a SHA-256 digest is enough to keep them (a slow KDF
would only slow logins down), and it can be looked up by equality, so a login
costs one indexed query however many the user has. Equality in the database
leaks nothing usable: the digest of a wrong guess says nothing about the right one.
"""

from __future__ import annotations

import hashlib
import secrets
import string

#: Application passwords: 16 lowercase letters (~75 bits), shown in groups of
#: four; spaces and case are ignored on input (typed on phones).
APP_PASSWORD_LENGTH = 16
#: API tokens carry a prefix so that secret scanners can recognise a leaked one.
API_TOKEN_PREFIX = "duck_"


def digest(secret: str) -> str:
    """The stored form of a server-drawn secret: SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_app_password() -> str:
    """A fresh application password, as shown to the user (``abcd efgh ijkl mnop``)."""
    letters = "".join(secrets.choice(string.ascii_lowercase)
                      for _ in range(APP_PASSWORD_LENGTH))
    return " ".join(letters[i:i + 4] for i in range(0, APP_PASSWORD_LENGTH, 4))


def app_password_form(secret: str) -> str | None:
    """``secret`` normalised as an application password, or None when it cannot be
    one (then it is only tried as the main password)."""
    text = "".join(secret.split()).lower()
    if len(text) == APP_PASSWORD_LENGTH and text.isascii() and text.isalpha():
        return text
    return None


def new_api_token() -> str:
    """A fresh API bearer token (256 bits)."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_recovery_code() -> str:
    """A two-factor recovery code: 12 characters of base32 (60 bits), ``xxxx-xxxx-xxxx``."""
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: read off paper
    raw = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def recovery_form(code: str) -> str:
    """A recovery code as typed, normalised (dashes, spaces and case ignored)."""
    return "".join(c for c in code.lower() if c.isalnum())
