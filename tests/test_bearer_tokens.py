"""Bearer tokens checked on the event loop when no key has to be fetched
(`BearerValidator.validate_at_hand`), and in a thread otherwise: the answer is the same,
and nothing is fetched on the loop. The issuer's key set is served over HTTP on
loopback, each request counted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec as ec_key
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.api_jwk import PyJWTSetWithTimestamp

from mss.security.tokens import BearerValidator, TokenError, jwks_of

ISSUER = "https://auth.esante.test"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(kid: str = "k1", key: rsa.RSAPrivateKey = KEY, **claims: object) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "iat": now, "exp": now + 600, "preferred_username": "810001122334"}
    return jwt.encode({**body, **claims}, key, "RS256", headers={"kid": kid})


class _Issuer(BaseHTTPRequestHandler):
    fetched = 0

    def do_GET(self) -> None:
        type(self).fetched += 1
        body = jwks_of({"k1": KEY.public_key()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def issuer() -> Iterator[str]:
    _Issuer.fetched = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Issuer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def test_a_key_file_is_at_hand(tmp_path: Path) -> None:
    keys = tmp_path / "jwks.json"
    keys.write_text(jwks_of({"k1": KEY.public_key()}))
    validator = BearerValidator(issuer=ISSUER, jwks_file=keys)
    good = token()
    at_hand = validator.validate_at_hand(good)
    assert at_hand is not None and at_hand == validator.validate(good)
    assert at_hand.national_id == "810001122334"
    with pytest.raises(TokenError):  # a bad signature is refused there and then
        validator.validate_at_hand(token(key=OTHER))
    with pytest.raises(TokenError):
        validator.validate_at_hand(token(kid="k9"))
    with pytest.raises(TokenError):
        validator.validate_at_hand("not.a.token")


def test_a_key_set_is_at_hand_only_once_fetched_and_fresh(issuer: str) -> None:
    validator = BearerValidator(issuer=ISSUER, jwks_url=issuer)
    good = token()
    assert validator.validate_at_hand(good) is None  # not fetched yet: a thread's work
    assert _Issuer.fetched == 0
    claims = validator.validate(good)
    assert _Issuer.fetched == 1
    assert validator.validate_at_hand(good) == claims
    assert validator.validate_at_hand(token(kid="k9")) is None  # unknown key: may be new
    with pytest.raises(TokenError):
        validator.validate_at_hand(token(key=OTHER))  # known key, wrong signature
    assert _Issuer.fetched == 1  # nothing fetched by any of them
    cache = validator._client.jwk_set_cache  # type: ignore[union-attr]
    assert cache is not None
    cache.lifespan = 0  # an hour later: the set is stale
    assert validator.validate_at_hand(good) is None  # to be fetched again, in a thread
    assert _Issuer.fetched == 1
    assert validator.validate(good) == claims
    assert _Issuer.fetched == 2  # fetched again: no per-key cache that never expires
    cache.lifespan = 3600
    assert validator.validate_at_hand(good) == claims  # fresh again: on the loop again
    assert _Issuer.fetched == 2


def test_a_key_set_kept_as_raw_json_is_not_at_hand(issuer: str) -> None:
    """Older PyJWT releases cached the fetched JSON unparsed: the thread takes over."""
    validator = BearerValidator(issuer=ISSUER, jwks_url=issuer)
    good = token()
    validator.validate(good)
    cache = validator._client.jwk_set_cache  # type: ignore[union-attr]
    assert cache is not None
    cache.jwk_set_with_timestamp = PyJWTSetWithTimestamp(
        json.loads(jwks_of({"k1": KEY.public_key()}))
    )
    assert validator.validate_at_hand(good) is None


def test_a_key_of_another_type_than_the_algorithm_is_a_token_error(tmp_path: Path) -> None:
    ec = ec_key.generate_private_key(ec_key.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec.public_key()))
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig"}]}))
    validator = BearerValidator(issuer=ISSUER, jwks_file=keys)
    forged = token()  # RS256, naming the EC key's kid
    for check in (validator.validate_at_hand, validator.validate):
        with pytest.raises(TokenError):
            check(forged)
