"""Dropout report exports: Excel (per town, per school; every cell neutralised against formula injection)
and PDF with a chart, in Chinese (the bulletin's font and layout)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from fpdf import FPDF
from fpdf.enums import WrapMode
from openpyxl import Workbook
from openpyxl.styles import Font

from notify.bulletins.exports import HEADINGS, append
from notify.documents.chart import chart
from notify.documents.render import FONT_FAMILY, cjk_font_path

LABELS = ("疑似辍学", "确认辍学", "已劝返", "提请镇街督办", "复学后再次辍学")


@dataclass(frozen=True)
class ReportView:
    title: str
    window: str
    final: bool
    version: int
    rows: list[tuple[str, str, str | None, str | None, list[int]]]
    """(town code, town name, school code or None, school name or None, figures in LABELS order)"""

    def by_town(self) -> list[tuple[str, str, list[int]]]:
        towns: dict[str, tuple[str, list[int]]] = {}
        for town, town_name, _, _, figures in self.rows:
            _, total = towns.setdefault(town, (town_name, [0] * len(LABELS)))
            for i, n in enumerate(figures):
                total[i] += n
        return [(code, name, total) for code, (name, total) in sorted(towns.items())]

    def totals(self) -> list[int]:
        return [sum(row[4][i] for row in self.rows) for i in range(len(LABELS))]

    @property
    def status(self) -> str:
        return f"第{self.version}版" + ("" if self.final else "（期中预览，非正式报送）")


def to_xlsx(view: ReportView) -> bytes:
    book = Workbook()
    towns = book.active
    assert towns is not None
    towns.title = "分镇街"
    append(towns, [view.title])
    towns["A1"].font = Font(bold=True, size=14)
    append(towns, ["统计区间", view.window, view.status])
    append(towns, [])
    append(towns, ["镇街代码", "镇街", *LABELS])
    for code, name, figures in view.by_town():
        append(towns, [code, name, *figures])
    append(towns, ["", "合计", *view.totals()])
    schools = book.create_sheet("分学校")
    append(schools, ["镇街", "学校代码", "学校", *LABELS])
    for _, town_name, school, school_name, figures in view.rows:
        append(schools, [town_name, school or "", school_name or "（无在籍学校）", *figures])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def chart_png(view: ReportView) -> bytes:
    towns = view.by_town()
    names = [name for _, name, _ in towns]
    with chart(title="各镇街确认辍学与劝返人数") as drawn:
        ax = drawn.axes
        width = 0.4
        positions = range(len(names))
        confirmed = ax.bar(
            [p - width / 2 for p in positions], [f[1] for _, _, f in towns], width, color="#e15759"
        )
        returned = ax.bar(
            [p + width / 2 for p in positions], [f[2] for _, _, f in towns], width, color="#59a14f"
        )
        ax.bar_label(confirmed)
        ax.bar_label(returned)
        ax.legend([confirmed, returned], ["确认辍学", "已劝返"], prop=drawn.font)
        ax.set_xticks(list(positions))
        ax.set_xticklabels(names, fontproperties=drawn.font, rotation=30, ha="right")
    return drawn.png


def to_pdf(view: ReportView) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.add_font(FONT_FAMILY, fname=str(cjk_font_path()))
    pdf.set_font(FONT_FAMILY, size=16)
    pdf.multi_cell(0, 10, view.title, align="C", new_x="LMARGIN", new_y="NEXT", wrapmode=WrapMode.CHAR)
    pdf.set_font(FONT_FAMILY, size=11)
    totals = view.totals()
    pdf.multi_cell(
        0,
        7,
        f"统计区间：{view.window}（{view.status}）。全区疑似辍学 {totals[0]} 人，确认辍学 {totals[1]} 人，"
        f"已劝返 {totals[2]} 人，提请镇街督办 {totals[3]} 人，复学后再次辍学 {totals[4]} 人。",
        new_x="LMARGIN",
        new_y="NEXT",
        wrapmode=WrapMode.CHAR,
    )
    with pdf.table(
        col_widths=(34, 24, 24, 22, 30, 36), text_align="CENTER", headings_style=HEADINGS
    ) as table:
        table.row(["镇街", *LABELS])
        for _, name, figures in view.by_town():
            table.row([name, *[str(n) for n in figures]])
        table.row(["合计", *[str(n) for n in totals]])
    pdf.ln(4)
    pdf.image(io.BytesIO(chart_png(view)), w=170)
    pdf.add_page()
    with pdf.table(
        col_widths=(26, 44, 20, 20, 18, 24, 28), text_align="CENTER", headings_style=HEADINGS
    ) as table:
        table.row(["镇街", "学校", *LABELS])
        for _, town_name, _, school_name, figures in view.rows:
            table.row([town_name, school_name or "（无在籍学校）", *[str(n) for n in figures]])
    return bytes(pdf.output())
