"""Every service's skeleton: health, readiness, the caller's profile, tokens, jurisdiction, problem details."""

from __future__ import annotations

import datetime as dt
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import insert

from baoxue.auth.tokens import public_pem
from baoxue.db import utcnow
from baoxue.testing.plugin import AUDIENCE, ISSUER, eventually

SERVICES = ["registry", "enrollment", "casework", "notify"]
BUREAU = "370406D01"
SCHOOL_A = "37040600101001"  # 山城街道中心小学
SCHOOL_B = "37040610101001"  # 店子镇中心小学


@pytest.mark.parametrize("name", SERVICES)
async def test_health_ready_me_and_code_lists(start_service, tokens, name):
    svc = await start_service(name)
    assert (await svc.client.get("/health")).json()["status"] == "ok"

    async def ready() -> bool:
        return (await svc.client.get("/ready")).status_code == 200

    await eventually(ready, timeout=15)
    me = await svc.client.get("/v1/me", headers=tokens.headers("school", SCHOOL_A))
    assert me.status_code == 200
    body = me.json()
    assert body["jurisdiction"] == SCHOOL_A
    assert body["org"]["name_zh"] == "山亭区山城街道中心小学"
    assert body["roles"][0]["label_zh"] == "学校"
    bureau = (await svc.client.get("/v1/me", headers=tokens.headers("bureau", BUREAU))).json()
    assert bureau["jurisdiction"] == "370406"
    lists = await svc.client.get("/v1/code-lists")
    assert lists.status_code == 200
    assert (await svc.client.get("/openapi.json")).status_code == 200


def _sign(claims: dict, key, alg: str, kid: str = "baoxue-dev-1") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _claims(**over) -> dict:
    now = int(utcnow().timestamp())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u1",
        "iat": now,
        "exp": now + 600,
        "roles": ["bureau"],
        "org": BUREAU,
    }
    base.update(over)
    return base


async def test_bad_tokens_get_401_with_problem_details(start_service, jwt_key_file):
    svc = await start_service("registry")
    own_key = serialization.load_pem_private_key(jwt_key_file.read_bytes(), password=None)
    other_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(utcnow().timestamp())
    cases = {
        "missing": None,
        "malformed": "not-a-jwt",
        "expired": _sign(_claims(exp=now - 3600, iat=now - 7200), own_key, "ES256"),
        "not_yet_valid": _sign(_claims(nbf=now + 3600), own_key, "ES256"),
        "wrong_issuer": _sign(_claims(iss="https://evil.example"), own_key, "ES256"),
        "wrong_audience": _sign(_claims(aud="another-system"), own_key, "ES256"),
        "wrong_key": _sign(_claims(), other_key, "ES256"),
        "rsa_unknown_key": _sign(_claims(), rsa_key, "RS256"),
        # HS/RS confusion: the public key used as an HMAC secret.
        "hs_confusion": _hs_with_public_key(jwt_key_file),
        "alg_none": jwt.encode(_claims(), None, algorithm="none"),
    }
    for case, token in cases.items():
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        r = await svc.client.get("/v1/me", headers=headers)
        assert r.status_code == 401, case
        assert r.headers["content-type"].startswith("application/problem+json"), case
        assert r.json()["status"] == 401 and r.json()["trace_id"], case
    ok = await svc.client.get(
        "/v1/me", headers={"Authorization": f"Bearer {_sign(_claims(), own_key, 'ES256')}"}
    )
    assert ok.status_code == 200


def _hs_with_public_key(key_file) -> str:
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "baoxue-dev-1"}).encode())
    payload = b64(json.dumps(_claims()).encode())
    signature = hmac.new(public_pem(key_file), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


async def test_unknown_organisation_or_role_is_refused(start_service, tokens):
    svc = await start_service("registry")
    r = await svc.client.get("/v1/me", headers=tokens.headers("school", "99999999999999"))
    assert r.status_code == 403 and r.json()["code"] == "unknown_organisation"
    r = await svc.client.get("/v1/me", headers=tokens.headers("emperor", SCHOOL_A))
    assert r.status_code == 403


async def test_object_outside_the_callers_jurisdiction_is_404(start_service, tokens):
    svc = await start_service("enrollment")
    jobs = svc.spec.tables.jobs
    async with svc.ctx.db.transaction() as s:
        await s.execute(
            insert(jobs).values(
                id="job-a",
                kind="probe",
                status="succeeded",
                progress=1.0,
                counts="{}",
                created_by="someone-else",
                org=SCHOOL_A,
                created_at=utcnow(),
            )
        )
    own = await svc.client.get("/v1/jobs/job-a", headers=tokens.headers("school", SCHOOL_A))
    assert own.status_code == 200
    foreign = await svc.client.get("/v1/jobs/job-a", headers=tokens.headers("school", SCHOOL_B))
    missing = await svc.client.get("/v1/jobs/nope", headers=tokens.headers("school", SCHOOL_B))
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["code"] == missing.json()["code"] == "not_found"
    assert (
        await svc.client.get("/v1/jobs/job-a", headers=tokens.headers("bureau", BUREAU))
    ).status_code == 200


async def test_problem_titles_follow_accept_language(start_service):
    svc = await start_service("notify")
    zh = await svc.client.get("/v1/me", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    en = await svc.client.get("/v1/me", headers={"Accept-Language": "en-GB,en;q=0.8,zh;q=0.5"})
    assert zh.json()["title"] == "需要身份认证"
    assert en.json()["title"] == "Authentication required"
    assert zh.json()["code"] == en.json()["code"] == "token_missing"


def test_production_refuses_development_secrets():
    from baoxue.settings import ServiceSettings

    with pytest.raises(ValueError, match="development secrets"):
        ServiceSettings(environment="production")
    ServiceSettings(
        environment="production",
        pii_keys="k9:" + "QUJDREVGR0hJSktMTU5PUA==",
        pii_active_key_id="k9",
        blind_index_key="c2VjcmV0LWJsaW5kLWluZGV4LWtleS1wcm9kdWN0aW9u",
        jwt_jwks_url="https://idp.example/jwks.json",
    )


_ = dt


async def test_event_publisher_reaches_a_stream(event_publisher, start_service):
    from baoxue.contracts.registry import FeedCompleted

    svc = await start_service("registry")
    await svc.wait_events_ready()
    env = await event_publisher.publish(
        FeedCompleted(
            batch_id="b1", department="dept_police", period="2026-09", rows_total=1, accepted=1, rejected=0
        ),
        subject="b1",
    )
    info = await svc.ctx.bus.stream_info("registry")
    assert info.state.messages == 1 and env.type == "baoxue.registry.feed.completed.v1"


async def test_trace_id_from_traceparent_or_fresh_on_every_answer(start_service, tokens):
    """The trace middleware (plain ASGI): X-Trace-Id is the caller's traceparent trace id, else a fresh
    one per request, on successes and on problem answers alike; routes added flat still answer 404/405
    as problems."""
    svc = await start_service("casework")
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    given = await svc.client.get("/health", headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
    assert given.headers["X-Trace-Id"] == trace
    fresh = {(await svc.client.get("/health")).headers["X-Trace-Id"] for _ in range(3)}
    assert len(fresh) == 3 and all(len(t) == 32 and int(t, 16) >= 0 for t in fresh)
    bad = await svc.client.get("/health", headers={"traceparent": "not-a-traceparent"})
    assert len(bad.headers["X-Trace-Id"]) == 32 and bad.headers["X-Trace-Id"] != trace
    missing = await svc.client.get(
        "/v1/cases/no-such-case",
        headers={**tokens.headers("school", SCHOOL_A), "traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
    )
    assert missing.status_code == 404 and missing.headers["X-Trace-Id"] == trace
    assert missing.headers["content-type"].startswith("application/problem+json")
    unknown = await svc.client.get("/v1/no-such-route")
    assert unknown.status_code == 404 and "X-Trace-Id" in unknown.headers
    wrong_method = await svc.client.delete("/health")
    assert wrong_method.status_code == 405 and wrong_method.headers["content-type"].startswith(
        "application/problem+json"
    )
