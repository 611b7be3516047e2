"""The verified-token cache of :class:`baoxue.auth.tokens.TokenVerifier`.

A hit skips the signature check, so what must still hold: an expired token is refused even when it was
cached, a token is only ever a hit for exactly the same bytes (never for equal claims), the cache is
bounded, the token itself is not what is stored, and fetching the key set again forgets every entry.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from baoxue.auth.tokens import DEV_KEY_ID, TokenVerifier, ensure_dev_keypair, jwks_document, mint_token
from baoxue.errors import Unauthenticated
from baoxue.testing.plugin import AUDIENCE, ISSUER


def _verifier(key_file: Path, **kwargs: Any) -> TokenVerifier:
    return TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, algorithms=["ES256"], public_key_file=key_file, **kwargs
    )


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u-cache",
        "iat": now,
        "exp": now + 600,
        "roles": ["school"],
        "org": "37040600101001",
    }
    return claims | overrides


def _sign(key_file: Path, claims: dict[str, Any], kid: str = DEV_KEY_ID) -> str:
    return jwt.encode(claims, key_file.read_bytes(), algorithm="ES256", headers={"kid": kid})


async def test_a_cached_token_is_refused_once_it_expires(jwt_key_file: Path) -> None:
    verifier = _verifier(jwt_key_file, leeway_seconds=0)
    token = _sign(jwt_key_file, _claims(exp=int(time.time()) + 2))
    assert (await verifier.verify(token))["sub"] == "u-cache"
    assert verifier.cache is not None and len(verifier.cache) == 1
    assert (await verifier.verify(token))["sub"] == "u-cache"  # a hit, still valid

    await asyncio.sleep(max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()))
    await asyncio.sleep(1.05)
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(token)
    assert refused.value.code == "token_expired"


async def test_expiry_is_checked_on_a_hit_not_only_by_the_entry_lifetime(
    jwt_key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wall clock moves past ``exp`` while the entry's (monotonic) lifetime has not run out."""
    verifier = _verifier(jwt_key_file, leeway_seconds=30, cache_ttl_seconds=3600)
    exp = int(time.time()) + 600
    token = _sign(jwt_key_file, _claims(exp=exp))
    await verifier.verify(token)
    key = verifier.cache.key(token) if verifier.cache else b""
    assert verifier.cache is not None and verifier.cache.get(key) is not None

    monkeypatch.setattr(time, "time", lambda: exp + 29.0)  # inside the leeway: still accepted
    assert (await verifier.verify(token))["sub"] == "u-cache"
    monkeypatch.setattr(time, "time", lambda: exp + 30.0)
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(token)
    assert refused.value.code == "token_expired"
    monkeypatch.undo()
    assert verifier.cache.get(key) is None  # the expired entry is dropped


async def test_equal_claims_do_not_make_a_hit(jwt_key_file: Path) -> None:
    verifier = _verifier(jwt_key_file)
    claims = _claims()
    first, second = _sign(jwt_key_file, claims), _sign(jwt_key_file, claims)
    assert first != second  # ES256 signatures are randomised: the same claims, two tokens
    assert await verifier.verify(first) == claims
    assert verifier.cache is not None and len(verifier.cache) == 1
    assert await verifier.verify(second) == claims
    assert len(verifier.cache) == 2  # verified on its own, kept under its own key

    # The cached token's header and claims with a signature of another key: the same claims, refused.
    other_key = ensure_dev_keypair(jwt_key_file.parent / "another-key.pem")
    head, body, _ = first.split(".")
    forged = ".".join([head, body, _sign(other_key, claims).split(".")[2]])
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(forged)
    assert refused.value.code == "token_invalid"
    # A token differing from a cached one in one signature character is not a hit either.
    sig = first.split(".")[2]
    flipped = first[: -len(sig)] + ("A" if sig[0] != "A" else "B") + sig[1:]
    with pytest.raises(Unauthenticated):
        await verifier.verify(flipped)
    assert len(verifier.cache) == 2


async def test_the_cache_is_bounded_and_keeps_no_token(jwt_key_file: Path) -> None:
    verifier = _verifier(jwt_key_file, cache_size=3)
    tokens = [_sign(jwt_key_file, _claims(sub=f"u-{i}")) for i in range(5)]
    for token in tokens:
        await verifier.verify(token)
    cache = verifier.cache
    assert cache is not None and len(cache) == 3
    assert cache.get(cache.key(tokens[0])) is None and cache.get(cache.key(tokens[1])) is None
    assert all(cache.get(cache.key(t)) is not None for t in tokens[2:])
    stored = repr(cache._entries)  # what is kept in memory
    assert not any(t in stored or t.split(".")[2] in stored for t in tokens)
    assert (await verifier.verify(tokens[0]))["sub"] == "u-0"  # verified again, evicts the oldest
    assert len(cache) == 3


async def test_no_cache_when_turned_off(jwt_key_file: Path) -> None:
    verifier = _verifier(jwt_key_file, cache_size=0)
    token = mint_token(
        jwt_key_file, subject="u-1", roles=["school"], org="x", issuer=ISSUER, audience=AUDIENCE
    )
    assert (await verifier.verify(token))["sub"] == "u-1"
    assert verifier.cache is None


class _JwksServer:
    """A JWKS document served over HTTP on 127.0.0.1, replaceable (a key rotation at the provider)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.fetches = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rotating_keys(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    yield ensure_dev_keypair(tmp_path / "old.pem"), ensure_dev_keypair(tmp_path / "new.pem")


async def test_a_key_set_refresh_forgets_tokens_of_a_retired_key(rotating_keys: tuple[Path, Path]) -> None:
    old, new = rotating_keys
    new_doc = jwks_document(new)
    new_doc["keys"][0]["kid"] = "new-1"
    with _JwksServer(jwks_document(old)) as provider:
        verifier = TokenVerifier(
            issuer=ISSUER, audience=AUDIENCE, algorithms=["ES256"], jwks_url=provider.url
        )
        old_token = _sign(old, _claims())
        assert (await verifier.verify(old_token))["sub"] == "u-cache"
        assert (await verifier.verify(old_token))["sub"] == "u-cache"
        assert provider.fetches == 1 and verifier.cache is not None and len(verifier.cache) == 1

        provider.document = new_doc  # the provider rotates: the old key is withdrawn
        verifier._jwks_fetched -= 31  # the refetch interval (30 s) has passed
        assert (await verifier.verify(_sign(new, _claims(sub="u-new"), kid="new-1")))["sub"] == "u-new"
        assert provider.fetches == 2
        assert verifier.cache.get(verifier.cache.key(old_token)) is None
        with pytest.raises(Unauthenticated) as refused:  # no longer a hit: checked, and its key is gone
            await verifier.verify(old_token)
        assert refused.value.code == "token_invalid"
