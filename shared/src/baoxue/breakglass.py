"""Break-the-glass: emergency access beyond one's jurisdiction, with a reason, an expiry and an audit trail.

Design: the grant is a claim of the bearer token, issued by the identity provider after its own
approval step (the IdP already authenticates every user and is the one place that can approve
quickly at night; services stay stateless and need no grant table of their own)::

    "breakglass": {"id": "bg-2026-0042", "scope": "370406", "reason": "儿童失联，需跨镇核查户籍信息",
                   "exp": 1764150000}

Rules, checked on every request that carries the claim (an invalid grant refuses the request with
403 ``breakglass_invalid``, it is never silently ignored):

- ``scope`` is the code prefix the caller may see while the grant lasts. It must contain the caller's
  own jurisdiction (jurisdiction is one code prefix in Baoxue, so widening is the only meaningful
  change) and be inside the district or an organisation of the directory.
- ``reason`` is a stated reason of 10 to 200 characters (no personal data: it is shown to the bureau).
- ``exp`` lies in the future, no later than the token's own expiry and at most
  :data:`MAX_GRANT_SECONDS` after the token was issued.

Every request made under a grant appends an audit entry (``action="breakglass"``) in a transaction of
its own, committed before the request's work starts, so a use is recorded even if the request fails.
Personal-data reads recorded during such a request are marked ``breakglass:<id>`` in their ``detail``.
The bureau and the inspection office list the uses at ``GET /v1/breakglass/uses``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import insert, select

from baoxue.auth.principal import Principal
from baoxue.db import utcnow
from baoxue.deps import CurrentPrincipal, SessionDep, get_ctx
from baoxue.errors import Forbidden, register_problem_titles
from baoxue.observability import current_trace_id
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of

if TYPE_CHECKING:
    from baoxue.service import ServiceContext

CLAIM = "breakglass"
MAX_GRANT_SECONDS = 24 * 3600
REASON_MIN, REASON_MAX = 10, 200
AUDIT_ACTION = "breakglass"

register_problem_titles(
    {
        "breakglass_invalid": ("The break-glass grant is not valid", "紧急授权无效"),
        "breakglass_list_forbidden": (
            "Only the bureau and the inspection office may list break-glass uses",
            "仅区教体局和督查室可查看紧急授权使用记录",
        ),
    }
)


@dataclass(frozen=True)
class BreakGlassGrant:
    id: str
    scope: str
    reason: str
    expires_at: int
    home_scope: str


@dataclass(frozen=True)
class BreakGlassPrincipal(Principal):
    """A principal whose jurisdiction is widened by a grant (``scope`` is the grant's scope)."""

    grant: BreakGlassGrant | None = None


def _invalid(why: str) -> Forbidden:
    return Forbidden(f"The break-glass grant is not valid: {why}.", code="breakglass_invalid", reason=why)


def parse_grant(
    claims: dict[str, Any], *, home_scope: str, known_scope: Any, now: float | None = None
) -> BreakGlassGrant | None:
    """The token's grant, validated; ``None`` without the claim; :class:`Forbidden` if it is invalid.

    ``known_scope(code)`` says whether ``code`` is the district or an organisation of the directory.
    """
    raw = claims.get(CLAIM)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _invalid("not_an_object")
    now = time.time() if now is None else now
    grant_id, scope, reason, exp = raw.get("id"), raw.get("scope"), raw.get("reason"), raw.get("exp")
    if not isinstance(grant_id, str) or not 1 <= len(grant_id) <= 64:
        raise _invalid("id_missing")
    if not isinstance(reason, str) or not REASON_MIN <= len(reason.strip()) <= REASON_MAX:
        raise _invalid("reason_missing")
    if not isinstance(exp, int) or isinstance(exp, bool) or exp <= now:
        raise _invalid("expired")
    token_exp, token_iat = claims.get("exp"), claims.get("iat", now)
    if isinstance(token_exp, int) and exp > token_exp:
        raise _invalid("outlives_token")
    if isinstance(token_iat, int | float) and exp - token_iat > MAX_GRANT_SECONDS:
        raise _invalid("too_long")
    if not isinstance(scope, str) or not scope or not known_scope(scope):
        raise _invalid("unknown_scope")
    if not home_scope.startswith(scope):
        raise _invalid("scope_does_not_contain_home")
    return BreakGlassGrant(grant_id, scope, reason.strip(), exp, home_scope)


def widen(principal: Principal, grant: BreakGlassGrant) -> BreakGlassPrincipal:
    """The principal with the grant's scope; the stated purpose defaults to the grant's reason."""
    fields = {f: getattr(principal, f) for f in principal.__dataclass_fields__}
    fields.update(scope=grant.scope, grant=grant, purpose=principal.purpose or grant.reason)
    return BreakGlassPrincipal(**fields)


def grant_of(principal: Principal) -> BreakGlassGrant | None:
    return principal.grant if isinstance(principal, BreakGlassPrincipal) else None


async def record_use(ctx: ServiceContext, principal: BreakGlassPrincipal, request: Request) -> None:
    """Append the audit entry of one use of a grant, committed at once (before the request's work)."""
    grant = principal.grant
    assert grant is not None
    detail = {
        "home_scope": grant.home_scope,
        "scope": grant.scope,
        "until": dt.datetime.fromtimestamp(grant.expires_at, dt.UTC).isoformat(),
        "method": request.method,
        "path": request.url.path,  # surrogate ids only: personal data never goes into URLs
        "service": ctx.spec.name,
    }
    table = ctx.audit.table
    async with ctx.db.transaction() as session:
        await session.execute(
            insert(table).values(
                at=utcnow(),
                actor=principal.subject,
                actor_org=principal.org,
                roles=",".join(sorted(principal.roles)),
                action=AUDIT_ACTION,
                resource_type="jurisdiction",
                resource_ids=grant.id,
                purpose=grant.reason,
                detail=json.dumps(detail, ensure_ascii=False, sort_keys=True),
                trace_id=current_trace_id(),
            )
        )


class BreakGlassUse(BaseModel):
    """One request made under a break-glass grant."""

    position: int
    at: dt.datetime
    actor: str
    actor_org: str
    roles: list[str]
    grant_id: str
    reason: str | None
    detail: dict[str, Any] = Field(description="home and granted scope, expiry, method, path, service")
    trace_id: str | None

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "position": 42,
                    "at": "2026-11-26T02:14:00Z",
                    "actor": "u-1002",
                    "actor_org": "37040600101001",
                    "roles": ["school"],
                    "grant_id": "bg-2026-0042",
                    "reason": "儿童失联，需跨镇核查户籍信息",
                    "detail": {
                        "home_scope": "37040600101001",
                        "scope": "370406",
                        "until": "2026-11-26T10:00:00+00:00",
                        "method": "GET",
                        "path": "/v1/children/5b0c…",
                        "service": "registry",
                    },
                    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                }
            ]
        }
    }


def breakglass_router() -> APIRouter:
    """``GET /breakglass/uses`` for the bureau and the inspection office (mount under ``/v1``)."""
    router = APIRouter(tags=["common"])

    @router.get(
        "/breakglass/uses",
        summary="Requests made under break-glass grants, newest first (bureau and inspection office)",
        responses={403: {"description": "not the bureau or the inspection office"}},
    )
    async def list_uses(
        principal: CurrentPrincipal,
        session: SessionDep,
        request: Request,
        limit: Limit = 100,
        cursor: Cursor = None,
        grant_id: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Page[BreakGlassUse]:
        if not principal.has_role("bureau", "inspector") or principal.scope != ctx_district(request):
            raise Forbidden(
                "Only the bureau and the inspection office list these.", code="breakglass_list_forbidden"
            )
        table = get_ctx(request).audit.table
        query = select(table).where(table.c.action == AUDIT_ACTION)
        if grant_id:
            query = query.where(table.c.resource_ids == grant_id)
        after = decode_cursor(cursor, int)
        if after is not None:
            query = query.where(table.c.position < after)
        rows = (
            (await session.execute(query.order_by(table.c.position.desc()).limit(limit + 1))).mappings().all()
        )
        uses = [
            BreakGlassUse(
                position=r["position"],
                at=r["at"],
                actor=r["actor"],
                actor_org=r["actor_org"],
                roles=r["roles"].split(","),
                grant_id=r["resource_ids"],
                reason=r["purpose"],
                detail=json.loads(r["detail"] or "{}"),
                trace_id=r["trace_id"],
            )
            for r in rows
        ]
        return page_of(uses, limit, lambda u: u.position)

    return router


def ctx_district(request: Request) -> str:
    """The district code (the bureau's jurisdiction) of the running service's directory."""
    return str(request.app.state.ctx.directory.district_code)
