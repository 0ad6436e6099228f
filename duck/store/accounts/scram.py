"""SCRAM-SHA-256 (RFC 5802, RFC 7677): the stored keys and the server's side of
the exchange, sans-IO.

At password set the store keeps only ``StoredKey``, ``ServerKey``, the salt and
the iteration count (RFC 5802 §3): enough to verify a client's proof and to prove
the server knows them, never enough to log in as the user elsewhere.

The exchange (RFC 5802 §5)::

    C: n,,n=user,r=<cnonce>                      client-first
    S: r=<cnonce><snonce>,s=<salt>,i=<iter>      server-first
    C: c=biws,r=<nonce>,p=<proof>                client-final
    S: v=<server signature>                      server-final

Deviation: passwords are not SASLprep-ed (RFC 4013 is not in the standard
library); duck's password check does not normalise either, so both agree for every
password, and clients that do normalise agree for every ASCII password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Any

import attrs

#: RFC 7677 §4: at least 4096 iterations.
ITERATIONS = 4096
MECHANISM = "SCRAM-SHA-256"
#: Longest message of the exchange we read (client-first or client-final).
MAX_MESSAGE = 4096


class ScramError(Exception):
    """The client's message is malformed or its proof is wrong (RFC 5802 §7 e=)."""


@attrs.frozen
class ScramKeys:
    """What the store keeps of a password for SCRAM-SHA-256."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def document(self) -> dict[str, Any]:
        """The form kept in the user's document."""
        return {"salt": self.salt, "i": self.iterations, "stored_key": self.stored_key,
                "server_key": self.server_key}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ScramKeys:
        """Read back :meth:`document`."""
        return cls(bytes(doc["salt"]), int(doc["i"]), bytes(doc["stored_key"]),
                   bytes(doc["server_key"]))


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


def derive_keys(password: str, *, salt: bytes | None = None,
                iterations: int = ITERATIONS) -> ScramKeys:
    """RFC 5802 §3: SaltedPassword = Hi(password, salt, i); StoredKey =
    H(HMAC(SaltedPassword, "Client Key")); ServerKey = HMAC(SaltedPassword, "Server Key")."""
    salt = secrets.token_bytes(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return ScramKeys(salt, iterations, hashlib.sha256(client_key).digest(),
                     _hmac(salted, b"Server Key"))


def _attributes(message: str) -> list[tuple[str, str]]:
    out = []
    for item in message.split(","):
        if len(item) < 2 or item[1] != "=":
            raise ScramError("invalid-encoding")
        out.append((item[0], item[2:]))
    return out


def _saslname(value: str) -> str:
    """RFC 5802 §5.1: ``=2C`` is a comma and ``=3D`` an equals sign; any other ``=``
    is an error."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "=":
            code = value[i + 1:i + 3]
            if code == "2C":
                out.append(",")
            elif code == "3D":
                out.append("=")
            else:
                raise ScramError("invalid-username-encoding")
            i += 3
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


@attrs.define
class ScramServer:
    """One server-side SCRAM-SHA-256 exchange.

    ``ScramServer(client_first)`` parses the first message (``username`` is then
    known), ``server_first(keys)`` answers it, ``client_final(message)`` checks the
    proof and returns the server-final message, or raises :class:`ScramError`.
    """

    client_first: bytes
    #: The server's part of the nonce; drawn at random unless given (test vectors).
    server_nonce: str | None = None
    username: str = attrs.field(init=False, default="")
    _client_first_bare: str = attrs.field(init=False, default="")
    _gs2_header: str = attrs.field(init=False, default="")
    _nonce: str = attrs.field(init=False, default="")
    _server_first: str = attrs.field(init=False, default="")
    _keys: ScramKeys | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        if len(self.client_first) > MAX_MESSAGE:
            raise ScramError("other-error")
        try:
            text = self.client_first.decode("utf-8")
        except UnicodeDecodeError:
            raise ScramError("invalid-encoding") from None
        # gs2-header = gs2-cbind-flag "," [authzid] ","
        flag, sep, rest = text.partition(",")
        authzid, sep2, bare = rest.partition(",")
        if not sep or not sep2:
            raise ScramError("invalid-encoding")
        if flag == "p" or flag.startswith("p="):
            # No channel binding is offered (no SCRAM-SHA-256-PLUS).
            raise ScramError("channel-binding-not-supported")
        if flag not in ("n", "y"):
            raise ScramError("invalid-encoding")
        attributes = _attributes(bare)
        if len(attributes) < 2 or attributes[0][0] != "n" or attributes[1][0] != "r":
            raise ScramError("invalid-encoding")
        if attributes[0][1] == "" or attributes[1][1] == "":
            raise ScramError("invalid-encoding")
        username = _saslname(attributes[0][1])
        if authzid and (not authzid.startswith("a=") or _saslname(authzid[2:]) != username):
            # Acting as another user is not offered.
            raise ScramError("other-error")
        self.username = username
        self._gs2_header = f"{flag},{authzid},"
        self._client_first_bare = bare
        own = self.server_nonce or base64.b64encode(secrets.token_bytes(18)).decode()
        self._nonce = attributes[1][1] + own

    def server_first(self, keys: ScramKeys) -> bytes:
        """The server-first message for the user's keys (fake ones for an unknown
        user, so that the answer does not say whether the user exists)."""
        self._keys = keys
        salt = base64.b64encode(keys.salt).decode()
        self._server_first = f"r={self._nonce},s={salt},i={keys.iterations}"
        return self._server_first.encode()

    def client_final(self, message: bytes) -> bytes:
        """Verify the client's proof (RFC 5802 §3); the server-final message."""
        if self._keys is None or len(message) > MAX_MESSAGE:
            raise ScramError("other-error")
        try:
            text = message.decode("utf-8")
        except UnicodeDecodeError:
            raise ScramError("invalid-encoding") from None
        without_proof, sep, proof_part = text.rpartition(",p=")
        if not sep:
            raise ScramError("invalid-proof")
        attributes = dict(_attributes(without_proof))
        expected_binding = base64.b64encode(self._gs2_header.encode()).decode()
        if attributes.get("c") != expected_binding:
            raise ScramError("channel-bindings-dont-match")
        if not hmac.compare_digest(attributes.get("r", "").encode(), self._nonce.encode()):
            raise ScramError("other-error")
        try:
            proof = base64.b64decode(proof_part, validate=True)
        except (binascii.Error, ValueError):
            raise ScramError("invalid-encoding") from None
        auth_message = ",".join(
            (self._client_first_bare, self._server_first, without_proof)).encode()
        signature = _hmac(self._keys.stored_key, auth_message)
        if len(proof) != len(signature):
            raise ScramError("invalid-proof")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), self._keys.stored_key):
            raise ScramError("invalid-proof")
        server_signature = _hmac(self._keys.server_key, auth_message)
        return b"v=" + base64.b64encode(server_signature)


def fake_keys(username: str, secret: bytes) -> ScramKeys:
    """Keys for a user who does not exist or has none: the salt is stable per user
    name (a keyed digest), so asking twice does not tell real from fake."""
    salt = _hmac(secret, username.encode("utf-8"))[:16]
    return ScramKeys(salt, ITERATIONS, secrets.token_bytes(32), secrets.token_bytes(32))
