"""The frozen campaign result as CSV and Excel: per town and school district, equal to the JSON result."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from baoxue.orgs.directory import default_directory
from enrollment.verification.export import result_table
from tests.enrollment.conftest import (
    BUREAU,
    DISTRICT_A,
    DISTRICT_B,
    TOWN_A,
    TOWN_B,
    enroll,
    register_child,
    start,
)
from tests.enrollment.test_verification import CAMPAIGN, run_and_wait


async def test_result_exports_open_and_equal_the_json_result(start_service, event_publisher, tokens):
    svc = await start(start_service)
    bureau = tokens.headers("bureau", BUREAU)
    for _ in range(2):
        await enroll(svc, tokens, await register_child(svc, event_publisher))  # enrolled_local in A
    await register_child(svc, event_publisher, status="deceased")  # deceased in A
    await register_child(svc, event_publisher, district=DISTRICT_B, town=TOWN_B)  # unaccounted in B
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    not_yet = await svc.client.get(f"/v1/campaigns/{campaign['id']}/result.xlsx", headers=bureau)
    assert not_yet.status_code == 404 and not_yet.json()["code"] == "campaign_not_frozen"
    await run_and_wait(svc, tokens, campaign["id"])
    result = (await svc.client.post(f"/v1/campaigns/{campaign['id']}/result", headers=bureau)).json()
    assert result["counts_by_outcome"] == {"enrolled_local": 2, "deceased": 1, "unaccounted": 1}
    assert result["counts_by_town_district"] == [
        {
            "hukou_town": TOWN_A,
            "hukou_school_district": DISTRICT_A,
            "counts": {"enrolled_local": 2, "deceased": 1},
        },
        {"hukou_town": TOWN_B, "hukou_school_district": DISTRICT_B, "counts": {"unaccounted": 1}},
    ]

    xlsx = await svc.client.get(f"/v1/campaigns/{campaign['id']}/result.xlsx", headers=bureau)
    assert xlsx.status_code == 200 and "attachment" in xlsx.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = rows[0]
    assert header[:4] == [
        "镇街代码 town",
        "镇街 town name",
        "学区代码 school district",
        "学区 school district name",
    ]
    assert header[4:] == ["本地就读 enrolled_local", "死亡 deceased", "待核查 unaccounted", "合计 total"]
    assert rows[1][:4] == [TOWN_A, "山城街道", DISTRICT_A, rows[1][3]] and rows[1][3]
    assert rows[1][4:] == [2, 1, 0, 3]
    assert rows[2][0] == TOWN_B and rows[2][4:] == [0, 0, 1, 1]
    assert rows[3][0] == "合计 total" and rows[3][4:] == [2, 1, 1, 4]
    # the figures are the JSON result's
    outcomes = [h.split(" ")[1] for h in header[4:-1]]
    for line, area in zip(rows[1:3], result["counts_by_town_district"], strict=True):
        assert dict(zip(outcomes, line[4:-1], strict=True)) == {o: area["counts"].get(o, 0) for o in outcomes}
    assert dict(zip(outcomes, rows[3][4:-1], strict=True)) == result["counts_by_outcome"]

    as_csv = await svc.client.get(f"/v1/campaigns/{campaign['id']}/result.csv", headers=bureau)
    assert as_csv.status_code == 200 and as_csv.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert lines[0] == header
    assert [[int(x) for x in line[4:]] for line in lines[1:]] == [r[4:] for r in rows[1:]]

    anonymous = await svc.client.get(f"/v1/campaigns/{campaign['id']}/result.csv")
    assert anonymous.status_code == 401


def test_cells_a_spreadsheet_would_evaluate_are_neutralised():
    hostile = {
        "counts_by_outcome": {"unaccounted": 1, "=cmd|' /C calc'!A0": 2},
        "counts_by_town_district": [
            {
                "hukou_town": '=HYPERLINK("http://x")',
                "hukou_school_district": "+1",
                "counts": {"unaccounted": 1},
            },
            {"hukou_town": "@SUM(A1)", "hukou_school_district": "-2", "counts": {"=cmd|' /C calc'!A0": 2}},
        ],
    }
    header, lines = result_table(hostile, default_directory())
    cells = [c for line in lines for c in line if isinstance(c, str)]
    assert '\'=HYPERLINK("http://x")' in cells and "'+1" in cells and "'@SUM(A1)" in cells and "'-2" in cells
    assert not any(str(c).startswith(("=", "+", "-", "@")) for c in [*cells, *header])
    assert "'=cmd|' /C calc'!A0" in header
    assert lines[-1][4:] == [1, 2, 3]
