"""DKIM (RFC 6376, RFC 8463): keys, signing, verification, Authentication-Results.

Keys: one RSA-2048 and one Ed25519 key per domain.

`mss init` creates them under `<data-dir>/dkim/<domain>/<selector>.key` and
prints the DNS TXT records to publish. Formats follow dkimpy: RSA keys as
PKCS#1 PEM, Ed25519 private keys as the base64 of the 32-byte seed (RFC 8463
§4). Mail leaving mss is signed with both keys of its sender's domain; mail
arriving on the MX is verified and the outcome recorded in an
Authentication-Results header (RFC 8601).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterable
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


# --- signing and verifying -------------------------------------------------------------

# Header fields signed (RFC 6376 §5.4.1), including the MSSanté X-MSS-* fields
# (ANS Référentiel #2) so that they cannot be altered in transit.
SIGNED_HEADERS = [
    b"from", b"sender", b"reply-to", b"subject", b"date", b"message-id", b"to", b"cc",
    b"in-reply-to", b"references", b"mime-version", b"content-type",
    b"content-transfer-encoding", b"disposition-notification-to",
    b"x-mss-codecda", b"x-mss-ins", b"x-mss-nil", b"x-mss-mes",
]  # fmt: skip

TxtLookup = Callable[..., bytes | None]


class DKIMSigner:
    """Signs outgoing mail with every key of the sender's domain (RSA and Ed25519)."""

    def __init__(self, keys: Iterable[DKIMKey]) -> None:
        self._keys: dict[str, list[tuple[DKIMKey, bytes]]] = {}
        for key in keys:
            secret = key.private_key().strip() if key.algorithm == "ed25519" else key.private_key()
            self._keys.setdefault(key.domain, []).append((key, secret))

    def domains(self) -> list[str]:
        return sorted(self._keys)

    def sign(self, message: bytes, domain: str) -> bytes:
        """The DKIM-Signature header fields to prepend, one per key of `domain`."""
        import dkim

        headers = b""
        for key, secret in self._keys.get(domain, []):
            algorithm = b"rsa-sha256" if key.algorithm == "rsa" else b"ed25519-sha256"
            present = {name.lower() for name, _ in _header_names(message)}
            include = [h for h in SIGNED_HEADERS if h in present]
            headers += dkim.DKIM(message).sign(
                key.selector.encode(),
                domain.encode(),
                secret,
                signature_algorithm=algorithm,
                include_headers=include,
                canonicalize=(b"relaxed", b"relaxed"),
            )
        return headers


def _header_names(message: bytes) -> list[tuple[bytes, None]]:
    end = message.find(b"\r\n\r\n")
    block = message[: end if end >= 0 else len(message)]
    names = []
    for line in block.split(b"\r\n"):
        if line[:1] not in (b" ", b"\t") and b":" in line:
            names.append((line.split(b":", 1)[0].strip(), None))
    return names


@dataclass(frozen=True, slots=True)
class DKIMResult:
    """One signature's outcome (RFC 8601 §2.7.1 result values)."""

    result: str  # pass, fail, neutral, temperror, permerror, none
    domain: str | None = None
    selector: str | None = None
    algorithm: str | None = None
    reason: str | None = None


def verify_all(message: bytes, lookup: TxtLookup) -> list[DKIMResult]:
    """Verify every DKIM-Signature of `message`; `[none]` when it has none."""
    import dkim

    from mss.security import dkim_fast, dkim_rsa

    dkim_rsa.install()  # the RSA step by OpenSSL (idempotent)
    dkim_fast.install()  # the header parse, the key record's, canonicalisation (idempotent)
    checker = dkim.DKIM(message)  # parses the message once for every signature
    count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
    if count == 0:
        return [DKIMResult("none")]
    results = []
    for index in range(count):
        checker.signature_fields = {}
        try:
            ok = checker.verify(idx=index, dnsfunc=lookup)
            result, reason = ("pass", None) if ok else ("fail", "signature did not verify")
        except dkim.KeyFormatError as exc:
            result, reason = "permerror", f"key: {exc}"
        except dkim.ValidationError as exc:
            # A body hash that does not match is a verification failure (RFC 6376
            # §6.1.3); anything else (syntax, unusable tags) cannot be processed.
            text_ = str(exc)
            result = "fail" if "body hash mismatch" in text_ else "permerror"
            reason = text_
        except dkim.MessageFormatError as exc:
            result, reason = "permerror", str(exc)
        except dkim.DKIMException as exc:
            text_ = str(exc)
            result = "temperror" if "dns" in text_.lower() else "permerror"
            reason = text_
        fields = checker.signature_fields or {}
        algorithm = fields.get(b"a")
        results.append(
            DKIMResult(
                result,
                domain=_decode(fields.get(b"d")),
                selector=_decode(fields.get(b"s")),
                algorithm=_decode(algorithm),
                reason=reason,
            )
        )
    return results


def _decode(value: bytes | None) -> str | None:
    return value.decode("ascii", "replace") if value is not None else None


def authentication_results(authserv_id: str, results: list[DKIMResult]) -> str:
    """An Authentication-Results header field (RFC 8601), without the line break."""
    parts = []
    for r in results:
        item = f"dkim={r.result}"
        if r.reason and r.result != "pass":
            item += f" reason={_quote(r.reason)}"
        if r.domain:
            item += f" header.d={r.domain}"
        if r.selector:
            item += f" header.s={r.selector}"
        if r.algorithm:
            item += f" header.a={r.algorithm}"
        parts.append(item)
    return f"Authentication-Results: {authserv_id};\r\n\t" + ";\r\n\t".join(parts)


def _quote(text_: str) -> str:
    cleaned = "".join(c for c in text_ if 32 <= ord(c) < 127 and c not in '"\\')[:120]
    return f'"{cleaned}"'


class StaticTXT:
    """DKIM public keys known without DNS: a file of `name value` lines (peers' records).

    Falls back to `fallback` (a DNS lookup) for names the file does not hold.
    """

    def __init__(self, records: dict[str, str], fallback: TxtLookup | None = None) -> None:
        self._records = {k.lower().rstrip("."): v for k, v in records.items()}
        self._fallback = fallback

    @classmethod
    def from_file(cls, path: Path, fallback: TxtLookup | None = None) -> StaticTXT:
        records: dict[str, str] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    name, _, value = line.partition(" ")
                    records[name] = value.strip().strip('"')
        return cls(records, fallback)

    def __call__(self, name: bytes, timeout: int = 5) -> bytes | None:
        value = self._records.get(name.decode("ascii", "replace").lower().rstrip("."))
        if value is not None:
            return value.encode()
        if self._fallback is not None:
            return self._fallback(name, timeout=timeout)
        return None


def dns_txt(name: bytes, timeout: int = 5) -> bytes | None:
    """A TXT lookup through the system resolver (dnspython)."""
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.resolve(name.decode("ascii"), "TXT", lifetime=timeout)
    except (dns.exception.DNSException, UnicodeDecodeError):
        return None
    for record in answer:
        return b"".join(record.strings)
    return None
