"""Cursor pagination: lists are never unbounded, and a cursor is opaque to clients.

A cursor encodes the sort key of the last row returned; the next page is ``WHERE key > cursor``,
which stays fast on deep pages (no OFFSET) and stable while rows are added.

A cursor handed out in a request is bound to the list that issued it: it carries a short tag (a hash
prefix) of the service, the method, the request's path as routed (with its ids: case X's persuasions
are not case Y's) and the query parameters the route declares other than ``cursor`` and ``limit`` (the
filters, as sent, in any order). ``decode_cursor`` in a request refuses a cursor whose tag is not the
request's with the 400 ``invalid_cursor`` problem: another list's cursor, the same list's under other
filters, or a cursor without a tag (issued before cursors were bound). A client starts again from the
first page, as after any refused cursor; the page size may change from page to page. The request is
bound by the lists' own ``cursor`` parameter (``Cursor``, a dependency), so a request that reads no list
pays nothing for it; outside a request (tests, consumers, jobs started outside one) cursors carry no tag
and none is checked.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Annotated, Any, Generic, TypeAlias, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from starlette.datastructures import QueryParams
from starlette.types import Scope

from baoxue.errors import Problem

T = TypeVar("T")

MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    """A page of a list: the items and the cursor of the next page (``null`` on the last page)."""

    items: list[T]
    next_cursor: str | None = None


PAGING_PARAMETERS = frozenset({"cursor", "limit"})
"""Query parameters that move through a list rather than choose it: left out of a cursor's tag."""


_listing: ContextVar[tuple[str, Scope] | None] = ContextVar("baoxue_cursor_listing", default=None)
"""The request the cursors of this context belong to: its service and ASGI scope (routed by then)."""


@contextlib.contextmanager
def bound_to(service: str, scope: Scope) -> Iterator[None]:
    """Bind the cursors encoded and decoded inside to the request of ``scope`` in ``service``."""
    token = _listing.set((service, scope))
    try:
        yield
    finally:
        _listing.reset(token)


def _routed_path(scope: Scope) -> str:
    """The path the routes matched: without the root path when the server left it in (as Starlette)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


def _declared_query(route: Any) -> frozenset[str] | None:
    """The query parameters a FastAPI route (with its dependencies) reads; None for another route."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    names: set[str] = set()
    todo = [dependant]
    while todo:
        current = todo.pop()
        names.update(field.alias for field in current.query_params)
        todo.extend(current.dependencies)
    return frozenset(names)


def list_tag(service: str, scope: Scope) -> str:
    """The tag of the list a request reads: 12 characters of a SHA-256 of the service, the method, the
    routed path and the declared query parameters but ``cursor`` and ``limit`` (sorted pairs as sent;
    every one but those two for a route that declares none)."""
    declared = _declared_query(scope.get("route"))
    filters = sorted(
        (name, value)
        for name, value in QueryParams(scope.get("query_string", b"")).multi_items()
        if name not in PAGING_PARAMETERS and (declared is None or name in declared)
    )
    text = json.dumps([service, scope.get("method", "GET"), _routed_path(scope), filters])
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()[:9]).decode()


def _current_tag() -> str | None:
    listing = _listing.get()
    return None if listing is None else list_tag(*listing)


def encode_cursor(key: Any) -> str:
    """The cursor of ``key``; in a request, with the tag of the request's list."""
    # Wrapped, so that a random string that happens to decode to JSON is still not a cursor.
    payload: dict[str, Any] = {"baoxue_cursor": key}
    tag = _current_tag()
    if tag is not None:
        payload["of"] = tag
    return base64.urlsafe_b64encode(json.dumps(payload, default=str).encode()).decode().rstrip("=")


KeyPart: TypeAlias = type[str] | type[int] | type[dt.date] | type[dt.datetime]
KeyShape: TypeAlias = KeyPart | tuple[KeyPart, ...]
"""The shape of a list's sort key: one type, or a tuple of types for a composite key."""

_INT64 = 2**63


def _invalid() -> Problem:
    return Problem("The cursor is not valid; start again from the first page.", code="invalid_cursor")


def decode_cursor(cursor: str | None, shape: KeyShape) -> Any:
    """The sort key inside ``cursor``, checked against the list's key ``shape`` (what its ``page_of``
    key writes): ``str``, ``int``, ``dt.date`` or ``dt.datetime`` for a one-value key, a tuple of them
    for a composite key (a list in the cursor, returned as a tuple). Dates and times are read from their
    ISO text (times with their offset). A 400 ``invalid_cursor`` problem for a cursor that was not made
    by us or not for a key of this shape (a bare number, wrong types, another list's cursor), instead of
    a value the query cannot use. In a request, a cursor whose tag is not the request's list's (see the
    module) is refused the same way, after its key."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise _invalid() from None
    if not isinstance(payload, dict) or "baoxue_cursor" not in payload:
        raise _invalid()
    key = _key(payload["baoxue_cursor"], shape)
    tag = _current_tag()
    if tag is not None and payload.get("of") != tag:
        raise _invalid()
    return key


def _key(key: Any, shape: KeyShape) -> Any:
    if not isinstance(shape, tuple):
        return _part(key, shape)
    if not isinstance(key, list) or len(key) != len(shape):
        raise _invalid()
    return tuple(_part(value, part) for value, part in zip(key, shape, strict=True))


def _part(value: Any, part: KeyPart) -> Any:
    """One value of a key, of the type ``part`` (a 400 problem otherwise)."""
    if part is int:
        if isinstance(value, int) and not isinstance(value, bool) and -_INT64 <= value < _INT64:
            return value
        raise _invalid()
    if not isinstance(value, str) or "\x00" in value:
        raise _invalid()
    if part is str:
        return value
    try:
        if part is dt.datetime:
            moment = dt.datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise _invalid()
            return moment
        if part is dt.date:
            return dt.date.fromisoformat(value)
    except ValueError:
        raise _invalid() from None
    raise TypeError(f"not a cursor key type: {part!r}")


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (at most 500).")]
SERVICE_NAME_STATE = "service_name"
"""The attribute of ``app.state`` that names the service a list belongs to (set by the app factory)."""


async def _bound_cursor(
    request: Request,
    cursor: Annotated[
        str | None, Query(max_length=500, description="next_cursor of the previous page")
    ] = None,
) -> AsyncIterator[str | None]:
    """The ``cursor`` query parameter of a list, with the list's request bound (as ``bound_to``) while
    the endpoint encodes and decodes its cursors."""
    with bound_to(getattr(request.app.state, SERVICE_NAME_STATE, ""), request.scope):
        yield cursor


Cursor = Annotated[str | None, Depends(_bound_cursor)]
"""A list's ``cursor`` parameter (``cursor: Cursor = None``): the ``next_cursor`` of the previous page,
with the list's request bound, so that the cursors it issues and reads carry its tag."""


def page_of(rows: list[T], limit: int, key_of: Any) -> Page[T]:
    """Build a page from ``limit + 1`` fetched rows: the extra row only says that there is a next page."""
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_cursor=encode_cursor(key_of(rows[-1])))
    return Page(items=rows, next_cursor=None)
