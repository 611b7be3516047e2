"""Request dependencies shared by every service: context, session, caller, permission checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.auth.roles import ROLES
from baoxue.errors import Forbidden, Unauthenticated

if TYPE_CHECKING:
    from baoxue.service import ServiceContext


def get_ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


async def _ctx(request: Request) -> ServiceContext:
    """``get_ctx`` as a dependency: a coroutine, because FastAPI runs a plain function dependency in its
    thread pool (a thread hop per request for an attribute read)."""
    return request.app.state.ctx  # type: ignore[no-any-return]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed if the route returns, rolled back if it raises.

    Service functions never commit; this dependency is the only place that does for request work.
    """
    ctx = get_ctx(request)
    async with ctx.db.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


_bearer = HTTPBearer(auto_error=False, description="OAuth2 bearer JWT from the identity provider")


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_access_purpose: Annotated[
        str | None,
        Header(description="Why personal data is being read (recorded in the audit log).", max_length=200),
    ] = None,
) -> Principal:
    """The authenticated caller, or 401. Unknown organisations are refused (403).

    A token carrying a break-glass grant (:mod:`baoxue.breakglass`) yields a caller whose jurisdiction
    is widened until the grant expires; the use is audited before the request's work starts, and an
    invalid grant refuses the request (403 ``breakglass_invalid``).
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("A bearer token is required.", code="token_missing")
    ctx = get_ctx(request)
    claims = await ctx.verifier.verify(credentials.credentials)
    roles = frozenset(r for r in claims.get("roles", []) if isinstance(r, str) and r in ROLES)
    org_code = claims.get("org")
    if not roles or not isinstance(org_code, str):
        raise Forbidden("The token carries no known role or organisation.", code="no_role")
    org = ctx.directory.get(org_code)
    if org is None:
        raise Forbidden("The token's organisation is not in the directory.", code="unknown_organisation")
    principal = Principal(
        subject=str(claims["sub"]),
        roles=roles,
        org=org_code,
        scope=ctx.directory.jurisdiction_of(org_code),
        permissions=ctx.spec.policy.permissions_of(roles),
        name=claims.get("name"),
        purpose=x_access_purpose,
    )
    from baoxue.breakglass import parse_grant, record_use, widen  # breakglass's router imports this module

    directory = ctx.directory
    grant = parse_grant(
        claims,
        home_scope=principal.scope,
        known_scope=lambda code: code == directory.district_code or directory.get(code) is not None,
    )
    if grant is None:
        return principal
    widened = widen(principal, grant)
    await record_use(ctx, widened, request)
    return widened


def requires(permission: str) -> Callable[..., Any]:
    """A dependency that yields the caller if it holds ``permission``, else 403."""

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.can(permission):
            raise Forbidden(
                f"Your role does not grant '{permission}'.", code="forbidden", permission=permission
            )
        return principal

    check.__name__ = f"requires_{permission.replace(':', '_')}"
    return check


# scope="function": the commit happens before the response is sent, so a failed commit is never a 200.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
Ctx = Annotated["ServiceContext", Depends(_ctx)]
