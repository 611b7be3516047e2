"""Bulletin and scorecard exports: Excel (openpyxl), CSV and PDF (with a chart: matplotlib → PNG,
embedded by fpdf2), with Chinese labels in the bundled Noto Serif CJK SC font. Every spreadsheet cell goes
through ``baoxue.spreadsheets.neutralise`` (a name starting with ``=`` is not evaluated)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from fpdf import FPDF
from fpdf.enums import WrapMode
from fpdf.fonts import FontFace
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from baoxue.spreadsheets import neutralise_row, to_csv
from notify.documents.chart import chart
from notify.documents.render import FONT_FAMILY, cjk_font_path

HEADINGS = FontFace(emphasis="", fill_color=(230, 230, 230))  # the CJK font has no bold face


def append(sheet: Worksheet, values: list[object]) -> None:
    """One row of a sheet, every cell neutralised against formula injection."""
    sheet.append(neutralise_row(values))


@dataclass(frozen=True)
class BulletinView:
    """A bulletin with the labels resolved: outcome code → label, town code → name."""

    title: str
    as_of: str
    children_in_scope: int
    outcomes: list[tuple[str, str, int]]
    towns: list[tuple[str, str, dict[str, int]]]
    tasks_total: int
    tasks_open: int


def to_xlsx(view: BulletinView) -> bytes:
    book = Workbook()
    summary = book.active
    assert summary is not None
    summary.title = "汇总"
    append(summary, [view.title])
    summary["A1"].font = Font(bold=True, size=14)
    append(summary, ["截至", view.as_of])
    append(summary, ["在册适龄儿童", view.children_in_scope])
    append(summary, ["核查任务总数", view.tasks_total])
    append(summary, ["未完成核查任务", view.tasks_open])
    append(summary, [])
    append(summary, ["代码", "核查结果", "人数"])
    for code, label, count in view.outcomes:
        append(summary, [code, label, count])
    by_town = book.create_sheet("分镇街")
    codes = [code for code, _, _ in view.outcomes]
    append(by_town, ["镇街代码", "镇街", *[label for _, label, _ in view.outcomes], "合计"])
    for code, name, counts in view.towns:
        append(by_town, [code, name, *[counts.get(c, 0) for c in codes], sum(counts.values())])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def chart_png(view: BulletinView) -> bytes:
    """Bars per town: children not in school (the figure the bulletin is about), with the count on top."""
    names = [name for _, name, _ in view.towns]
    not_in_school = [counts.get("not_in_school", 0) for _, _, counts in view.towns]
    with chart(title="各镇街未入学（辍学）人数") as drawn:
        ax = drawn.axes
        ax.bar_label(ax.bar(range(len(names)), not_in_school, color="#e15759"))
        ax.set_ylabel("人数", fontproperties=drawn.font)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, fontproperties=drawn.font, rotation=30, ha="right")
    return drawn.png


def to_pdf(view: BulletinView) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.add_font(FONT_FAMILY, fname=str(cjk_font_path()))
    pdf.set_font(FONT_FAMILY, size=16)
    pdf.multi_cell(0, 10, view.title, align="C", new_x="LMARGIN", new_y="NEXT", wrapmode=WrapMode.CHAR)
    pdf.set_font(FONT_FAMILY, size=11)
    pdf.multi_cell(
        0,
        7,
        f"截至{view.as_of}，全区在册适龄儿童 {view.children_in_scope} 人；核查任务 {view.tasks_total} 项，"
        f"未完成 {view.tasks_open} 项。核查结果如下：",
        new_x="LMARGIN",
        new_y="NEXT",
        wrapmode=WrapMode.CHAR,
    )
    with pdf.table(col_widths=(60, 30), text_align=("LEFT", "RIGHT"), headings_style=HEADINGS) as table:
        table.row(["核查结果", "人数"])
        for _, label, count in view.outcomes:
            table.row([label, str(count)])
    pdf.ln(4)
    pdf.image(io.BytesIO(chart_png(view)), w=170)
    pdf.add_page()
    with pdf.table(col_widths=(40, 25, 25, 25, 25), text_align="CENTER", headings_style=HEADINGS) as table:
        table.row(["镇街", "本地在读", "外地就读", "未入学", "合计"])
        for _, name, counts in view.towns:
            table.row(
                [
                    name,
                    *[
                        str(counts.get(c, 0))
                        for c in ("enrolled_local", "enrolled_elsewhere", "not_in_school")
                    ],
                    str(sum(counts.values())),
                ]
            )
    return bytes(pdf.output())


SCORECARD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("org", "单位代码"),
    ("name_zh", "单位"),
    ("verification_tasks", "核查任务数"),
    ("verification_completion", "核查完成率"),
    ("dropouts", "辍学人数"),
    ("returned", "劝返人数"),
    ("return_rate", "劝返率"),
    ("reports_due", "应报告数"),
    ("report_timeliness", "报告及时率"),
    ("census_due", "应普查数"),
    ("census_timeliness", "普查及时率"),
    ("visits", "家访次数"),
    ("students_visited", "家访学生数"),
    ("roster_students", "花名册学生数"),
    ("roster_students_visited", "花名册已家访学生数"),
    ("visit_coverage", "家访覆盖率"),
    ("special_visits_due", "特殊群体应家访次数"),
    ("special_visits_made", "特殊群体已家访次数"),
    ("special_coverage", "特殊群体家访完成率"),
    ("visited_without_roster", "无花名册学期家访学生数"),
    ("lapsed", "逾期事项数"),
)
RATIOS = {
    "verification_completion",
    "return_rate",
    "report_timeliness",
    "census_timeliness",
    "visit_coverage",
    "special_coverage",
}
ROSTER_FIELDS = {
    "roster_students",
    "roster_students_visited",
    "visit_coverage",
    "special_visits_due",
    "special_visits_made",
    "special_coverage",
}
NO_ROSTER = "无花名册"
"""What a coverage cell says when casework published no roster: unknown, never 0 or 100 %."""
NOT_APPLICABLE = "—"


def scorecard_cell(row: dict[str, Any], key: str) -> object:
    """A scorecard value for a spreadsheet: a missing coverage figure reads 无花名册 (no roster) or — (the
    roster lists nobody, or no special-group student); another missing ratio is empty."""
    value = row.get(key)
    if value is None and key in ROSTER_FIELDS:
        return NO_ROSTER if row.get("roster_students") is None else NOT_APPLICABLE
    return "" if value is None else value


def scorecard_table(rows: list[dict[str, Any]]) -> list[list[object]]:
    """The header (Chinese and the JSON field) and a line per organisation."""
    header: list[object] = [f"{zh} {key}" for key, zh in SCORECARD_COLUMNS]
    return [header, *[[scorecard_cell(row, key) for key, _ in SCORECARD_COLUMNS] for row in rows]]


def scorecards_xlsx(title: str, rows: list[dict[str, Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    for line in scorecard_table(rows):
        append(sheet, line)
    for index, (key, _) in enumerate(SCORECARD_COLUMNS, start=1):
        if key in RATIOS:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                if isinstance(cell.value, float):
                    cell.number_format = "0.0%"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def scorecards_csv(rows: list[dict[str, Any]]) -> bytes:
    return to_csv(scorecard_table(rows))


def _percent(part: int | None, whole: int | None, ratio: float | None, *, roster: bool) -> str:
    if not roster:
        return NO_ROSTER
    if ratio is None:
        return NOT_APPLICABLE
    return f"{ratio:.1%}（{part}/{whole}）"


def scorecards_pdf(title: str, rows: list[dict[str, Any]]) -> bytes:
    """The scorecards on landscape A4: completion, dropouts and returns, timeliness, visit coverage."""
    pdf = FPDF(format="A4", orientation="L")
    pdf.set_margins(12, 15, 12)
    pdf.add_page()
    pdf.add_font(FONT_FAMILY, fname=str(cjk_font_path()))
    pdf.set_font(FONT_FAMILY, size=16)
    pdf.multi_cell(0, 10, title, align="C", new_x="LMARGIN", new_y="NEXT", wrapmode=WrapMode.CHAR)
    pdf.set_font(FONT_FAMILY, size=9)
    pdf.multi_cell(
        0,
        6,
        "家访覆盖率 = 花名册内已家访学生数 / 学期花名册学生数；特殊群体家访完成率 = 已完成定额家访次数 / "
        f"应家访次数。“{NO_ROSTER}”表示尚未收到学校的学期花名册，覆盖情况未知。",
        new_x="LMARGIN",
        new_y="NEXT",
        wrapmode=WrapMode.CHAR,
    )
    pdf.ln(2)
    widths = (58, 22, 26, 22, 22, 22, 44, 44, 13)
    with pdf.table(col_widths=widths, text_align="CENTER", headings_style=HEADINGS) as table:
        table.row(
            [
                "单位",
                "核查完成率",
                "辍学/劝返",
                "报告及时率",
                "普查及时率",
                "家访次数",
                "家访覆盖率",
                "特殊群体家访完成率",
                "逾期",
            ]
        )
        for row in rows:
            roster = row.get("roster_students") is not None
            table.row(
                [
                    row.get("name_zh") or row["org"],
                    _ratio_text(row["verification_completion"]),
                    f"{row['dropouts']}/{row['returned']}",
                    _ratio_text(row["report_timeliness"]),
                    _ratio_text(row["census_timeliness"]),
                    str(row["visits"]),
                    _percent(
                        row.get("roster_students_visited"),
                        row.get("roster_students"),
                        row.get("visit_coverage"),
                        roster=roster,
                    ),
                    _percent(
                        row.get("special_visits_made"),
                        row.get("special_visits_due"),
                        row.get("special_coverage"),
                        roster=roster,
                    ),
                    str(row["lapsed"]),
                ]
            )
    return bytes(pdf.output())


def _ratio_text(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"
