"""TLS for every protocol: the configured certificate, or a self-signed one.

With no certificate configured, one self-signed certificate is generated with
``cryptography`` into the data directory on first start and reused afterwards,
so clients that pin it keep working across restarts.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
from pathlib import Path

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)

#: Seconds a client has to finish a TLS handshake.
HANDSHAKE_TIMEOUT = 30.0


class HandshakeFailed(Exception):
    """A STARTTLS/STLS handshake failed or timed out (the connection is unusable)."""


async def start_tls(stream: trio.abc.Stream, context: ssl.SSLContext,
                    timeout: float = HANDSHAKE_TIMEOUT) -> trio.SSLStream[trio.abc.Stream]:
    """The server side of a TLS handshake over ``stream`` (STARTTLS, STLS), bounded
    by ``timeout``; HandshakeFailed when it does not complete."""
    tls = trio.SSLStream(stream, context, server_side=True)
    with trio.move_on_after(timeout) as scope:
        try:
            await tls.do_handshake()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError,
                OSError) as exc:
            raise HandshakeFailed(f"TLS handshake failed: {exc!r}") from exc
    if scope.cancelled_caught:
        raise HandshakeFailed("TLS handshake timed out")
    return tls


def ensure_self_signed(data_dir: Path, hostname: str) -> tuple[Path, Path]:
    """Return (cert, key) paths under ``data_dir/tls``, creating them if absent."""
    tls_dir = data_dir / "tls"
    cert_path, key_path = tls_dir / "cert.pem", tls_dir / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    tls_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost")]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Write the key readable by the owner only, then the certificate.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log.info("generated a self-signed TLS certificate for %s in %s", hostname, tls_dir)
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side SSL context with modern defaults (TLS 1.2+)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
