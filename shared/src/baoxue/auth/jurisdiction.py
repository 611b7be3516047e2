"""Jurisdiction: organisation codes are hierarchical, so "inside my jurisdiction" is a prefix test in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, bindparam, false, or_
from sqlalchemy.sql import ColumnElement

from baoxue.auth.principal import Principal
from baoxue.errors import NotFound


def within_jurisdiction(principal: Principal, *org_columns: Any) -> ColumnElement[bool]:
    """A WHERE clause: the row belongs to the caller's jurisdiction through any of ``org_columns``.

    Pass every column that gives a party a claim on the row — e.g. the enrolling school *and* the
    school district of the child's hukou place (case-role scope) — and the row is visible when any of
    them lies under the caller's scope. Codes are digits, so the LIKE prefix needs no escaping; it is
    escaped anyway so a malformed scope can never widen the match.
    """
    if not principal.scope:
        return false()
    clauses = [col.startswith(principal.scope, autoescape=True) for col in org_columns]
    return or_(*clauses) if clauses else false()


def scope_pattern(principal: Principal) -> str | None:
    """The ``LIKE`` pattern (escape character ``/``) of the caller's jurisdiction, or None for none: for
    statements built once with :func:`within_jurisdiction_param` and run with this as a parameter."""
    if not principal.scope:
        return None
    escaped = principal.scope.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return escaped + "%"


def within_jurisdiction_param(name: str, *org_columns: Any) -> ColumnElement[bool]:
    """:func:`within_jurisdiction` with the scope as the bound parameter ``name`` (its value from
    :func:`scope_pattern`), so a statement can be built once and cached; a caller whose pattern is None
    sees nothing and must not run the statement."""
    pattern = bindparam(name, type_=String())
    clauses = [col.like(pattern, escape="/") for col in org_columns]
    return or_(*clauses) if clauses else false()


def ensure_within(principal: Principal, *org_codes: str | None, resource: str = "resource") -> None:
    """Raise 404 unless at least one of ``org_codes`` is inside the caller's jurisdiction.

    404, not 403: a caller must not learn that a record exists outside its jurisdiction.
    """
    if not any(principal.covers(code) for code in org_codes):
        raise NotFound(f"No such {resource}.")


def ensure_writable(principal: Principal, stored_org: str | None, new_org: str | None) -> None:
    """A write is allowed only if both the stored and the new organisation are inside the jurisdiction."""
    ensure_within(principal, stored_org)
    if new_org is not None and not principal.covers(new_org):
        from baoxue.errors import Forbidden

        raise Forbidden("The target organisation is outside your jurisdiction.", code="outside_jurisdiction")
