"""The review stage's clerk (``demo.stages.review.PaperFile``) identifies a record from what the registry
shows of it. Checked on every row of a generated district's feeds, noise included (homophones, missing
and mistyped ID numbers, wrong sex, wrong birth dates, abbreviated addresses): the row's true person
(``truth/feed_rows.csv``) or nobody, never another child — a link candidate is decided only when both of
its records are identified, so a wrong identification would merge two children. No service involved."""

from __future__ import annotations

import csv
import datetime as dt
import re
import sys
from pathlib import Path

from baoxue.synth import DEPARTMENTS, SynthConfig, generate_district

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

from demo.stages.review import PaperFile
from demo.truth import load_district

_SEX = {"男": "M", "女": "F"}


def _birth(text: str) -> str:
    parts = [int(p) for p in re.split(r"[-/.]", text)] if not text.isdigit() else None
    if parts is None:
        parts = [int(text[:4]), int(text[4:6]), int(text[6:8])]
    return dt.date(*parts).isoformat()


def _record(row: dict[str, str]) -> dict[str, str]:
    """What the registry shows of a record made from ``row`` (values normalised as it stores them)."""
    return {
        "id_number": re.sub(
            r"\s", "", row["身份证号"].translate({c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)})
        ),
        "name": re.sub(r"\s", "", row["姓名"]),
        "birth_date": _birth(row["出生日期"].strip()),
        "sex": _SEX.get(row["性别"].strip(), ""),
        "guardian_name": row["监护人姓名"],
        "hukou_address": row["户籍地址"],
    }


def test_the_paper_file_names_the_rows_person_or_nobody(tmp_path: Path) -> None:
    generate_district(SynthConfig(children=3000, seed=5), tmp_path)
    district = load_district(tmp_path, ("2026-03", "2026-09"))
    paper = PaperFile(district)
    truth: dict[tuple[str, str, int], tuple[str, str]] = {}
    with (tmp_path / "truth" / "feed_rows.csv").open(encoding="utf-8-sig", newline="") as fh:
        for r in csv.DictReader(fh):
            truth[r["period"], r["dept"], int(r["row_number"])] = (r["person_id"], r["noise"])
    right = wrong = unknown = noisy_right = 0
    for period in district.periods:
        for dept in DEPARTMENTS:
            path = district.feed_file(period, dept)
            encoding = "gbk" if dept == "civil" else "utf-8-sig"
            with path.open(encoding=encoding, newline="") as fh:
                for n, row in enumerate(csv.DictReader(fh), start=1):
                    person_id, noise = truth[period, dept, n]
                    try:
                        record = _record(row)
                    except (ValueError, TypeError):
                        continue  # a row the registry rejects makes no record
                    found = paper.identify(record)
                    if found is None:
                        unknown += 1
                    elif found.person_id == person_id:
                        right += 1
                        noisy_right += bool(noise)
                    else:
                        wrong += 1
    assert wrong == 0
    assert right > 0.97 * (right + unknown) and noisy_right > 100, (right, unknown, noisy_right)
