"""baoxue.patches: an explicit null for a field that cannot be emptied is a 422 naming the field."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from baoxue.errors import Problem, install_problem_handlers
from baoxue.patches import refuse_emptying, refuse_null


class ThingUpdate(BaseModel):
    day: dt.date | None = None
    tags: list[str] | None = None
    note: str | None = None

    _not_null = refuse_null("day", "tags")


def test_left_out_is_unset_and_a_nullable_field_may_be_cleared() -> None:
    assert ThingUpdate().model_dump(exclude_unset=True) == {}
    assert ThingUpdate(note=None).model_dump(exclude_unset=True) == {"note": None}
    assert ThingUpdate(day="2026-11-20", tags=[]).model_dump(exclude_unset=True) == {
        "day": dt.date(2026, 11, 20),
        "tags": [],
    }


def test_an_explicit_null_is_an_error_of_each_field() -> None:
    with pytest.raises(ValidationError) as raised:
        ThingUpdate(day=None, tags=None, note=None)
    assert [(e["loc"], e["type"]) for e in raised.value.errors()] == [
        (("day",), "null_not_allowed"),
        (("tags",), "null_not_allowed"),
    ]


async def test_a_request_with_a_null_is_a_problem_naming_the_field() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.patch("/things/1")
    async def patch(data: ThingUpdate) -> dict[str, object]:
        return data.model_dump(mode="json", exclude_unset=True)

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.patch("/things/1", json={"tags": None, "note": None})
        zh = await client.patch("/things/1", json={"day": None}, headers={"Accept-Language": "zh"})
        ok = await client.patch("/things/1", json={"note": None})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "validation_failed"
    assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [("tags", "null_not_allowed")]
    assert zh.json()["errors"][0]["message"].startswith("该字段不能清空")
    assert ok.status_code == 200 and ok.json() == {"note": None}


def test_refuse_emptying_names_each_field_a_change_would_empty() -> None:
    refuse_emptying({"note": "x", "owner": "王老师"}, ("owner", "reason"), why="kept")  # nothing emptied
    with pytest.raises(Problem) as refused:
        refuse_emptying({"owner": "  ", "reason": None, "note": None}, ("owner", "reason"), why="kept")
    problem = refused.value
    assert (problem.status, problem.code) == (422, "validation_failed")
    assert problem.errors == [
        {"field": "owner", "code": "null_not_allowed"},
        {"field": "reason", "code": "null_not_allowed"},
    ]
