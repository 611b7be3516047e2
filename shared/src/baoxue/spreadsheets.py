"""Cells of spreadsheets people open (CSV and Excel exports): formula injection neutralised.

A cell whose text starts with ``= + - @`` (or a tab or carriage return, which some spreadsheet programs
strip before evaluating) is taken as a formula by Excel, WPS and LibreOffice when the file is opened —
``=HYPERLINK(...)`` in a school's or a guardian's name would run in the reader's spreadsheet. Such text
gets a leading apostrophe, so it is shown as written and never evaluated. Numbers, dates and booleans
are left as they are (a numeric cell cannot hold a formula; ``-3`` stays the number -3).

Every export of the services goes through :func:`neutralise` (or :func:`neutralise_text` where the
export wants every cell as text), cell by cell, headers included.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""The first characters that make a spreadsheet evaluate a cell (OWASP's CSV injection list)."""

Cell = str | int | float | bool | dt.date | dt.datetime


def neutralise_text(value: object) -> str:
    """The value as text, with a leading apostrophe when a spreadsheet would evaluate it; None is ""."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def neutralise(value: object) -> Cell:
    """One cell: numbers, booleans, dates unchanged (typed cells in Excel); anything else as
    :func:`neutralise_text`."""
    if isinstance(value, int | float | bool | dt.date | dt.datetime):
        return value
    return neutralise_text(value)


def neutralise_row(values: Iterable[object]) -> list[Cell]:
    return [neutralise(v) for v in values]


def to_csv(rows: Iterable[Sequence[object]]) -> bytes:
    """CSV in UTF-8 with a byte order mark (so Excel reads the Chinese), every cell neutralised; None is
    an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(neutralise_row(row))
    return buffer.getvalue().encode("utf-8-sig")
