"""Spreadsheets people open: the row-level error report and the departments' templates (CSV and Excel).

Every cell that a spreadsheet would evaluate (``= + - @``, tab, carriage return at the start) is
neutralised with a leading apostrophe (``baoxue.spreadsheets``), so a hostile cell in a feed cannot run
in a reviewer's Excel.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from baoxue.spreadsheets import neutralise_text
from baoxue.text import storable
from registry.feeds.columns import CATEGORIES, DEPARTMENT_CATEGORIES, DEPARTMENTS, DISABILITY_TYPES, HEADERS
from registry.feeds.reasons import REASONS

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REPORT_HEADER = ("行号 row", "结果 outcome", "原因代码 reason codes", "说明 messages", *HEADERS)


def report_rows(rows: Iterable[tuple[int, str, Sequence[str], dict[str, str]]]) -> Iterable[list[str]]:
    """(row number, outcome, reason codes, original cells) → report lines, neutralised; a character no
    sheet takes (a control character kept by a batch staged before such cells were rejected) replaced."""
    fields = list(HEADERS.values())
    for number, outcome, codes, cells in rows:
        messages = "；".join(f"{REASONS[c][2]} ({REASONS[c][1]})" for c in codes if c in REASONS)
        yield [
            neutralise_text(storable(str(v)))
            for v in (number, outcome, ",".join(codes), messages, *(cells.get(f, "") for f in fields))
        ]


def to_csv(header: Sequence[str], lines: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(lines)
    return buffer.getvalue().encode("utf-8-sig")


TEXT_COLUMNS = ("身份证号", "监护人电话")
"""Digits that are not numbers: formatted as text (``@``) wherever a sheet has them, so that Excel keeps
what a clerk types (a number keeps 15 significant digits: an 18-digit ID number would lose its last ones)."""


def to_xlsx(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[str]]]]) -> bytes:
    """A workbook of (title, header, lines) sheets; the columns headed by one of ``TEXT_COLUMNS`` are
    formatted as text, the cells a clerk adds to them too."""
    book = Workbook(write_only=True)
    for title, header, lines in sheets:
        sheet = book.create_sheet(title)
        for index, name in enumerate(header, start=1):
            if name in TEXT_COLUMNS:
                column = sheet.column_dimensions[get_column_letter(index)]
                column.number_format, column.width = "@", 22
        sheet.append(list(header))
        for line in lines:
            sheet.append(list(line))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_notes(department: str) -> list[list[str]]:
    """The second sheet of a template: what the department may put in 类别 and the disability columns."""
    role, en, zh = DEPARTMENTS[department]
    lines = [["部门 department", f"{zh} ({en})", role], ["类别 categories (、分隔)", "", ""]]
    lines += [["", CATEGORIES[c][1], c] for c in sorted(DEPARTMENT_CATEGORIES[department])]
    if department == "dpf":
        lines += [["残疾类别 disability type", "", ""]] + [
            ["", zh_, code] for code, (_, zh_) in DISABILITY_TYPES.items()
        ]
        lines += [["残疾等级 disability grade", "一级/二级/三级/四级", "1-4"]]
    lines += [
        ["出生日期 birth date", "2016-05-02 / 2016/5/2 / 20160502", ""],
        [
            "身份证号 ID number",
            "18位，末位可为X；文本格式，勿改为数值 (a text column: a number keeps 15 digits)",
            "",
        ],
        ["监护人电话 guardian phone", "文本格式 (text)", ""],
    ]
    return lines
