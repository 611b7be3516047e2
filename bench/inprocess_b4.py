"""B4 in process: CPU per request, statements per request and a cProfile of the casework app, no HTTP.

The app runs in this process (its lifespan, relay and audit sealer included) and is called through ASGI
directly, one request at a time (``--concurrency`` at once), so the figures are the service's own work
without uvicorn, sockets or a load generator, and little disturbed by a shared machine's load:

- process CPU milliseconds per request (the background sealer and relay included, as in the server);
- statements per request, by the first words of each (a ``before_cursor_execute`` listener on the
  service's engine), which is deterministic;
- with ``--profile FILE``, a cProfile of the measured requests.

``python bench/inprocess_b4.py --requests 2000 --only case_read`` (PostgreSQL at ``BENCH_DATABASE_URL``;
``--backend sqlite``). A tool for finding where a request's time goes; the benchmark is ``b4_api.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import datetime as dt
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from b4_api import AUDIENCE, ISSUER, SCHOOL, seed_cases, visit_body
from fastapi.security import HTTPAuthorizationCredentials
from harness import nats_server, scratch_database
from sqlalchemy import event
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baoxue.auth.tokens import ensure_dev_keypair, mint_token
from baoxue.deps import get_ctx, get_principal
from baoxue.migrations import upgrade


async def call(app: Any, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + (
            [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
            if body
            else []
        ),
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8103),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def starlette_case_read(request: Request) -> Response:
    """``GET /v1/cases/{id}`` without FastAPI: authenticate, check the permission, read and audit in one
    statement, answer the same body (only for ``case_read_starlette``; errors as bare statuses)."""
    from casework.cases import repository
    from casework.cases.views import case_public_of

    ctx = get_ctx(request)
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    principal = await get_principal(
        request,
        HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials),
        request.headers.get("x-access-purpose"),
    )
    if not principal.can("case:read"):
        return Response(status_code=403)
    row = await repository.read_case_audited(ctx.db, ctx.audit, request.path_params["case_id"], principal)
    if row is None:
        return Response(status_code=404)
    body = case_public_of(ctx, row).model_dump_json()
    return Response(body, media_type="application/json", headers={"ETag": f'"{row["version"]}"'})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="postgresql")
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--only",
        default="health,case_read,visit_create",
        help="also: case_read_starlette (the read without FastAPI)",
    )
    parser.add_argument("--profile", default=None, help="write a cProfile of the measured requests here")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="baoxue-b4ip-"))
    key_file = ensure_dev_keypair(folder / "jwt-key.pem")
    with scratch_database(args.backend, "b4ip") as url, nats_server() as nats_url:
        os.environ.update(
            {
                "CASEWORK_DATABASE_URL": url,
                "CASEWORK_NATS_URL": nats_url,
                "CASEWORK_EVENT_NAMESPACE": f"b4ip{uuid.uuid4().hex[:8]}",
                "CASEWORK_JWT_ISSUER": ISSUER,
                "CASEWORK_JWT_AUDIENCE": AUDIENCE,
                "CASEWORK_JWT_PUBLIC_KEY_FILE": str(key_file),
                "CASEWORK_LOG_LEVEL": "WARNING",
                "CASEWORK_VAR_DIR": str(folder),
            }
        )
        from casework.main import SERVICE, create_app

        upgrade(SERVICE.migrations_dir, url)
        case_ids = seed_cases(url, args.size)
        token = mint_token(
            key_file,
            subject="bench-school",
            roles=["school"],
            org=SCHOOL,
            issuer=ISSUER,
            audience=AUDIENCE,
            ttl=dt.timedelta(hours=4),
        )
        auth = {"Authorization": f"Bearer {token}", "host": "127.0.0.1"}
        rng = random.Random(1)
        app = create_app()
        # The case read's work outside FastAPI: the same caller, statement, audit entry and response as
        # GET /v1/cases/{id}, as a plain Starlette route placed first (no dependency solving, no route
        # matching before it): what the read would cost without the framework's per-request work.
        app.router.routes.insert(0, Route("/starlette/cases/{case_id}", starlette_case_read))

        def health() -> tuple[str, str, dict[str, str], bytes, int]:
            return "GET", "/health", {"host": "127.0.0.1"}, b"", 200

        def case_read() -> tuple[str, str, dict[str, str], bytes, int]:
            return "GET", f"/v1/cases/{rng.choice(case_ids)}", auth, b"", 200

        def visit_create() -> tuple[str, str, dict[str, str], bytes, int]:
            visit_id, body = visit_body(rng, args.size)
            return "POST", "/v1/visits", {**auth, "Idempotency-Key": f"v-{visit_id}"}, body, 201

        def case_read_starlette() -> tuple[str, str, dict[str, str], bytes, int]:
            return "GET", f"/starlette/cases/{rng.choice(case_ids)}", auth, b"", 200

        scenarios = {
            "health": health,
            "case_read": case_read,
            "case_read_starlette": case_read_starlette,
            "visit_create": visit_create,
        }
        async with app.router.lifespan_context(app):
            ctx = app.state.ctx
            statements: collections.Counter[str] = collections.Counter()

            def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                words = " ".join(statement.split()[:3])
                statements[words[:60]] += 1

            for engine in getattr(ctx.db, "engines", (ctx.db.engine,)):  # the autocommit pool too
                event.listen(engine.sync_engine, "before_cursor_execute", count)
            if hasattr(ctx.db, "fetch_one"):  # statements run on the driver itself (Database.fetch_one)
                fetch_one = ctx.db.fetch_one

                async def counted(query: Any, params: dict[str, Any]) -> Any:
                    count(None, None, query.sql)
                    return await fetch_one(query, params)

                ctx.db.fetch_one = counted

            async def run(make: Any, n: int) -> list[float]:
                left = n
                bad: list[int] = []

                async def worker() -> None:
                    nonlocal left
                    while left > 0:
                        left -= 1
                        method, path, headers, body, expect = make()
                        status = await call(app, method, path, headers, body)
                        if status != expect:
                            bad.append(status)

                await asyncio.gather(*(worker() for _ in range(args.concurrency)))
                if bad:
                    raise RuntimeError(f"unexpected statuses {collections.Counter(bad)}")
                return []

            for name in args.only.split(","):
                make = scenarios[name]
                await run(make, 200)  # warm up
                await asyncio.sleep(0.5)
                cpu_ms, wall_rate = [], []
                for _ in range(args.repeats):
                    statements.clear()
                    profiler = cProfile.Profile(time.thread_time) if args.profile else None
                    cpu0, t0 = time.process_time(), time.perf_counter()
                    if profiler:
                        profiler.enable()
                    await run(make, args.requests)
                    await asyncio.sleep(0.3)  # let the sealer / relay do the requests' background work
                    if profiler:
                        profiler.disable()
                        profiler.dump_stats(f"{args.profile}.{name}")
                    cpu_ms.append((time.process_time() - cpu0) * 1000 / args.requests)
                    wall_rate.append(args.requests / (time.perf_counter() - t0 - 0.3))
                per_request = {k: round(v / args.requests, 2) for k, v in statements.most_common()}
                print(
                    f"{name}: CPU ms/request {sorted(round(x, 3) for x in cpu_ms)} "
                    f"(median {sorted(cpu_ms)[len(cpu_ms) // 2]:.3f}); req/s {[round(x) for x in wall_rate]}; "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                print(f"  statements/request: {per_request}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
