"""Rendering an issued document as HTML (Jinja2, autoescaped) and as PDF (fpdf2 + Noto Serif CJK SC).

The CJK font comes from the ``mplfonts`` package (Noto Serif CJK SC, SIL Open Font License), so a fresh
machine gets it from the project's own dependencies; fpdf2 embeds the subset of glyphs used.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import WrapMode
from jinja2 import Environment

FONT_FAMILY = "NotoSerifSC"


@cache
def cjk_font_path() -> Path:
    """The bundled Noto Serif CJK SC font file (raises if the package is incomplete)."""
    # Found, not imported: importing mplfonts imports matplotlib (a second or more at every start).
    spec = importlib.util.find_spec("mplfonts")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0] if locations else "") / "fonts" / "NotoSerifCJKsc-Regular.otf"
    if not locations or not path.is_file():
        raise FileNotFoundError("NotoSerifCJKsc-Regular.otf is missing from the mplfonts package")
    return path


@dataclass(frozen=True)
class RenderedDocument:
    title: str
    number: str
    issuer_name: str
    issued_on: str
    paragraphs: list[str]
    version: int
    supersedes_number: str | None = None


_HTML = Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{ d.title }} {{ d.number }}</title>
<style>body{font-family:"Noto Serif CJK SC","SimSun",serif;max-width:42em;margin:2em auto;line-height:1.8}
h1{text-align:center;font-size:1.6em}.no{text-align:center}.sign{text-align:right;margin-top:3em}</style>
</head><body>
<h1>{{ d.title }}</h1>
<p class="no">{{ d.number }}{% if d.version > 1 %}（第{{ d.version }}版，更正{{ d.supersedes_number }}）{% endif %}</p>
{% for p in d.paragraphs %}<p>{{ p }}</p>
{% endfor %}<p class="sign">{{ d.issuer_name }}<br>{{ d.issued_on }}</p>
</body></html>
"""
)


def to_html(document: RenderedDocument) -> str:
    return _HTML.render(d=document)


def to_pdf(document: RenderedDocument) -> bytes:
    """An A4 PDF with the CJK font embedded (subset)."""
    pdf = FPDF(format="A4")
    pdf.set_margins(25, 25, 25)
    pdf.add_page()
    pdf.add_font(FONT_FAMILY, fname=str(cjk_font_path()))
    pdf.set_font(FONT_FAMILY, size=20)
    pdf.cell(0, 14, document.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=11)
    number = document.number
    if document.version > 1:
        number += f"（第{document.version}版，更正{document.supersedes_number}）"
    pdf.cell(0, 8, number, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font(FONT_FAMILY, size=13)
    for paragraph in document.paragraphs:
        pdf.multi_cell(0, 8, paragraph, new_x="LMARGIN", new_y="NEXT", wrapmode=WrapMode.CHAR)
        pdf.ln(2)
    pdf.ln(12)
    pdf.cell(0, 8, document.issuer_name, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 8, document.issued_on, align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
