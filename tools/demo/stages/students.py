"""Student records (学籍): the schools register their students; the provincial platform is imported.

The local export (``students/xueji.csv``) is what the schools hold: each school registers its records
through ``POST /v1/students`` and records the status the export shows (休学, 辍学). The platform simulator
is loaded with the same records plus the records other Shandong counties hold of our children who
study there, and enrollment imports it (a job) so that "enrolled elsewhere" can be confirmed from it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from baoxue.pii.citizen_id import normalise_id_number
from demo.api import BUREAU, ApiError
from demo.context import Demo, school_actor
from demo.stack import ProvincialPlatform
from demo.truth import Student

TERM_START = "2026-09-01"
DROPOUT_ON = "2026-09-10"
SHANDONG_SCHOOL_ELSEWHERE = "37048100101001"  # a school in 滕州市 (outside Shanting): the platform's record


def _register(demo: Demo, student: Student) -> tuple[str, str | None]:
    """One school registers one record and the status it shows; returns (outcome, student id)."""
    if not student.id_number or student.status in ("transferred_out", "deceased"):
        return ("not_registered_" + ("no_id" if not student.id_number else student.status), None)
    actor = school_actor(student.school_code)
    body = {
        "student_number": student.student_number,
        "id_number": student.id_number,
        "school_code": student.school_code,
        "grade": student.grade,
        "enrolled_on": TERM_START,
    }
    try:
        created = demo.api.post("enrollment", "/students", actor, json=body)
    except ApiError as exc:
        demo.problem("students", f"registration refused: {exc.status} {exc.code}")
        return ("refused", None)
    sid = created["id"]
    person = demo.district.person_of_id(normalise_id_number(student.id_number))
    try:
        if student.status == "suspended":
            demo.api.post(
                "enrollment",
                f"/students/{sid}/suspension",
                actor,
                json={"starts_on": TERM_START, "until": "2027-06-30", "reason": "illness"},
            )
        elif student.status == "dropped_out":
            reason = person.dropout_reason if person and person.dropout_reason else "other"
            demo.api.post(
                "enrollment", f"/students/{sid}/dropout", actor, json={"on": DROPOUT_ON, "reason": reason}
            )
    except ApiError as exc:
        demo.problem("students", f"status {student.status} refused: {exc.status} {exc.code}")
    return (student.status, sid)


def register_students(demo: Demo) -> Counter[str]:
    """Every school registers its records (in parallel, as many schools do)."""
    results = demo.api.parallel(lambda s: _register(demo, s), demo.district.students)
    student_of_person: dict[str, str] = {}
    for student, (_, sid) in zip(demo.district.students, results, strict=True):
        person = demo.district.person_of_id(normalise_id_number(student.id_number))
        if sid and person:
            student_of_person[person.person_id] = sid
    demo.state["student_of_person"] = student_of_person
    demo.state["student_school"] = {
        sid: s.school_code for s, (_, sid) in zip(demo.district.students, results, strict=True) if sid
    }
    return Counter(outcome for outcome, _ in results)


def platform_records(demo: Demo) -> list[dict[str, Any]]:
    """What the provincial platform holds: our schools' records, and other Shandong counties' records of
    our children who study there."""
    records = [
        {
            "record_id": f"R{n:08d}",
            "student_number": s.student_number,
            "id_number": s.id_number,
            "school_code": s.school_code,
            "status": s.status,
        }
        for n, s in enumerate(demo.district.students, 1)
        if s.id_number
    ]
    for person in demo.district.people.values():
        if person.school_situation == "enrolled_elsewhere" and person.current_address.startswith("山东省"):
            records.append(
                {
                    "record_id": f"X{person.person_id}",
                    "student_number": "G" + person.id_number,
                    "id_number": person.id_number,
                    "school_code": SHANDONG_SCHOOL_ELSEWHERE,
                    "status": "enrolled",
                }
            )
    return records


def provincial_import(demo: Demo, platform: ProvincialPlatform | None) -> dict[str, Any]:
    """Load the platform simulator, then enrollment imports from it (a job run by the bureau)."""
    if platform is not None:
        platform.seed(platform_records(demo))
    started = demo.api.post("enrollment", "/provincial-sync/imports", BUREAU)
    job = demo.api.wait_job("enrollment", started["job_id"], BUREAU)
    counts: dict[str, Any] = job.get("counts") or {}
    return counts


def student_figures(demo: Demo) -> dict[str, int]:
    """Student records by status, counted from enrollment's list."""
    out: dict[str, int] = {}
    for status in ("enrolled", "suspended", "dropped_out"):
        out[status] = demo.api.count("enrollment", "/students", BUREAU, params={"status": status})
    return out
