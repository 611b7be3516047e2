"""The service application factory: one lifespan, one error shape, one set of operational endpoints.

``create_app(spec)`` gives every service the same skeleton: settings, JSON logs with trace ids, the
crypto self-test, database, NATS (streams, outbox relay, consumers), the audit sealer, problem-details
errors, CORS, ``/health``, ``/ready``, ``/v1/me``, ``/v1/code-lists`` and ``/v1/jobs/{id}``, plus the
service's own routers under ``/v1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baoxue.audit import AuditLog
from baoxue.auth.roles import ROLES
from baoxue.auth.tokens import TokenVerifier
from baoxue.breakglass import breakglass_router
from baoxue.db import Database
from baoxue.deps import CurrentPrincipal, SessionDep, get_ctx
from baoxue.errors import NotFound, install_problem_handlers, register_problem_titles
from baoxue.events.bus import EventBus
from baoxue.events.consumer import ConsumerRunner
from baoxue.events.outbox import Outbox
from baoxue.events.relay import OutboxRelay
from baoxue.idempotency import IdempotencyStore
from baoxue.jobs import JobRunner
from baoxue.observability import (
    configure_logging,
    new_trace_id,
    reset_trace_id,
    set_trace_id,
    trace_id_from_traceparent,
)
from baoxue.orgs.directory import default_directory
from baoxue.pagination import SERVICE_NAME_STATE
from baoxue.pii import address_codes
from baoxue.pii.crypto import BlindIndex, FieldCipher, keys_from_setting, self_test
from baoxue.service import ServiceContext, ServiceSpec
from baoxue.settings import ServiceSettings

log = logging.getLogger(__name__)


class TraceMiddleware:
    """Bind each request's trace id (the caller's ``traceparent`` trace id, else a fresh one) for its
    logs and audit entries, and answer it in ``X-Trace-Id``.

    Plain ASGI rather than ``@app.middleware("http")`` (Starlette's ``BaseHTTPMiddleware``), which runs
    the rest of the app in a task group of its own with memory streams between them on every request.
    It sits where that one did: inside the outermost error middleware, outside the exception handlers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                incoming = trace_id_from_traceparent(value.decode("latin-1"))
                break
        trace_id = incoming or new_trace_id()
        token = set_trace_id(trace_id)

        async def send_with_trace_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Trace-Id"] = trace_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace_id)
        finally:
            reset_trace_id(token)


def build_context(spec: ServiceSpec, settings: ServiceSettings) -> ServiceContext:
    """Wire the collaborators of a service from its settings (no I/O yet)."""
    self_test()
    db = Database(settings.resolved_database_url(), pool_size=settings.database_pool_size)
    bus = EventBus(
        settings.nats_url,
        namespace=settings.event_namespace,
        client_name=f"baoxue-{spec.name}",
        replicas=settings.stream_replicas,
        duplicate_window_seconds=settings.duplicate_window_seconds,
    )
    keys = keys_from_setting(settings.pii_keys)
    return ServiceContext(
        spec=spec,
        settings=settings,
        db=db,
        bus=bus,
        outbox=Outbox(spec.tables.events),
        audit=AuditLog(spec.tables.audit),
        jobs=JobRunner(
            db,
            spec.tables.jobs,
            heartbeat_seconds=settings.job_heartbeat_seconds,
            stale_after_seconds=settings.job_stale_after_seconds,
        ),
        idempotency=IdempotencyStore(spec.tables.idempotency),
        cipher=FieldCipher(keys, active_key_id=settings.pii_active_key_id, algorithm=settings.pii_algorithm),
        blind_index=BlindIndex.from_setting(settings.blind_index_key),
        directory=default_directory(),
        verifier=TokenVerifier(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            algorithms=settings.jwt_algorithms,
            jwks_url=settings.jwt_jwks_url,
            public_key_file=Path(settings.jwt_public_key_file) if settings.jwt_public_key_file else None,
        ),
    )


async def _keep_running(name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Run a background loop; if it crashes, log the type and start it again."""
    while True:
        try:
            await loop()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(
                "background task crashed; restarting", extra={"task": name, "error_type": type(exc).__name__}
            )
            await asyncio.sleep(1.0)


async def _connect_and_start_events(ctx: ServiceContext) -> None:
    """Connect to NATS (retrying while it is away), provision streams, start the relay and consumers."""
    delay = 0.5
    while True:
        try:
            await ctx.bus.connect()
            await ctx.bus.ensure_streams()
            break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("nats not reachable yet", extra={"error_type": type(exc).__name__})
            with contextlib.suppress(Exception):
                await ctx.bus.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    s = ctx.settings
    async with asyncio.TaskGroup() as group:
        if s.relay_enabled:
            ctx.relay = OutboxRelay(ctx.db, ctx.spec.tables.events, ctx.bus, ctx.outbox)
            group.create_task(_keep_running("relay", ctx.relay.run))
        subscriptions = ctx.spec.subscriptions(ctx)
        if s.consumers_enabled and subscriptions:
            ctx.consumers = ConsumerRunner(
                ctx.spec.name,
                ctx.db,
                ctx.spec.tables.events,
                ctx.bus,
                subscriptions,
                max_deliver=s.max_deliver,
                ack_wait=s.ack_wait_seconds,
            )
            group.create_task(_keep_running("consumers", ctx.consumers.run))


AUDIT_SEAL_BATCH = 1000


def _freeze_start_up_objects() -> None:
    """Move everything alive after start-up (modules, routes, models, compiled statements: hundreds of
    thousands of objects that live as long as the process) out of the cyclic collector's reach. A full
    collection then walks only what requests made since, instead of pausing the event loop for tens of
    milliseconds. B4's read at 1,000/s, paired runs after the pool fix: p99 9.3 and 9.6 ms with this,
    10.2 and 101.1 ms without (27 Nov, bench/notes/b4.md; earlier figures mixed in the pool's churn).
    Called again by each service of an embedded stack: freezing is cumulative."""
    gc.collect()
    gc.freeze()


async def _seal_audit(ctx: ServiceContext) -> None:
    """Seal the audit log: at once again after a full batch, after a short pause after a partial one
    (so a busy service seals hundreds of entries per round, not a handful: each round costs a
    transaction), after a second when there was nothing to seal. Entries are durable from their own
    request's commit; this only bounds how soon they join the chain."""
    while True:
        sealed = await ctx.audit.seal(ctx.db, batch=AUDIT_SEAL_BATCH)
        if sealed == 0:
            await asyncio.sleep(1.0)
        elif sealed < AUDIT_SEAL_BATCH:
            await asyncio.sleep(0.2)


async def _shutdown(ctx: ServiceContext) -> None:
    """Stop background work, then NATS, then the database; no step may hang the process's exit."""
    tasks = [*ctx.tasks, *ctx.jobs.tasks.values()]
    for task in tasks:
        task.cancel()
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=10)
        if pending:
            log.error("tasks did not stop in time", extra={"tasks": [t.get_name() for t in pending]})
    for step, closing in (("jobs", ctx.jobs.close), ("nats", ctx.bus.close), ("database", ctx.db.dispose)):
        try:
            await asyncio.wait_for(closing(), timeout=8)
        except Exception as exc:
            log.error("shutdown step failed", extra={"step": step, "error_type": type(exc).__name__})


def create_app(spec: ServiceSpec, settings: ServiceSettings | None = None) -> FastAPI:
    """The FastAPI application of ``spec``'s service."""
    settings = settings or spec.settings_cls()
    register_problem_titles(spec.problem_titles)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(spec.name, settings.log_level)
        # The division codes ID numbers are checked against (0.15 s): read before the first request, and
        # an unusable local file stops the start before anything is opened.
        address_codes.load(settings.division_codes_file)
        ctx = build_context(spec, settings)
        app.state.ctx = ctx
        ctx.jobs.open()
        for hook in spec.on_startup:
            await hook(ctx)
        for kind, resume in spec.job_resumers.items():
            ctx.jobs.resume_with(kind, functools.partial(resume, ctx))
        await ctx.jobs.sweep(start_up=True)  # only abandoned jobs: a sibling's live ones are left alone
        ctx.tasks.append(asyncio.create_task(_keep_running("jobs", ctx.jobs.keep_alive), name="jobs"))
        ctx.tasks.append(asyncio.create_task(_connect_and_start_events(ctx), name="events"))
        ctx.tasks.append(asyncio.create_task(_keep_running("audit-sealer", lambda: _seal_audit(ctx))))
        for i, job in enumerate(spec.background):
            ctx.tasks.append(
                asyncio.create_task(_keep_running(f"background-{i}", functools.partial(job, ctx)))
            )
        log.info("service started", extra={"port": settings.port, "namespace": settings.event_namespace})
        _freeze_start_up_objects()
        try:
            yield
        finally:
            await _shutdown(ctx)

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version=spec.version,
        lifespan=lifespan,
        docs_url="/docs",
        root_path=settings.root_path,
        openapi_url="/openapi.json",
    )
    install_problem_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["ETag", "X-Trace-Id", "Location", "Idempotent-Replayed"],
        )

    setattr(app.state, SERVICE_NAME_STATE, spec.name)  # the lists' cursors are bound to the service
    app.add_middleware(TraceMiddleware)

    add_routes_flat(app.router, operational_router(spec))
    for router in (common_router(spec), breakglass_router(), *spec.routers):
        add_routes_flat(app.router, router, prefix="/v1")
    return app


def add_routes_flat(target: APIRouter, router: APIRouter, *, prefix: str = "") -> None:
    """Add ``router``'s routes to ``target`` as its own routes, ``prefix`` before their paths.

    What ``include_router`` means, without its nesting: FastAPI keeps an included router as a branch
    that is matched (and re-matched when it is handled) branch by branch, route context by route
    context, on every request — about a fifth of a simple read's CPU in the profile. Flat routes are
    matched once each, in the same order, with the same OpenAPI (the route's own tags, dependencies,
    responses and ids; the routers included here carry none of their own at inclusion).
    """
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"only API routes can be added flat, not {route!r}")
        target.add_api_route(
            prefix + route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=list(route.tags),
            dependencies=list(route.dependencies),
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=dict(route.responses),
            deprecated=route.deprecated,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=route.response_class,
            name=route.name,
            route_class_override=type(route),
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
            strict_content_type=route.strict_content_type,
            max_body_size=route.max_body_size,
            form_limits=route.form_limits or None,
        )


def operational_router(spec: ServiceSpec) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health", summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @router.get(
        "/ready", summary="Database and NATS are reachable", responses={503: {"description": "not ready"}}
    )
    async def ready(request: Request) -> JSONResponse:
        ctx: ServiceContext = get_ctx(request)
        checks = {"database": await ctx.db.ping(), "nats": ctx.bus.is_connected}
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "service": spec.name, "checks": checks},
            status_code=200 if ok else 503,
        )

    return router


def common_router(spec: ServiceSpec) -> APIRouter:
    router = APIRouter(tags=["common"])

    @router.get("/me", summary="The caller's roles, organisation and permissions (for the front-end)")
    async def me(principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
        ctx: ServiceContext = get_ctx(request)
        org = ctx.directory.get(principal.org)
        return {
            "subject": principal.subject,
            "name": principal.name,
            "roles": [
                {"code": r, "label_en": ROLES[r][0], "label_zh": ROLES[r][1]} for r in sorted(principal.roles)
            ],
            "org": {"code": principal.org, "name_zh": org.name_zh if org else None},
            "jurisdiction": principal.scope,
            "service": spec.name,
            "permissions": sorted(principal.permissions),
        }

    @router.get("/code-lists", summary="Every code list of this service, with Chinese and English labels")
    async def code_lists() -> dict[str, list[dict[str, str]]]:
        return {
            name: [{"code": c, "label_en": en, "label_zh": zh} for c, (en, zh) in codes.items()]
            for name, codes in spec.code_lists.items()
        }

    @router.get("/code-lists/{name}", summary="One code list")
    async def code_list(name: str) -> list[dict[str, str]]:
        codes = spec.code_lists.get(name)
        if codes is None:
            raise NotFound("No such code list.")
        return [{"code": c, "label_en": en, "label_zh": zh} for c, (en, zh) in codes.items()]

    @router.get("/jobs/{job_id}", summary="A long job's status, progress and counts")
    async def job(
        job_id: str, principal: CurrentPrincipal, session: SessionDep, request: Request
    ) -> dict[str, Any]:
        ctx: ServiceContext = get_ctx(request)
        found = await ctx.jobs.get(session, job_id)
        if found is None or (not principal.covers(found["org"]) and found["created_by"] != principal.subject):
            raise NotFound("No such job.")
        return found

    return router


_ = Database  # re-exported type for service modules' annotations
