"""XOAUTH2 and OAUTHBEARER with bearer tokens from an issuer the test runs itself."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mss.security.tokens import jwks_of

from .harness import Running, message, running

ISSUER = "https://auth.esante.gouv.test/auth/realms/esante-wallet"
JEAN = "jean.dupont@pro.mssante.test"
RPPS_ID = "899700367909"
MARIE = "marie.martin@pro.mssante.test"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(key: rsa.RSAPrivateKey = KEY, **claims: object) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "iat": now, "exp": now + 300, "sub": "f:1234", **claims}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "psc-1"})


@pytest.fixture
async def oauth_mss(instance: Path) -> AsyncIterator[Running]:
    (instance / "jwks.json").write_text(jwks_of({"psc-1": KEY.public_key()}))
    overrides = {"oauth": {"issuer": ISSUER, "jwks_file": "jwks.json"}}
    async with running(instance, overrides=overrides) as mss:
        await mss.add_pro(JEAN, password=None, national_id=RPPS_ID)
        await mss.add_pro(MARIE, password=None)
        yield mss


def xoauth2(user: str, bearer: str) -> bytes:
    return base64.b64encode(f"user={user}\x01auth=Bearer {bearer}\x01\x01".encode())


def oauthbearer(user: str, bearer: str) -> bytes:
    return base64.b64encode(f"n,a={user},\x01auth=Bearer {bearer}\x01\x01".encode())


async def _auth(mss: Running, mechanism: bytes, initial: bytes) -> tuple[int, str]:
    client = mss.smtp()
    await client.connect()
    try:
        await client.starttls()
        ehlo = await client.ehlo()
        assert "XOAUTH2" in ehlo.message and "OAUTHBEARER" in ehlo.message
        code, text = await client.execute_command(b"AUTH", mechanism, initial)
        if code == 334:  # the error challenge of RFC 7628 §3.2.2: answer empty
            code, text = await client.execute_command(b"")
        if code == 235:
            await client.sendmail(JEAN, [MARIE], message(JEAN, MARIE, "Par jeton"))
        return code, text
    finally:
        client.close()


async def test_xoauth2_with_the_address_claim(oauth_mss: Running) -> None:
    code, _ = await _auth(oauth_mss, b"XOAUTH2", xoauth2(JEAN, token(email=JEAN)))
    assert code == 235
    assert b"Par jeton" in (await oauth_mss.inbox(MARIE))[0]


async def test_oauthbearer_with_the_national_id_claim(oauth_mss: Running) -> None:
    code, _ = await _auth(
        oauth_mss, b"OAUTHBEARER", oauthbearer(JEAN, token(preferred_username=RPPS_ID))
    )
    assert code == 235


@pytest.mark.parametrize(
    "bearer",
    [
        token(email=JEAN, exp=int(time.time()) - 600),  # expired
        token(OTHER_KEY, email=JEAN),  # signed by someone else
        token(email=MARIE),  # names another professional
        token(email=JEAN, iss="https://evil.test"),  # another issuer
        "not-a-jwt",
    ],
    ids=["expired", "foreign-key", "other-person", "other-issuer", "garbage"],
)
async def test_bad_tokens_are_refused(oauth_mss: Running, bearer: str) -> None:
    code, _ = await _auth(oauth_mss, b"XOAUTH2", xoauth2(JEAN, bearer))
    assert code == 535


async def test_bearer_mechanisms_are_not_offered_without_an_issuer(mss: Running) -> None:
    client = mss.smtp()
    await client.connect()
    try:
        await client.starttls()
        ehlo = await client.ehlo()
        code, _ = await client.execute_command(
            b"AUTH", b"XOAUTH2", xoauth2(JEAN, token(email=JEAN))
        )
    finally:
        client.close()
    assert "XOAUTH2" not in ehlo.message
    assert code == 504
