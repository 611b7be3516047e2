"""A value outside a closed code list (a Literal or an Enum field) answers 422 naming the allowed codes,
in Chinese as in English, and lists them for programs (``errors[].allowed``); the value sent is not
echoed."""

from __future__ import annotations

import enum
from typing import Literal

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from baoxue.errors import install_problem_handlers


class Colour(enum.Enum):
    red = "red"
    blue = "blue"


class Body(BaseModel):
    reason: Literal["illness", "family_reasons", "other"]
    colour: Colour = Colour.red
    note: str = ""


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/things")
    async def things(body: Body) -> dict[str, str]:
        return {"reason": body.reason}

    return app


@pytest.mark.parametrize("language", ["zh-CN", "en"])
async def test_a_value_outside_a_code_list_names_the_allowed_codes(language):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t") as client:
        r = await client.post(
            "/things",
            json={"reason": "他在家里哭 13800000001", "colour": "green"},
            headers={"Accept-Language": language},
        )
    assert r.status_code == 422 and r.json()["code"] == "validation_failed"
    errors = {e["field"]: e for e in r.json()["errors"]}
    assert errors["reason"]["allowed"] == ["illness", "family_reasons", "other"]
    assert errors["colour"]["allowed"] == ["red", "blue"]
    for code in ("illness", "family_reasons", "other"):
        assert code in errors["reason"]["message"]
    if language == "zh-CN":
        assert errors["reason"]["message"] == "不是允许的取值（可选：illness、family_reasons、other）"
    assert "13800000001" not in r.text and "哭" not in r.text


async def test_other_validation_errors_carry_no_allowed_list():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t") as client:
        r = await client.post("/things", json={"reason": "other", "note": 5})
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["field"] == "note" and "allowed" not in error
