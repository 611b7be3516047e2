"""Partial updates (PATCH): a field left out is unchanged, an explicit ``null`` clears it.

An update model declares every field optional so that it can be left out, which also lets a client send
``null`` for a field whose column cannot be empty; that reached the database (or the response model)
as a 500. :func:`refuse_null` names those fields: an explicit ``null`` for one of them is a 422
``validation_failed`` whose ``errors`` name the field (code ``null_not_allowed``), and leaving it out
stays fine.

>>> class VisitUpdate(BaseModel):
...     visited_on: dt.date | None = None
...     notes: str | None = None
...     _not_null = refuse_null("visited_on")
"""

from __future__ import annotations

from typing import Any

from pydantic import field_validator
from pydantic_core import PydanticCustomError

NULL_NOT_ALLOWED = "null_not_allowed"


def _not_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError(NULL_NOT_ALLOWED, "This field cannot be emptied: leave it out instead")
    return value


def refuse_null(*fields: str) -> Any:
    """A validator for an update model (assign it in the class body): an explicit ``null`` for any of
    ``fields`` is a validation error of that field; a field left out is not validated at all."""
    return field_validator(*fields, mode="before")(_not_null)
