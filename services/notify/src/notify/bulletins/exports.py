"""Bulletin exports: Excel (openpyxl) and PDF with a chart (matplotlib → PNG, embedded by fpdf2),
both with Chinese labels in the bundled Noto Serif CJK SC font."""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
from fpdf import FPDF
from fpdf.enums import WrapMode
from fpdf.fonts import FontFace
from matplotlib import font_manager
from matplotlib import pyplot as plt
from openpyxl import Workbook
from openpyxl.styles import Font

from notify.documents.render import FONT_FAMILY, cjk_font_path

HEADINGS = FontFace(emphasis="", fill_color=(230, 230, 230))  # the CJK font has no bold face


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
    summary.append([view.title])
    summary["A1"].font = Font(bold=True, size=14)
    summary.append(["截至", view.as_of])
    summary.append(["在册适龄儿童", view.children_in_scope])
    summary.append(["核查任务总数", view.tasks_total])
    summary.append(["未完成核查任务", view.tasks_open])
    summary.append([])
    summary.append(["代码", "核查结果", "人数"])
    for code, label, count in view.outcomes:
        summary.append([code, label, count])
    by_town = book.create_sheet("分镇街")
    codes = [code for code, _, _ in view.outcomes]
    by_town.append(["镇街代码", "镇街", *[label for _, label, _ in view.outcomes], "合计"])
    for code, name, counts in view.towns:
        by_town.append([code, name, *[counts.get(c, 0) for c in codes], sum(counts.values())])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def chart_png(view: BulletinView) -> bytes:
    """Bars per town: children not in school (the figure the bulletin is about), with the count on top."""
    font = font_manager.FontProperties(fname=str(cjk_font_path()))
    names = [name for _, name, _ in view.towns]
    not_in_school = [counts.get("not_in_school", 0) for _, _, counts in view.towns]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=120)
    try:
        bars = ax.bar(range(len(names)), not_in_school, color="#e15759")
        ax.bar_label(bars)
        ax.set_title("各镇街未入学（辍学）人数", fontproperties=font)
        ax.set_ylabel("人数", fontproperties=font)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, fontproperties=font, rotation=30, ha="right")
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)


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


def rows_to_xlsx(title: str, rows: list[dict[str, object]]) -> bytes:
    """A one-sheet workbook of flat rows (scorecards)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    if rows:
        sheet.append(list(rows[0]))
        for row in rows:
            sheet.append(list(row.values()))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
