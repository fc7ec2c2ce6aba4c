"""The DKIM RSA step by OpenSSL answers exactly as dkimpy's pure Python does."""

from __future__ import annotations

import base64
import hashlib

import dkim
import dkim.crypto
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from mss.security import dkim_rsa
from mss.security.dkim import verify_all

ORIGINAL = dkim.crypto.RSASSA_PKCS1_v1_5_verify


def _key(bits: int = 2048) -> tuple[rsa.RSAPrivateKey, dict[str, int]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    numbers = private.public_key().public_numbers()
    return private, {"modulus": numbers.n, "publicExponent": numbers.e}


KEY, PUBLIC = _key()
OTHER, _ = _key()


def _signed(private: rsa.RSAPrivateKey, data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    return private.sign(data, padding.PKCS1v15(), algorithm)


def _both(name: str, data: bytes, signature: bytes, public: dict[str, int]) -> tuple[bool, bool]:
    return (
        ORIGINAL(hashlib.new(name, data), signature, public),
        dkim_rsa.verify(hashlib.new(name, data), signature, public),
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [("valid", True), ("tampered", False), ("other key", False), ("other data", False),
     ("empty", False), ("too long", False), ("all ones", False)],
)  # fmt: skip
def test_the_openssl_rsa_step_answers_as_dkimpy(case: str, expected: bool) -> None:
    good = _signed(KEY, b"en-tetes canonicalises", hashes.SHA256())
    signature, data = {
        "valid": (good, b"en-tetes canonicalises"),
        "tampered": (good[:-1] + bytes([good[-1] ^ 1]), b"en-tetes canonicalises"),
        "other key": (_signed(OTHER, b"en-tetes canonicalises", hashes.SHA256()),
                      b"en-tetes canonicalises"),
        "other data": (good, b"autre chose"),
        "empty": (b"", b"en-tetes canonicalises"),
        "too long": (b"\x01" + good, b"en-tetes canonicalises"),
        "all ones": (b"\xff" * len(good), b"en-tetes canonicalises"),
    }[case]  # fmt: skip
    assert _both("sha256", data, signature, PUBLIC) == (expected, expected)


def test_a_1024_bit_key_verifies_as_with_dkimpy() -> None:
    private, public = _key(1024)  # dkimpy's key policy (minimum size) is judged after
    signature = _signed(private, b"x", hashes.SHA256())
    assert _both("sha256", b"x", signature, public) == (True, True)


def test_a_key_too_small_for_the_digest_is_refused_as_by_dkimpy() -> None:
    tiny = {"modulus": (1 << 400) + 1, "publicExponent": 65537}
    for verify in (ORIGINAL, dkim_rsa.verify):
        with pytest.raises(dkim.crypto.DigestTooLargeError):
            verify(hashlib.sha256(b"x"), b"\x01" * 51, tiny)


def test_rsa_sha1_stays_with_dkimpy() -> None:
    signature = _signed(KEY, b"x", hashes.SHA1())  # what a peer may still send
    assert _both("sha1", b"x", signature, PUBLIC) == (True, True)


def test_numbers_openssl_refuses_verify_nothing() -> None:
    even = {"modulus": PUBLIC["modulus"] + 1, "publicExponent": 65537}
    good = _signed(KEY, b"x", hashes.SHA256())
    assert _both("sha256", b"x", good, even) == (False, False)


@settings(max_examples=200, deadline=None)
@given(signature=st.binary(min_size=0, max_size=300), data=st.binary(max_size=64))
def test_any_signature_bytes_get_the_same_answer(signature: bytes, data: bytes) -> None:
    first, second = _both("sha256", data, signature, PUBLIC)
    assert first == second


def test_a_signed_message_still_verifies_and_a_changed_one_fails() -> None:
    pem = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    der = KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    raw = (b"From: a@peer.test\r\nTo: b@mss.test\r\nSubject: Compte rendu\r\n"
           b"Message-ID: <1@peer.test>\r\n\r\nBonjour,\r\nvoici le compte rendu.\r\n")  # fmt: skip
    signed = dkim.sign(raw, b"s1", b"peer.test", pem, include_headers=[b"from", b"subject"]) + raw

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        return record

    [ok] = verify_all(signed, lookup)
    assert (ok.result, ok.domain) == ("pass", "peer.test")
    [bad] = verify_all(signed.replace(b"Compte rendu", b"Compte rendu modifie"), lookup)
    assert bad.result == "fail"
    assert dkim.RSASSA_PKCS1_v1_5_verify is dkim_rsa.verify  # the OpenSSL step was used
