"""Helpers shared by the enrollment service's tests."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, text

from baoxue.contracts.registry import ChildRegistered
from baoxue.pii.citizen_id import check_character
from baoxue.testing.plugin import RunningService, eventually
from enrollment.deferrals import service as deferrals
from enrollment.verification import tasks as verification_tasks

BUREAU = "370406D01"
DPF = "370406D04"
TOWN_A = "370406001"
DISTRICT_A = "37040600101"
SCHOOL_A = "37040600101001"
TOWN_B = "370406101"
DISTRICT_B = "37040610101"
SCHOOL_B = "37040610101001"

_seq = itertools.count(1)
SEPTEMBER_DAY = dt.date(2026, 9, 10)


@pytest.fixture
def server_day(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Sets the day the enrollment service takes for today (China's day) where a rule reads it: the
    deferral filing window, the day a verification task is resolved or confirmed on (its timeliness).
    ``server_day(date)``."""

    def set_day(day: dt.date) -> None:
        monkeypatch.setattr(deferrals, "today_in_china", lambda: day)
        monkeypatch.setattr(verification_tasks, "today_in_china", lambda: day)

    return set_day


@pytest.fixture
def in_september(server_day: Any) -> None:
    """The server's day is in the September filing window (applications dated up to 10 September)."""
    server_day(SEPTEMBER_DAY)


def make_id(birth: dt.date = dt.date(2016, 3, 1)) -> str:
    """A valid 18-character ID number with a fresh sequence part."""
    body = f"370406{birth:%Y%m%d}{next(_seq) % 1000:03d}"
    return body + check_character(body)


@dataclass
class Kid:
    child_id: str
    id_number: str
    birth: dt.date
    district: str
    town: str


async def start(start_service: Any, **overrides: Any) -> RunningService:
    svc = await start_service("enrollment", sweep_enabled=False, **overrides)
    await svc.wait_events_ready()
    return svc


async def register_child(
    svc: RunningService,
    publisher: Any,
    *,
    birth: dt.date = dt.date(2016, 3, 1),
    district: str = DISTRICT_A,
    town: str = TOWN_A,
    status: str = "active",
    sequence: int = 1,
) -> Kid:
    """Publish ChildRegistered on the registry's stream and wait until the read model has it."""
    kid = Kid(str(uuid.uuid4()), make_id(birth), birth, district, town)
    await publisher.publish(
        ChildRegistered(
            child_id=kid.child_id,
            id_blind_index=svc.ctx.blind_index.of(kid.id_number),
            birth_date=birth,
            hukou_town=town,
            hukou_school_district=district,
            status=status,
        ),  # type: ignore[arg-type]
        subject=kid.child_id,
        sequence=sequence,
    )

    async def arrived() -> bool:
        return await child_row(svc, kid.child_id) is not None

    await eventually(arrived)
    return kid


async def child_row(svc: RunningService, child_id: str) -> Any:
    async with svc.ctx.db.transaction() as s:
        return (
            (await s.execute(text("SELECT * FROM children WHERE child_id = :c"), {"c": child_id}))
            .mappings()
            .first()
        )


async def enroll(
    svc: RunningService, tokens: Any, kid_or_id: Kid | str, school: str = SCHOOL_A, grade: int = 4
) -> Any:
    id_number = kid_or_id.id_number if isinstance(kid_or_id, Kid) else kid_or_id
    return await svc.client.post(
        "/v1/students",
        headers=tokens.headers("school", school),
        json={
            "student_number": "G" + id_number,
            "id_number": id_number,
            "school_code": school,
            "grade": grade,
            "enrolled_on": "2026-09-01",
        },
    )


def home_delivery(kid: Kid, student_id: str, **over: Any) -> dict[str, Any]:
    """The body of a 送教上门 placement of ``kid``, taught by SCHOOL_A under its record ``student_id`` from
    the 2026 autumn term, three sessions planned a term; ``over`` replaces or adds fields."""
    return {
        "child_id": kid.child_id,
        "mode": "home_delivery",
        "receiving_school": SCHOOL_A,
        "student_id": student_id,
        "teaching_plan": "每周一次送教",
        "planned_sessions_per_term": 3,
        "starts_on": "2026-09-01",
        **over,
    }


async def outbox_events(svc: RunningService, event: str) -> list[dict[str, Any]]:
    """The data of every outbox event whose type contains ``event`` as written (e.g. 'student.registered';
    an underscore is an underscore, not a LIKE wildcard)."""
    table = svc.spec.tables.events.outbox
    async with svc.ctx.db.transaction() as s:
        rows = (
            await s.execute(
                select(table.c.envelope)
                .where(table.c.event_type.contains(event, autoescape=True))
                .order_by(table.c.position)
            )
        ).all()
    return [json.loads(r[0])["data"] for r in rows]
