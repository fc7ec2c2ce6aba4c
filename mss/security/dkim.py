"""DKIM keys (RFC 6376, RFC 8463): one RSA-2048 and one Ed25519 key per domain.

`mss init` creates them under `<data-dir>/dkim/<domain>/<selector>.key` and
prints the DNS TXT records to publish. Formats follow dkimpy: RSA keys as
PKCS#1 PEM, Ed25519 private keys as the base64 of the 32-byte seed (RFC 8463
§4). Signing and verification live with the mail path (delivery).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

RSA_BITS = 2048


@dataclass(frozen=True, slots=True)
class DKIMKey:
    domain: str
    selector: str
    algorithm: str  # "rsa" or "ed25519"
    path: Path

    def private_key(self) -> bytes:
        return self.path.read_bytes()

    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


def _write_secret(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def key_path(keys_dir: Path, domain: str, selector: str) -> Path:
    return keys_dir / domain / f"{selector}.key"


def ensure_keys(
    keys_dir: Path, domain: str, selector_rsa: str, selector_ed25519: str
) -> list[DKIMKey]:
    """Create the domain's two keys if missing (never overwrite); return both."""
    rsa_path = key_path(keys_dir, domain, selector_rsa)
    if not rsa_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        _write_secret(
            rsa_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ),
        )
    ed_path = key_path(keys_dir, domain, selector_ed25519)
    if not ed_path.exists():
        seed = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        _write_secret(ed_path, base64.b64encode(seed) + b"\n")
    return [
        DKIMKey(domain, selector_rsa, "rsa", rsa_path),
        DKIMKey(domain, selector_ed25519, "ed25519", ed_path),
    ]


def public_record(key: DKIMKey) -> str:
    """The TXT record value to publish at `<selector>._domainkey.<domain>`."""
    data = key.private_key()
    if key.algorithm == "rsa":
        private = serialization.load_pem_private_key(data, password=None)
        assert isinstance(private, rsa.RSAPrivateKey)
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    seed = base64.b64decode(data.strip())
    public = (
        ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}"


def zone_lines(key: DKIMKey) -> str:
    """A zone-file line for the key (long values split in 255-character strings)."""
    value = public_record(key)
    chunks = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
    return f"{key.dns_name()}. IN TXT ( {chunks} )"
