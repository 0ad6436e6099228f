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
