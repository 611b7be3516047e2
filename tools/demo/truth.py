"""The generated district as the actors know it: who each child really is and what really happened.

Only used to decide what each actor does (the police know who died; a school district knows where a
child studies) and, in the end-to-end test, to check the outcome. Never a source of summary figures.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from baoxue.pii.citizen_id import normalise_id_number
from baoxue.synth import DEPARTMENTS


@dataclass(frozen=True)
class Person:
    person_id: str
    id_number: str
    birth_date: str
    hukou_town: str
    current_address: str
    categories: tuple[str, ...]
    registry_status: str
    school_situation: str
    school_code: str
    placement_mode: str
    dropout_reason: str
    duplicate_of: str
    name: str = ""
    sex: str = ""
    hukou_village: str = ""
    hukou_address: str = ""
    guardian_name: str = ""
    guardian_phone: str = ""


@dataclass(frozen=True)
class Student:
    student_number: str
    id_number: str
    school_code: str
    grade: int
    status: str
    person_id: str = ""
    """who the record really is (the school's paper file: ``truth/xueji_rows.csv``)"""


@dataclass(frozen=True)
class Application:
    person_id: str
    kind: str
    reason: str
    evidence: str
    applied_on: str
    school_district: str


@dataclass
class District:
    root: Path
    periods: tuple[str, ...]
    people: dict[str, Person] = field(default_factory=dict)
    by_id_number: dict[str, str] = field(default_factory=dict)
    students: list[Student] = field(default_factory=list)
    applications: list[Application] = field(default_factory=list)
    fed_persons: set[str] = field(default_factory=set)
    """Persons mentioned by at least one feed row of any period."""

    def feed_file(self, period: str, department: str) -> Path:
        return self.root / "feeds" / period / f"{department}.csv"

    def person_of_id(self, id_number: str | None) -> Person | None:
        if not id_number:
            return None
        pid = self.by_id_number.get(id_number.upper())
        return self.people.get(pid) if pid else None

    def situations(self) -> Counter[str]:
        return Counter(p.school_situation for p in self.people.values() if p.registry_status == "active")


def load_district(root: Path, periods: tuple[str, ...]) -> District:
    """Read the generator's output folder."""
    district = District(root=root, periods=periods)
    with (root / "truth" / "children.csv").open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            person = Person(
                person_id=row["person_id"],
                id_number=row["id_number"],
                birth_date=row["birth_date"],
                hukou_town=row["hukou_town"],
                current_address=row["current_address"],
                categories=tuple(c for c in row["categories"].split(";") if c),
                registry_status=row["registry_status"],
                school_situation=row["school_situation"],
                school_code=row["school_code"],
                placement_mode=row["placement_mode"],
                dropout_reason=row["dropout_reason"],
                duplicate_of=row["duplicate_of"],
                name=row["name"],
                sex=row["sex"],
                hukou_village=row["hukou_village"],
                hukou_address=row["hukou_address"],
                guardian_name=row["guardian_name"],
                guardian_phone=row["guardian_phone"],
            )
            district.people[person.person_id] = person
            district.by_id_number[normalise_id_number(person.id_number)] = person.person_id
    with (root / "truth" / "xueji_rows.csv").open(encoding="utf-8-sig", newline="") as fh:
        person_of_row = {int(r["row_number"]): r["person_id"] for r in csv.DictReader(fh)}
    with (root / "students" / "xueji.csv").open(encoding="utf-8-sig", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=1):
            district.students.append(
                Student(
                    student_number=row["student_number"],
                    id_number=row["id_number"],
                    school_code=row["school_code"],
                    grade=int(row["grade"]),
                    status=row["status"],
                    person_id=person_of_row.get(n, ""),
                )
            )
    with (root / "deferrals.csv").open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            district.applications.append(
                Application(
                    person_id=row["person_id"],
                    kind=row["kind"],
                    reason=row["reason"],
                    evidence=row["evidence"],
                    applied_on=row["applied_on"],
                    school_district=row["school_district"],
                )
            )
    with (root / "truth" / "feed_rows.csv").open(encoding="utf-8-sig", newline="") as fh:
        district.fed_persons = {row["person_id"] for row in csv.DictReader(fh) if row["dept"] in DEPARTMENTS}
    return district
