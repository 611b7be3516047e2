"""The frozen result of a campaign as a spreadsheet (CSV and Excel) for the bureau's report.

One line per town and school district of the hukou place, one column per outcome (Chinese label and
code), a total column and a total line. Figures come from the frozen result only, so the export equals
``GET /v1/campaigns/{id}/result``. Every cell a spreadsheet would evaluate (``= + - @``, tab, carriage
return at the start) is neutralised with a leading apostrophe (`baoxue.spreadsheets`, as every export).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl import Workbook

from baoxue.orgs.directory import OrgDirectory
from baoxue.spreadsheets import Cell, neutralise
from enrollment.codes import CODE_LISTS

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LABELS = CODE_LISTS["verification_outcome"]
AREA_HEADER = ("镇街代码 town", "镇街 town name", "学区代码 school district", "学区 school district name")


def _areas(result: dict[str, Any]) -> list[tuple[str, str, dict[str, int]]]:
    """(town, school district, counts) lines; a result frozen before the district breakdown gives towns."""
    if "counts_by_town_district" in result:
        return [
            (a["hukou_town"], a["hukou_school_district"], a["counts"])
            for a in result["counts_by_town_district"]
        ]
    return [(town, "", counts) for town, counts in sorted(result["counts_by_town"].items())]


def _name(directory: OrgDirectory, code: str) -> str:
    org = directory.get(code) if code else None
    return org.name_zh if org else ""


def result_table(result: dict[str, Any], directory: OrgDirectory) -> tuple[list[str], list[list[Cell]]]:
    """The header and the lines (neutralised) of a frozen result."""
    known = list(LABELS)
    present = set(result["counts_by_outcome"])
    outcomes = [o for o in known if o in present] + sorted(present - set(known))
    labels = (f"{LABELS[o][1]} {o}" if o in LABELS else o for o in outcomes)
    header = [str(neutralise(h)) for h in (*AREA_HEADER, *labels, "合计 total")]
    lines: list[list[Cell]] = []
    for town, district, counts in _areas(result):
        figures = [int(counts.get(o, 0)) for o in outcomes]
        cells: list[object] = [town, _name(directory, town), district, _name(directory, district), *figures]
        lines.append([neutralise(c) for c in [*cells, sum(figures)]])
    totals = [int(result["counts_by_outcome"].get(o, 0)) for o in outcomes]
    lines.append([neutralise(c) for c in ["合计 total", "", "", "", *totals, sum(totals)]])
    return header, lines


def to_csv(header: Sequence[str], lines: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(lines)
    return buffer.getvalue().encode("utf-8-sig")  # Excel opens UTF-8 with a BOM as UTF-8


def to_xlsx(title: str, header: Sequence[str], lines: Iterable[Sequence[object]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title)
    sheet.append(list(header))
    for line in lines:
        sheet.append(list(line))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
