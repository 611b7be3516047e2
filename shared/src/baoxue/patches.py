"""Partial updates (PATCH): a field left out is unchanged, an explicit ``null`` clears it.

An update model declares every field optional so that it can be left out, which also lets a client send
``null`` for a field whose column cannot be empty; that reached the database (or the response model)
as a 500. :func:`refuse_null` names those fields: an explicit ``null`` for one of them is a 422
``validation_failed`` whose ``errors`` name the field (code ``null_not_allowed``), and leaving it out
stays fine. :func:`refuse_emptying` is the same refusal for fields that only some states of a record keep
(checked by the service, which knows the state).

>>> class VisitUpdate(BaseModel):
...     visited_on: dt.date | None = None
...     notes: str | None = None
...     _not_null = refuse_null("visited_on")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import field_validator
from pydantic_core import PydanticCustomError

from baoxue.errors import Problem

NULL_NOT_ALLOWED = "null_not_allowed"


def _not_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError(NULL_NOT_ALLOWED, "This field cannot be emptied: leave it out instead")
    return value


def refuse_null(*fields: str) -> Any:
    """A validator for an update model (assign it in the class body): an explicit ``null`` for any of
    ``fields`` is a validation error of that field; a field left out is not validated at all."""
    return field_validator(*fields, mode="before")(_not_null)


def refuse_emptying(changes: Mapping[str, object], fields: Iterable[str], *, why: str) -> None:
    """The same 422 as :func:`refuse_null`, for ``fields`` the record keeps in its current state: each of
    them that ``changes`` (an update's set fields) would empty, ``null`` or a blank text, is named.
    ``why`` opens the problem's detail."""
    emptied = [
        name
        for name in fields
        if name in changes and (changes[name] is None or str(changes[name]).strip() == "")
    ]
    if emptied:
        raise Problem(
            f"{why}: "
            + ", ".join(f"'{name}'" for name in emptied)
            + " cannot be emptied (leave it out, or send another value).",
            status=422,
            code="validation_failed",
            errors=[{"field": name, "code": NULL_NOT_ALLOWED} for name in emptied],
        )
