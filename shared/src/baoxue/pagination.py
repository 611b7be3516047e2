"""Cursor pagination: lists are never unbounded, and a cursor is opaque to clients.

A cursor encodes the sort key of the last row returned; the next page is ``WHERE key > cursor``,
which stays fast on deep pages (no OFFSET) and stable while rows are added.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

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


def decode_cursor(cursor: str | None) -> Any:
    """The sort key inside ``cursor``; a 400 problem for a cursor that was not made by us."""
    if not cursor:
        return None
    invalid = Problem("The cursor is not valid; start again from the first page.", code="invalid_cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise invalid from None
    if not isinstance(payload, dict) or "baoxue_cursor" not in payload:
        raise invalid
    return payload["baoxue_cursor"]


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (at most 500).")]
Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")]


def page_of(rows: list[T], limit: int, key_of: Any) -> Page[T]:
    """Build a page from ``limit + 1`` fetched rows: the extra row only says that there is a next page."""
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_cursor=encode_cursor(key_of(rows[-1])))
    return Page(items=rows, next_cursor=None)
