"""DKIM keys from `mss init` sign and verify with dkimpy, RSA and Ed25519 (RFC 8463)."""

from __future__ import annotations

from pathlib import Path

import dkim
import pytest

from mss.security.dkim import ensure_keys, public_record, zone_lines

MESSAGE = (
    b"From: jean.dupont@pro.mssante.test\r\nTo: marie@hopital.mssante.test\r\n"
    b"Subject: avis\r\nMessage-ID: <x@pro.mssante.test>\r\n\r\nBonjour\r\n"
)


@pytest.mark.parametrize(
    ("selector", "algorithm"), [("mss-rsa", b"rsa-sha256"), ("mss-ed", b"ed25519-sha256")]
)
def test_init_keys_sign_and_verify(instance: Path, selector: str, algorithm: bytes) -> None:
    keys = {
        k.selector: k
        for k in ensure_keys(instance / "dkim", "pro.mssante.test", "mss-rsa", "mss-ed")
    }
    key = keys[selector]
    signature = dkim.sign(
        MESSAGE,
        selector.encode(),
        b"pro.mssante.test",
        key.private_key(),
        include_headers=[b"from", b"to", b"subject", b"message-id"],
        signature_algorithm=algorithm,
    )
    record = public_record(key).encode()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{selector}._domainkey.pro.mssante.test.".encode()
        return record

    assert dkim.verify(signature + MESSAGE, dnsfunc=dns)
    assert not dkim.verify(signature + MESSAGE.replace(b"Bonjour", b"Bonsoir"), dnsfunc=dns)


def test_keys_are_never_overwritten_and_private(tmp_path: Path) -> None:
    first = ensure_keys(tmp_path, "pro.mssante.test", "mss-rsa", "mss-ed")
    contents = [k.private_key() for k in first]
    second = ensure_keys(tmp_path, "pro.mssante.test", "mss-rsa", "mss-ed")
    assert [k.private_key() for k in second] == contents
    assert all(k.path.stat().st_mode & 0o077 == 0 for k in second)


def test_zone_lines_split_long_records(tmp_path: Path) -> None:
    rsa_key = ensure_keys(tmp_path, "pro.mssante.test", "mss-rsa", "mss-ed")[0]
    line = zone_lines(rsa_key)
    assert line.startswith("mss-rsa._domainkey.pro.mssante.test. IN TXT (")
    assert all(len(chunk) <= 257 for chunk in line.split(" ") if chunk.startswith('"'))
