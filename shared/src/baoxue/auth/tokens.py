"""JWT bearer tokens: verification (JWKS in production, a local key in development) and dev minting."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from baoxue.errors import Unauthenticated

# Symmetric and unsigned algorithms are never accepted: HS256 with a public key as the secret is the
# classic key-confusion attack, and "none" is no signature at all.
FORBIDDEN_ALGORITHMS = {"none", "HS256", "HS384", "HS512"}
DEV_KEY_ID = "baoxue-dev-1"


def ensure_dev_keypair(path: Path) -> Path:
    """Create the development signing key (EC P-256, PEM) at ``path`` if it is missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.write_bytes(pem)
        path.chmod(0o600)
    return path


def public_pem(private_key_path: Path) -> bytes:
    """The public half of a PEM key file (a public PEM file is returned as is)."""
    data = private_key_path.read_bytes()
    if b"PUBLIC KEY" in data:
        return data
    key = serialization.load_pem_private_key(data, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def mint_token(
    private_key_path: Path,
    *,
    subject: str,
    roles: list[str],
    org: str,
    issuer: str,
    audience: str,
    ttl: dt.timedelta = dt.timedelta(hours=8),
    name: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A development token signed with the local key (the demo identity provider)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "nbf": now - 5,
        "exp": now + int(ttl.total_seconds()),
        "jti": str(uuid.uuid4()),
        "roles": roles,
        "org": org,
    }
    if name:
        claims["name"] = name
    claims.update(extra or {})
    key = private_key_path.read_bytes()
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": DEV_KEY_ID})


class TokenVerifier:
    """Verifies bearer tokens: signature (allow-listed algorithms), issuer, audience, expiry, not-before.

    With ``jwks_url`` keys come from the identity provider (cached, refreshed on an unknown ``kid``);
    otherwise from a local PEM file (development and tests).
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithms: list[str],
        jwks_url: str | None = None,
        public_key_file: Path | None = None,
        leeway_seconds: int = 30,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.algorithms = [a for a in algorithms if a not in FORBIDDEN_ALGORITHMS]
        self.jwks_url = jwks_url
        self.leeway = leeway_seconds
        self._jwks: dict[str, Any] = {}
        self._jwks_fetched = 0.0
        self._local_key: bytes | None = None
        if jwks_url is None:
            if public_key_file is None or not public_key_file.exists():
                raise RuntimeError("no JWKS URL and no local public key file for token verification")
            self._local_key = public_pem(public_key_file)

    async def _key_for(self, kid: str | None) -> Any:
        if self._local_key is not None:
            return self._local_key
        if kid not in self._jwks and time.monotonic() - self._jwks_fetched > 30:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(self.jwks_url)  # type: ignore[arg-type]
                response.raise_for_status()
            jwk_set = jwt.PyJWKSet.from_dict(response.json())
            self._jwks = {k.key_id: k.key for k in jwk_set.keys if k.key_id}
            self._jwks_fetched = time.monotonic()
        if kid not in self._jwks:
            raise Unauthenticated("The token was signed with an unknown key.", code="token_invalid")
        return self._jwks[kid]

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or :class:`Unauthenticated` with a specific code."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("The bearer token is malformed.", code="token_malformed") from None
        if header.get("alg") not in self.algorithms:
            raise Unauthenticated("The token's signing algorithm is not accepted.", code="token_invalid")
        key = await self._key_for(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The token has expired.", code="token_expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("The token is not valid yet.", code="token_not_yet_valid") from None
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
            raise Unauthenticated(
                "The token was issued for another system.", code="token_wrong_audience"
            ) from None
        except jwt.PyJWTError:
            raise Unauthenticated("The token is not valid.", code="token_invalid") from None
        return claims


def jwks_document(private_key_path: Path) -> dict[str, Any]:
    """The development key as a JWKS document (for gateways that want one)."""
    pub = serialization.load_pem_public_key(public_pem(private_key_path))
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(pub))  # type: ignore[arg-type]
    jwk.update({"kid": DEV_KEY_ID, "alg": "ES256", "use": "sig"})
    return {"keys": [jwk]}
