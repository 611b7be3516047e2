"""Scorecards show visit coverage against casework's rosters (RosterSet): students visited / students on
the semester's roster and the special-group quota, per school and per town, in JSON, Excel, CSV and PDF
— unknown (null, 无花名册) without a roster, never a fake 0 or 100 %."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

from openpyxl import load_workbook
from sqlalchemy import func, select

from baoxue.contracts.casework import RosterSet, VisitRecorded
from baoxue.testing.plugin import eventually
from notify.bulletins.exports import NO_ROSTER, NOT_APPLICABLE, _percent
from notify.bulletins.models import RosterFact, VisitFact
from tests.notify.conftest import BUREAU, SCHOOL_A, SCHOOL_B, TOWN_A, TOWN_B, start_notify

SPRING, AUTUMN = "2026-spring", "2026-autumn"


def _visit(school: str, student: str, semester: str, *, special: bool = False) -> VisitRecorded:
    return VisitRecorded(
        visit_id=str(uuid.uuid4()),
        student_id=student,
        school_code=school,
        teacher="t-0001",
        semester=semester,
        visited_on=dt.date(2026, 5, 1) if semester == SPRING else dt.date(2026, 10, 9),
        special_group=special,
    )


def _roster(school: str, semester: str, students: int, special: int) -> RosterSet:
    return RosterSet(school_code=school, semester=semester, students=students, special_group_students=special)


async def test_coverage_ratios_per_school_and_town_from_rosters_and_visits(
    start_service, event_publisher, tokens
):
    svc = await start_notify(start_service)  # quota 2 visits per special-group student
    empty_school = next(
        s.code for s in svc.ctx.directory.schools() if s.code.startswith(TOWN_A) and s.code != SCHOOL_A
    )
    # School A, spring: 4 listed, 2 in a special group; one special student visited twice, the other once,
    # one ordinary student once (3 of 4 visited; 3 of the 4 quota visits). An older version of the roster
    # arrives late and changes nothing. Autumn: 2 listed, none special, 1 visited.
    # School B: visits but no roster. Another school of town A: a roster listing nobody.
    s1, s2, s3 = (str(uuid.uuid4()) for _ in range(3))
    rosters = [
        (_roster(SCHOOL_A, SPRING, 4, 2), f"{SCHOOL_A}:{SPRING}", 2),
        (_roster(SCHOOL_A, SPRING, 9, 9), f"{SCHOOL_A}:{SPRING}", 1),
        (_roster(SCHOOL_A, AUTUMN, 2, 0), f"{SCHOOL_A}:{AUTUMN}", 1),
        (_roster(empty_school, SPRING, 0, 0), f"{empty_school}:{SPRING}", 1),
    ]
    for event, subject, sequence in rosters:
        await event_publisher.publish(event, subject=subject, sequence=sequence)
    visits = [
        _visit(SCHOOL_A, s1, SPRING, special=True),
        _visit(SCHOOL_A, s1, SPRING, special=True),
        _visit(SCHOOL_A, s2, SPRING, special=True),
        _visit(SCHOOL_A, s3, SPRING),
        _visit(SCHOOL_A, s3, AUTUMN),
        _visit(SCHOOL_B, str(uuid.uuid4()), SPRING),
        _visit(SCHOOL_B, str(uuid.uuid4()), AUTUMN),
    ]
    for event in visits:
        await event_publisher.publish(event, subject=event.visit_id)
    inbox = svc.spec.tables.events.inbox
    late = len(rosters) + len(visits)

    async def recorded() -> bool:
        async with svc.ctx.db.transaction() as s:
            n = (await s.execute(select(func.count()).select_from(VisitFact))).scalar_one()
            r = (await s.execute(select(func.count()).select_from(RosterFact))).scalar_one()
            seen = (await s.execute(select(func.count()).select_from(inbox))).scalar_one()
        return n == len(visits) and r == 3 and seen >= late

    await eventually(recorded)
    bureau = tokens.headers("bureau", BUREAU)
    params = {"year": 2026, "level": "school"}
    rows = {
        r["org"]: r for r in (await svc.client.get("/v1/scorecards", params=params, headers=bureau)).json()
    }
    a, b, e = rows[SCHOOL_A], rows[SCHOOL_B], rows[empty_school]
    # A: 3 of 4 (spring) + 1 of 2 (autumn) = 4 of 6 listed; special: 3 of 2 × 2 quota visits.
    assert (a["roster_students"], a["roster_students_visited"], a["visit_coverage"]) == (6, 4, 0.6667)
    assert (a["special_visits_due"], a["special_visits_made"], a["special_coverage"]) == (4, 3, 0.75)
    assert a["visited_without_roster"] == 0 and a["name_zh"]
    # B: visited, but no roster — coverage unknown, not 0 and not 100 %.
    assert b["students_visited"] == 2 and b["visited_without_roster"] == 2
    for field in ("roster_students", "roster_students_visited", "visit_coverage", "special_coverage"):
        assert b[field] is None, field
    # A roster listing nobody: known (0 students), ratios not applicable.
    assert (e["roster_students"], e["visit_coverage"], e["special_visits_due"], e["special_coverage"]) == (
        0,
        None,
        0,
        None,
    )

    towns = {
        r["org"]: r
        for r in (await svc.client.get("/v1/scorecards", params={"year": 2026}, headers=bureau)).json()
    }
    assert (towns[TOWN_A]["roster_students"], towns[TOWN_A]["visit_coverage"]) == (6, 0.6667)
    assert towns[TOWN_A]["special_coverage"] == 0.75
    assert towns[TOWN_B]["visit_coverage"] is None and towns[TOWN_B]["visited_without_roster"] == 2
    # A town sees its own schools only.
    own = (
        await svc.client.get("/v1/scorecards", params=params, headers=tokens.headers("town", TOWN_B))
    ).json()
    assert {r["org"] for r in own} == {SCHOOL_B}

    xlsx = await svc.client.get("/v1/scorecards/xlsx", params=params, headers=bureau)
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    header = [c.value for c in sheet[1]]
    coverage, special = (
        header.index("家访覆盖率 visit_coverage"),
        header.index("特殊群体家访完成率 special_coverage"),
    )
    by_org = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert (by_org[SCHOOL_A][coverage], by_org[SCHOOL_A][special]) == (0.6667, 0.75)
    assert (by_org[SCHOOL_B][coverage], by_org[SCHOOL_B][special]) == (NO_ROSTER, NO_ROSTER)
    assert by_org[empty_school][coverage] == NOT_APPLICABLE
    [a_row] = [r for r in sheet.iter_rows(min_row=2) if r[0].value == SCHOOL_A]
    assert a_row[coverage].number_format == "0.0%"  # shown as 66.7 %

    text = (await svc.client.get("/v1/scorecards/csv", params=params, headers=bureau)).content.decode(
        "utf-8-sig"
    )
    lines = {line[0]: line for line in csv.reader(io.StringIO(text))}
    assert (lines[SCHOOL_A][coverage], lines[SCHOOL_B][coverage]) == ("0.6667", NO_ROSTER)

    pdf = await svc.client.get("/v1/scorecards/pdf", params={"year": 2026}, headers=bureau)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_the_pdf_cell_of_a_coverage_figure():
    assert _percent(4, 6, 0.6667, roster=True) == "66.7%（4/6）"
    assert _percent(None, None, None, roster=False) == NO_ROSTER
    assert _percent(0, 0, None, roster=True) == NOT_APPLICABLE
