"""JWT bearer tokens: verification (JWKS in production, a local key in development) and dev minting."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from collections import OrderedDict
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


class VerifiedTokenCache:
    """Claims of tokens already verified, so a client's next request skips the signature check.

    Keyed by SHA-256 of the raw token (the token itself is never kept), bounded (least recently used
    entries are dropped), and an entry lives until the token's own expiry or ``ttl_seconds`` after it
    was verified, whichever comes first. Expiry is checked again on every hit, so a cached token is
    refused from the moment it expires, exactly as an uncached one.
    """

    def __init__(self, *, max_entries: int = 10_000, ttl_seconds: float = 60.0) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        # digest -> (monotonic deadline of the entry, the token's exp, claims)
        self._entries: OrderedDict[bytes, tuple[float, float, dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, key: bytes) -> tuple[float, dict[str, Any]] | None:
        """(exp, claims) of a verified token still within its cache life, else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        deadline, exp, claims = entry
        if time.monotonic() >= deadline:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return exp, claims

    def put(self, key: bytes, exp: float, claims: dict[str, Any], *, leeway: float) -> None:
        remaining = exp + leeway - time.time()
        if remaining <= 0:
            return
        deadline = time.monotonic() + min(self.ttl_seconds, remaining)
        self._entries[key] = (deadline, exp, claims)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def discard(self, key: bytes) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


class TokenVerifier:
    """Verifies bearer tokens: signature (allow-listed algorithms), issuer, audience, expiry, not-before.

    With ``jwks_url`` keys come from the identity provider (cached, refreshed on an unknown ``kid``);
    otherwise from a local PEM file (development and tests). Verified claims are kept in a
    :class:`VerifiedTokenCache` (``cache_size=0`` turns it off); fetching the key set again empties it,
    so a key removed at the identity provider stops being trusted with the refresh.
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
        cache_size: int = 10_000,
        cache_ttl_seconds: float = 60.0,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.algorithms = [a for a in algorithms if a not in FORBIDDEN_ALGORITHMS]
        self.jwks_url = jwks_url
        self.leeway = leeway_seconds
        self._jwks: dict[str, Any] = {}
        self._jwks_fetched = 0.0
        self._local_key: bytes | None = None
        self._cache_generation = 0
        self.cache = (
            VerifiedTokenCache(max_entries=cache_size, ttl_seconds=cache_ttl_seconds)
            if cache_size > 0
            else None
        )
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
            self.clear_cache()
        if kid not in self._jwks:
            raise Unauthenticated("The token was signed with an unknown key.", code="token_invalid")
        return self._jwks[kid]

    def clear_cache(self) -> None:
        """Forget every verified token (on a key rotation: the next request of each is verified again)."""
        self._cache_generation += 1
        if self.cache is not None:
            self.cache.clear()

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or :class:`Unauthenticated` with a specific code."""
        if self.cache is None:
            return await self._verify(token)
        key = self.cache.key(token)
        hit = self.cache.get(key)
        if hit is not None:
            cached_exp, cached = hit
            if time.time() >= cached_exp + self.leeway:  # PyJWT's rule (exp <= now - leeway), on every hit
                self.cache.discard(key)
                raise Unauthenticated("The token has expired.", code="token_expired")
            return dict(cached)
        generation = self._cache_generation
        claims = await self._verify(token)
        exp = claims.get("exp")
        # Not kept when the keys were fetched again meanwhile: it may have been checked with a retired key.
        if (
            generation == self._cache_generation
            and isinstance(exp, int | float)
            and not isinstance(exp, bool)
        ):
            self.cache.put(key, float(exp), dict(claims), leeway=self.leeway)
        return claims

    async def _verify(self, token: str) -> dict[str, Any]:
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
