"""OAuth 2 bearer tokens for SASL XOAUTH2 / OAUTHBEARER, as Pro Santé Connect issues them.

A token is a JWT signed by the configured issuer (its keys from a JWKS file or
URL); mss checks the signature, `iss`, `exp`/`nbf`/`iat` (with a small leeway),
`aud` when configured, and reads two claims: the mail address (`email` by
default) and the professional's national id (`preferred_username` by default,
which Pro Santé Connect fills with `8` + RPPS). Only asymmetric algorithms are
accepted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWKClient, PyJWKSet

from mss.errors import MssError

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]


class TokenError(MssError):
    """The token is not acceptable; the message says why (never the token)."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str | None
    address: str | None
    national_id: str | None
    claims: dict[str, Any] = field(repr=False)


class BearerValidator:
    """Validate bearer tokens of one issuer. `validate` may fetch keys: run it in a thread
    (or try `validate_at_hand` first, which never does)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | None = None,
        jwks_file: Path | None = None,
        jwks_url: str | None = None,
        address_claim: str = "email",
        national_id_claim: str = "preferred_username",
        leeway: int = 30,
    ) -> None:
        if not issuer:
            raise ValueError("an issuer is required")
        if (jwks_file is None) == (jwks_url is None):
            raise ValueError("give exactly one of jwks_file and jwks_url")
        self.issuer = issuer
        self.audience = audience or None
        self.address_claim = address_claim
        self.national_id_claim = national_id_claim
        self.leeway = leeway
        self._file_keys: PyJWKSet | None = None
        self._client: PyJWKClient | None = None
        if jwks_file is not None:
            self._file_keys = PyJWKSet.from_json(jwks_file.read_text())
        else:
            assert jwks_url is not None
            # The key set is cached an hour, then fetched again. No per-key cache
            # (`cache_keys`): PyJWT's never expires, so the set would never be refreshed
            # and a key the issuer withdrew would stay accepted.
            self._client = PyJWKClient(jwks_url, cache_keys=False, lifespan=3600)

    def _kid(self, token: str) -> Any:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError(f"malformed token: {exc}") from None
        if header.get("alg") not in ALGORITHMS:
            raise TokenError(f"algorithm {header.get('alg')!r} is not accepted")
        return header.get("kid")

    def _key_at_hand(self, token: str) -> Any:
        """The token's key if no fetch is needed: from the key file, or from a fetched
        key set still fresh that holds it, as PyJWKClient would pick it (None: ask
        `_key`, which may fetch)."""
        if self._client is None:
            return self._key(token)
        kid = self._kid(token)
        cache = self._client.jwk_set_cache
        keys = cache.get() if cache is not None and kid else None
        # none, stale, or the raw JSON that older PyJWT releases kept
        if not isinstance(keys, PyJWKSet):
            return None
        for key in keys.keys:
            if key.key_id == kid and key.public_key_use in ("sig", None):
                return key.key
        return None

    def _key(self, token: str) -> Any:
        kid = self._kid(token)
        if self._client is not None:
            try:
                return self._client.get_signing_key_from_jwt(token).key
            except jwt.PyJWTError as exc:
                raise TokenError(f"no signing key: {exc}") from None
        assert self._file_keys is not None
        keys = list(self._file_keys)
        for key in keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise TokenError(f"no key {kid!r} in the issuer's key set")

    def validate(self, token: str) -> TokenClaims:
        """Check the token; may fetch the issuer's keys: run it in a thread."""
        return self._claims(token, self._key(token))

    def validate_at_hand(self, token: str) -> TokenClaims | None:
        """`validate` without any I/O (fit for the event loop) when the keys at hand
        suffice: a key file, or a fetched key set still fresh that holds the token's
        key. None: `validate` is needed, in a thread."""
        key = self._key_at_hand(token)
        return None if key is None else self._claims(token, key)

    def _claims(self, token: str, key: Any) -> TokenClaims:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp", "iss"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from None
        except (TypeError, ValueError) as exc:  # a key of another type than the algorithm's
            raise TokenError(f"the token's key does not fit its algorithm ({exc})") from None
        address = claims.get(self.address_claim)
        national_id = claims.get(self.national_id_claim)
        return TokenClaims(
            subject=claims.get("sub"),
            address=address.lower() if isinstance(address, str) else None,
            national_id=str(national_id) if national_id is not None else None,
            claims=claims,
        )


def jwks_of(public_keys: dict[str, Any]) -> str:
    """A JWKS document for `{kid: public key}` (tests and tools run their own issuer)."""
    keys = []
    for kid, key in public_keys.items():
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
        jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
        keys.append(jwk)
    return json.dumps({"keys": keys})
