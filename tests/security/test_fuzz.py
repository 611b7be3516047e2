"""Property-based fuzzing of every service's OpenAPI with schemathesis, in process (ASGI).

Per operation: ``FUZZ_EXAMPLES`` generated cases (100 in CI; ``make fuzz`` runs 1,000) sent with a
valid bureau token; every response is checked for server errors and conformance to the documented
response schema, and every error response must be problem+json. One case per operation is also sent
without credentials and must get 401 (public operations excepted).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from baoxue.testing.attacks import PUBLIC_PATH_PREFIXES, ROLE_ORGS, is_problem

from .conftest import SERVICES, Tally

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))


def _cases(operation: Any, n: int) -> list[Any]:
    cases: list[Any] = []

    @settings(
        max_examples=n,
        # CI runs a fixed, reproducible set; `make fuzz` (FUZZ_RANDOM=1) explores new cases each run.
        derandomize=not os.environ.get("FUZZ_RANDOM"),
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy())
    def collect(case: Any) -> None:
        cases.append(case)

    collect()
    return cases


def _request_kwargs(case: Any, headers: dict[str, str]) -> dict[str, Any]:
    kw = case.as_transport_kwargs(base_url="http://fuzz", headers=headers)
    out: dict[str, Any] = {"method": kw["method"], "url": kw["url"], "headers": kw.get("headers") or {}}
    if kw.get("params"):
        out["params"] = kw["params"]
    if "json" in kw:
        out["json"] = kw["json"]
    elif kw.get("files"):
        out["files"], out["data"] = _encodable(kw["files"]), kw.get("data") or {}
    elif "data" in kw and kw["data"] is not None:
        data = kw["data"]
        out["content"] = data if isinstance(data, bytes | str) else None
        if out["content"] is None:
            out["data"] = data
    return out


def _encodable(files: Any) -> Any:
    """Multipart parts as a client sends them: a generated number or null in a part is sent as its
    text (httpx would fail to encode it before anything reached the service)."""

    def part(value: Any) -> Any:
        if isinstance(value, tuple):
            return (value[0], part(value[1]), *value[2:])
        return value if isinstance(value, bytes | str) or hasattr(value, "read") else json.dumps(value)

    if isinstance(files, dict):
        return {k: part(v) for k, v in files.items()}
    return [(k, part(v)) for k, v in files]


@pytest.mark.parametrize("name", SERVICES)
async def test_fuzz_every_operation(start_service, tokens, name):
    svc = await start_service(name)
    await svc.wait_events_ready(timeout=20)  # /ready is 503 until NATS is connected
    schema = schemathesis.openapi.from_dict(svc.app.openapi())
    bureau = tokens.headers("bureau", ROLE_ORGS["bureau"], purpose="fuzzing")
    tally, unauth = Tally(name, "fuzz"), Tally(name, "fuzz missing credentials")
    operations = 0
    timings: list[tuple[float, str, int]] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        started = time.monotonic()
        cases = _cases(operation, EXAMPLES)
        assert cases, f"{operation.label}: no case could be generated"
        declared = {str(code) for code in operation.definition.raw.get("responses", {})}
        for case in cases:
            tally.tried += 1
            try:
                response = await _send(svc.client, case, bureau)
            except Exception as exc:  # the app raised: the client would have had a 500
                tally.leak(_op(name, operation), f"fuzz:{type(exc).__name__}", 500, str(exc)[:160])
                continue
            failures: list[tuple[str, str]] = []
            # A documented 503 problem (e.g. "the SMS gateway is not configured") is an answer, not a crash.
            documented_503 = response.status_code == 503 and "503" in declared and is_problem(response)
            checks = (
                [response_schema_conformance]
                if documented_503
                else [not_a_server_error, response_schema_conformance]
            )
            try:
                case.validate_response(response, checks=checks)
            except (FailureGroup, AssertionError) as exc:
                kind = "5xx" if response.status_code >= 500 and not documented_503 else "schema"
                failures.append((f"fuzz:{kind}", str(exc)[:300]))
            if response.status_code >= 400 and not is_problem(response):
                failures.append(("fuzz:not_problem", response.headers.get("content-type", "")))
            for kind, text in failures:
                tally.leak(_op(name, operation), kind, response.status_code, text)
        if not operation.path.startswith(PUBLIC_PATH_PREFIXES):
            response = await _send(svc.client, cases[0], {})
            unauth.tried += 1
            if response.status_code != 401:
                unauth.leak(_op(name, operation), "token", "missing credentials", response.status_code)
        timings.append((time.monotonic() - started, operation.label, len(cases)))
    print(f"{name}: {operations} operations × ≤{EXAMPLES} cases; slowest:")
    for seconds, label, n in sorted(timings, reverse=True)[:5]:
        print(f"  {seconds:6.1f}s {label} ({n} cases)")
    tally.publish()
    unauth.publish()
    groups = Counter((leak[0], leak[1]) for leak in tally.leaks + tally.reported + unauth.leaks)
    for (label, kind), n in sorted(groups.items()):
        print(f"  finding: {label} {kind} ×{n}")
    assert not tally.leaks, tally.leaks[:20]
    assert not unauth.leaks, unauth.leaks


async def _send(client: Any, case: Any, headers: dict[str, str]) -> Any:
    request = client.build_request(**_request_kwargs(case, headers))
    await request.aread()  # multipart bodies are streams; the ASGI transport wants them read
    return await client.send(request)


def _op(service: str, operation: Any) -> Any:
    from baoxue.testing.attacks import Operation

    return Operation(service=service, method=operation.method.upper(), path=operation.path, path_params=())
