"""Reusable helpers for security tests: operation discovery, forged tokens, leak detection.

Everything here works from a service's OpenAPI document, so a new endpoint is attacked by the
existing tests without editing them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from baoxue.auth.tokens import DEV_KEY_ID, public_pem

PUBLIC_PATH_PREFIXES = ("/health", "/ready", "/docs", "/openapi.json", "/redoc", "/v1/code-lists")

# One organisation per role, inside Shanting (see docs/conventions.md).
ROLE_ORGS: dict[str, str] = {
    "bureau": "370406D01",
    "dept_police": "370406D02",
    "dept_poverty": "370406D03",
    "dept_dpf": "370406D04",
    "dept_civil": "370406D05",
    "justice": "370406D06",
    "inspector": "370406D07",
    "hrss": "370406D08",
    "market": "370406D09",
    "culture": "370406D10",
    "town": "370406001",
    "school_district": "37040600101",
    "school": "37040600101001",
    "teacher": "37040600101001",
    "provincial_platform": "370406D01",
    "service": "370406D01",
}

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    """One operation of a service's OpenAPI document."""

    service: str
    method: str
    path: str
    path_params: tuple[str, ...]
    request_body: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    operation_id: str = ""

    @property
    def public(self) -> bool:
        return self.path.startswith(PUBLIC_PATH_PREFIXES)

    @property
    def is_collection_read(self) -> bool:
        """A GET without path parameters: a list, a ledger or a report over many rows."""
        return self.method == "GET" and not self.path_params

    @property
    def label(self) -> str:
        return f"{self.service} {self.method} {self.path}"

    def url(self, values: Mapping[str, str] | None = None) -> str:
        """The path with every parameter replaced (by ``values`` or a fresh random id)."""
        out = self.path
        for name in self.path_params:
            value = (values or {}).get(name) or str(uuid.uuid4())
            out = out.replace("{" + name + "}", value)
        return out

    def json_body(self, components: Mapping[str, Any]) -> Any:
        """A plausible JSON body: the schema's first example, else a value built from the schema."""
        if not self.request_body:
            return None
        content = self.request_body.get("content", {})
        media = content.get("application/json")
        if media is None:
            return None
        if "example" in media:
            return media["example"]
        schema = resolve(media.get("schema", {}), components)
        return example_of(schema, components)


def discover_operations(service: str, openapi: Mapping[str, Any]) -> list[Operation]:
    """Every operation of an OpenAPI document, in a stable order."""
    ops = []
    for path, item in sorted(openapi.get("paths", {}).items()):
        for method in HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = tuple(
                p["name"]
                for p in [*item.get("parameters", []), *op.get("parameters", [])]
                if p["in"] == "path"
            )
            ops.append(
                Operation(
                    service=service,
                    method=method.upper(),
                    path=path,
                    path_params=params,
                    request_body=op.get("requestBody"),
                    operation_id=op.get("operationId", ""),
                )
            )
    return ops


def resolve(schema: Mapping[str, Any], components: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if ref:
        # A dangling reference (a service mid-change) resolves to "anything" rather than crashing.
        target = components.get("schemas", {}).get(ref.rsplit("/", 1)[-1], {})
        return resolve(target, components)
    return schema


def example_of(schema: Mapping[str, Any], components: Mapping[str, Any], depth: int = 0) -> Any:
    """A value for ``schema``: its example if it has one, else the simplest value of its type."""
    schema = resolve(schema, components)
    for key in ("examples", "example"):
        if key in schema:
            value = schema[key]
            return value[0] if key == "examples" and isinstance(value, list) and value else value
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            choices = [s for s in schema[key] if resolve(s, components).get("type") != "null"]
            return example_of(choices[0], components, depth + 1) if choices else None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 6:
            return {}
        required = schema.get("required", [])
        return {
            name: example_of(sub, components, depth + 1)
            for name, sub in schema.get("properties", {}).items()
            if name in required
        }
    if kind == "array":
        return []
    if kind == "integer":
        return max(0, int(schema.get("minimum", 0)))
    if kind == "number":
        return 0.0
    if kind == "boolean":
        return False
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date":
            return "2026-09-01"
        if fmt == "date-time":
            return "2026-09-01T08:00:00+08:00"
        if fmt == "uuid":
            return str(uuid.uuid4())
        return "x" * max(1, int(schema.get("minLength", 1)))
    return None


# ---------------------------------------------------------------------------------------- tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(issuer: str, audience: str, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": issuer,
        "aud": audience,
        "sub": "attacker",
        "iat": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
        "roles": ["bureau"],
        "org": ROLE_ORGS["bureau"],
    }
    base.update(over)
    return base


def forged_tokens(key_file: Path, *, issuer: str, audience: str) -> dict[str, str | None]:
    """Every token attack, by name → the bearer token (``None``: no Authorization header at all).

    Each would otherwise be a bureau token (the widest jurisdiction), so a single acceptance is a leak.
    """
    own = load_pem_private_key(key_file.read_bytes(), password=None)
    other_ec = ec.generate_private_key(ec.SECP256R1())
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())

    def sign(claims: dict[str, Any], key: Any, alg: str, kid: str = DEV_KEY_ID) -> str:
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})

    def hs_with_public_key() -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": DEV_KEY_ID}).encode())
        payload = _b64(json.dumps(_claims(issuer, audience)).encode())
        sig = hmac.new(public_pem(key_file), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(sig)}"

    def alg_none() -> str:
        header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(_claims(issuer, audience)).encode())
        return f"{header}.{payload}."

    valid = sign(_claims(issuer, audience), own, "ES256")
    head, payload, sig = valid.split(".")
    tampered_payload = _b64(json.dumps(_claims(issuer, audience, sub="someone-else")).encode())
    return {
        "missing": None,
        "empty": "",
        "malformed": "not-a-jwt",
        "garbage_segments": "a.b.c",
        "expired": sign(_claims(issuer, audience, exp=now - 3600, iat=now - 7200), own, "ES256"),
        "not_yet_valid": sign(_claims(issuer, audience, nbf=now + 3600), own, "ES256"),
        "wrong_issuer": sign(_claims(issuer="https://evil.example", audience=audience), own, "ES256"),
        "wrong_audience": sign(_claims(issuer, "another-system"), own, "ES256"),
        "no_expiry": sign({k: v for k, v in _claims(issuer, audience).items() if k != "exp"}, own, "ES256"),
        "alg_none": alg_none(),
        "hs_rs_confusion": hs_with_public_key(),
        "unknown_kid_other_key": sign(_claims(issuer, audience), other_ec, "ES256", kid="attacker-1"),
        "rs256_attacker_key": sign(_claims(issuer, audience), other_rsa, "RS256", kid="attacker-rsa"),
        "tampered_payload": f"{head}.{tampered_payload}.{sig}",
        "stripped_signature": f"{head}.{payload}.",
    }


# ---------------------------------------------------------------------------------------- checks


def is_problem(response: httpx.Response) -> bool:
    """True for an RFC 9457 problem-details response with the fields Baoxue promises."""
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return body.get("status") == response.status_code and bool(body.get("code")) and "trace_id" in body


ORG_CODE = re.compile(r"^370406[0-9A-Z]{0,14}$")
ORG_FIELD = re.compile(r"(org|school|town|district|village|hukou|department)", re.IGNORECASE)


def org_codes_in(value: Any) -> set[str]:
    """Organisation codes found in fields whose name speaks of an organisation (recursively)."""
    found: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and ORG_FIELD.search(key) and ORG_CODE.match(node):
            found.add(node)

    walk(value)
    return found


def items_of(body: Any) -> list[Any]:
    """The rows of a list response: ``items`` of a page, the list itself, or the lists inside a report."""
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        if isinstance(body.get("items"), list):
            return list(body["items"])
        rows: list[Any] = []
        for v in body.values():
            if isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
                rows.extend(v)
        return rows
    return []


def foreign_rows(body: Any, scope: str) -> list[Any]:
    """Rows of a list response with organisation codes none of which lies inside ``scope``.

    A row is visible when any of its organisation columns is inside the caller's jurisdiction
    (``within_jurisdiction``), so only a row whose every code is foreign is a leak.
    """
    leaks = []
    for row in items_of(body):
        codes = org_codes_in(row)
        if codes and not any(c.startswith(scope) for c in codes):
            leaks.append(row)
    return leaks
