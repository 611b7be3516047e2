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


_BEARER_DESCRIPTION = "OAuth2 bearer JWT from the identity provider"
_bearer = HTTPBearer(auto_error=False, description=_BEARER_DESCRIPTION)


_PRINCIPAL = "baoxue.principal"
"""Where a request's caller is kept once established: in the ASGI scope, so that every dependency
asking for it in the same request (``CurrentPrincipal`` and any ``requires(...)``) gets the same
caller, and a token is verified — and a break-glass use recorded — once per request."""

_Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
_AccessPurpose = Annotated[
    str | None,
    Header(description="Why personal data is being read (recorded in the audit log).", max_length=200),
]


async def get_principal(
    request: Request, credentials: _Credentials, x_access_purpose: _AccessPurpose = None
) -> Principal:
    """The authenticated caller, or 401. Unknown organisations are refused (403).

    A token carrying a break-glass grant (:mod:`baoxue.breakglass`) yields a caller whose jurisdiction
    is widened until the grant expires; the use is audited before the request's work starts, and an
    invalid grant refuses the request (403 ``breakglass_invalid``).
    """
    known = request.scope.get(_PRINCIPAL)
    if known is not None:
        return known  # type: ignore[no-any-return]
    principal = await _authenticate(request, credentials, x_access_purpose)
    request.scope[_PRINCIPAL] = principal
    return principal


async def _authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None, x_access_purpose: str | None
) -> Principal:
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


class _Requires(HTTPBearer):
    """``requires(permission)``: the caller if it holds the permission, else 403 — as *one* dependency.

    It is the bearer scheme itself (the same ``HTTPBearer`` scheme in OpenAPI as :data:`_bearer`) and
    takes ``X-Access-Purpose`` directly, so FastAPI solves one dependency per request where
    ``requires → get_principal → _bearer`` were three; the caller is the same per-request caller as
    :func:`get_principal`'s (verified, and a break-glass use recorded, once per request).
    """

    def __init__(self, permission: str) -> None:
        super().__init__(auto_error=False, description=_BEARER_DESCRIPTION, scheme_name="HTTPBearer")
        self.permission = permission
        self.__name__ = f"requires_{permission.replace(':', '_')}"

    async def __call__(  # type: ignore[override]
        self, request: Request, x_access_purpose: _AccessPurpose = None
    ) -> Principal:
        principal = request.scope.get(_PRINCIPAL)
        if principal is None:
            principal = await get_principal(request, await super().__call__(request), x_access_purpose)
        if not principal.can(self.permission):
            raise Forbidden(
                f"Your role does not grant '{self.permission}'.", code="forbidden", permission=self.permission
            )
        return principal  # type: ignore[no-any-return]


def requires(permission: str) -> Callable[..., Any]:
    """A dependency that yields the caller if it holds ``permission``, else 403 (see :class:`_Requires`)."""
    return _Requires(permission)


# scope="function": the commit happens before the response is sent, so a failed commit is never a 200.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
Ctx = Annotated["ServiceContext", Depends(_ctx)]
