"""Cursor pagination: lists are never unbounded, and a cursor is opaque to clients.

A cursor encodes the sort key of the last row returned; the next page is ``WHERE key > cursor``,
which stays fast on deep pages (no OFFSET) and stable while rows are added.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Annotated, Any, Generic, TypeAlias, TypeVar

from fastapi import Query
from pydantic import BaseModel

from baoxue.errors import Problem

T = TypeVar("T")

MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    """A page of a list: the items and the cursor of the next page (``null`` on the last page)."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(key: Any) -> str:
    # Wrapped, so that a random string that happens to decode to JSON is still not a cursor.
    payload = {"baoxue_cursor": key}
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
    a value the query cannot use."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise _invalid() from None
    if not isinstance(payload, dict) or "baoxue_cursor" not in payload:
        raise _invalid()
    key = payload["baoxue_cursor"]
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
Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")]


def page_of(rows: list[T], limit: int, key_of: Any) -> Page[T]:
    """Build a page from ``limit + 1`` fetched rows: the extra row only says that there is a next page."""
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_cursor=encode_cursor(key_of(rows[-1])))
    return Page(items=rows, next_cursor=None)
