"""Password hashing: scrypt from the standard library, salted, in PHC string form.

Format: ``$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64>$<hash b64>`` so that the cost
parameters can be raised later without invalidating stored hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# N=2**15, r=8: about 32 MB and tens of milliseconds per hash, OWASP's minimum
# recommendation for scrypt. Verification runs in a worker thread.
LOG_N = 15
R = 8
P = 1
_DKLEN = 32
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, log_n: int = LOG_N) -> str:
    """Return a salted scrypt hash of ``password`` in PHC string form."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=2**log_n, r=R, p=P, maxmem=_MAXMEM, dklen=_DKLEN
    )
    return f"$scrypt$ln={log_n},r={R},p={P}${_b64(salt)}${_b64(digest)}"


def parameters(stored: str) -> tuple[int, int, int] | None:
    """(log2 N, r, p) of a stored scrypt hash; None when it is not one."""
    try:
        _, _scheme, params, _salt, _hash = stored.split("$")
        values = dict(item.split("=", 1) for item in params.split(","))
        return int(values["ln"]), int(values["r"]), int(values["p"])
    except (ValueError, KeyError):
        return None


def needs_rehash(stored: str, *, log_n: int = LOG_N) -> bool:
    """Whether a hash was made with weaker parameters than today's (or another
    scheme): it is replaced at the next successful login, when the password is
    at hand (parameters are stored per hash, so old ones keep verifying)."""
    found = parameters(stored)
    if found is None or not stored.startswith("$scrypt$"):
        return True
    old_n, old_r, old_p = found
    return (old_n, old_r, old_p) < (log_n, R, P)


def verify_password(password: str, stored: str) -> bool:
    """Check ``password`` against a hash made by :func:`hash_password`, in constant time."""
    try:
        _, scheme, params, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        values = dict(item.split("=", 1) for item in params.split(","))
        log_n, r, p = int(values["ln"]), int(values["r"]), int(values["p"])
        expected = _unb64(hash_b64)
        digest = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt_b64),
            n=2**log_n,
            r=r,
            p=p,
            maxmem=_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, KeyError):
        return False
    return hmac.compare_digest(digest, expected)


class VerifiedCache:
    """Recently verified (stored hash, password) pairs, so that a client logging in
    again and again does not pay a scrypt each time (Dovecot's auth cache).

    An entry is a keyed digest (a secret drawn per process) of the stored hash and
    the password, never the password itself. Because the stored hash is part of the
    key, a password change misses the cache at once in every process; whether the
    account is disabled is read from the user's document on every login, not
    cached. Entries expire after ``ttl`` seconds; at most ``size`` are kept (the
    oldest go first). Only successes are cached: a wrong password always costs a
    full verification (and the login throttle counts it).
    """

    def __init__(self, *, ttl: float = 600.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._secret = secrets.token_bytes(32)
        self._entries: dict[bytes, float] = {}

    def key(self, password: str, stored: str) -> bytes:
        """The cache key of a (password, stored hash) pair."""
        message = stored.encode("utf-8") + b"\0" + password.encode("utf-8")
        return hmac.digest(self._secret, message, "sha256")

    def fresh(self, key: bytes, *, now: float) -> bool:
        """Whether this pair was verified less than ``ttl`` seconds ago."""
        expires = self._entries.get(key)
        if expires is None:
            return False
        if expires > now:
            return True
        del self._entries[key]
        return False

    def remember(self, key: bytes, *, now: float) -> None:
        """Record a successful verification."""
        self._entries.pop(key, None)
        if len(self._entries) >= self.size:
            # Dicts keep insertion order: the first key is the oldest entry.
            del self._entries[next(iter(self._entries))]
        self._entries[key] = now + self.ttl
