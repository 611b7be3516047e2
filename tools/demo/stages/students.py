"""Student records (学籍): the schools register their students; the provincial platform is imported.

The local export (``students/xueji.csv``) is what the schools hold: each school registers its records
through ``POST /v1/students`` and records the status the export shows (休学, 辍学). The platform simulator
is loaded with the same records plus the records other Shandong counties hold of our children who
study there, and enrollment imports it (a job) so that "enrolled elsewhere" can be confirmed from it.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from baoxue.pii.citizen_id import normalise_id_number
from demo.api import BUREAU, ApiError
from demo.context import Demo, school_actor
from demo.stack import ProvincialPlatform
from demo.truth import Student

TERM_START = "2026-09-01"
DROPOUT_ON = "2026-09-10"
BATCH_SIZE = 1000
"""Records per ``POST /students/batch`` (the service takes up to 5,000)."""
SHANDONG_SCHOOL_ELSEWHERE = "37048100101001"  # a school in 滕州市 (outside Shanting): the platform's record


def _skipped(student: Student) -> str | None:
    """Why a school does not register this record of the export (None: it does)."""
    if not student.id_number or student.status in ("transferred_out", "deceased"):
        return "not_registered_" + ("no_id" if not student.id_number else student.status)
    return None


def _body(student: Student) -> dict[str, Any]:
    return {
        "student_number": student.student_number,
        "id_number": student.id_number,
        "school_code": student.school_code,
        "grade": student.grade,
        "enrolled_on": TERM_START,
    }


def _has_batch_endpoint(demo: Demo) -> bool:
    """Whether enrollment offers ``POST /v1/students/batch`` (bulk 学籍 registration)."""
    return ("post", "/v1/students/batch") in demo.api.operations("enrollment")


def _register_batches(demo: Demo) -> list[tuple[str, str | None]]:
    """Each school registers its roll through the batch endpoint (schools in parallel, chunks of
    ``BATCH_SIZE``); returns (outcome, student id) per record of the export, in its order."""
    results: list[tuple[str, str | None]] = [("", None)] * len(demo.district.students)
    by_school: dict[str, list[int]] = {}
    for n, student in enumerate(demo.district.students):
        skipped = _skipped(student)
        if skipped:
            results[n] = (skipped, None)
        else:
            by_school.setdefault(student.school_code, []).append(n)
    chunks = [
        (code, rows[start : start + BATCH_SIZE])
        for code, rows in sorted(by_school.items())
        for start in range(0, len(rows), BATCH_SIZE)
    ]

    def one(chunk: tuple[str, list[int]]) -> None:
        code, rows = chunk
        records = [_body(demo.district.students[n]) for n in rows]
        answer = demo.api.post("enrollment", "/students/batch", school_actor(code), json={"records": records})
        for outcome in answer["results"]:
            n = rows[outcome["index"]]
            if outcome["outcome"] == "created":
                results[n] = (demo.district.students[n].status, outcome["id"])
            else:
                demo.problem("students", f"registration refused: {outcome['status']} {outcome['code']}")
                results[n] = ("refused", None)

    demo.api.parallel(one, chunks)
    return results


def _register(demo: Demo, student: Student) -> tuple[str, str | None]:
    """One school registers one record; returns (outcome, student id)."""
    skipped = _skipped(student)
    if skipped:
        return (skipped, None)
    body = _body(student)
    try:
        created = demo.api.post("enrollment", "/students", school_actor(student.school_code), json=body)
    except ApiError as exc:
        demo.problem("students", f"registration refused: {exc.status} {exc.code}")
        return ("refused", None)
    return (student.status, created["id"])


def _record_status(demo: Demo, student: Student, sid: str) -> None:
    """The status the export shows: 休学 or 辍学 (a dropout raises a suspected-dropout signal)."""
    actor = school_actor(student.school_code)
    person = demo.district.person_of_id(normalise_id_number(student.id_number))
    try:
        if student.status == "suspended":
            body = {"starts_on": TERM_START, "until": "2027-06-30", "reason": "illness"}
            demo.api.post("enrollment", f"/students/{sid}/suspension", actor, json=body)
        elif student.status == "dropped_out":
            reason = person.dropout_reason if person and person.dropout_reason else "other"
            body = {"on": DROPOUT_ON, "reason": reason}
            demo.api.post("enrollment", f"/students/{sid}/dropout", actor, json=body)
    except ApiError as exc:
        demo.problem("students", f"status {student.status} refused: {exc.status} {exc.code}")


def _wait_linked(demo: Demo, expected: set[str], *, settle: float = 20.0, timeout: float = 600.0) -> int:
    """Wait until enrollment has linked the records of children the registry holds to those children;
    returns how many stayed unlinked (the count stopped falling for ``settle`` seconds).

    Enrollment learns children from the registry's events; a record registered before its child arrived
    is linked when the child does. A dropout recorded before that would raise a signal without a child
    id, and casework would open a case it cannot tie to the child (reported), so the statuses wait.
    """
    started = last_change = time.monotonic()
    previous = -1
    while True:
        linked = sum(
            1
            for s in demo.api.pages("enrollment", "/students", BUREAU)
            if s["child_id"] and s["id"] in expected
        )
        missing = len(expected) - linked
        now = time.monotonic()
        if missing != previous:
            previous, last_change = missing, now
        if missing == 0 or now - last_change > settle or now - started > timeout:
            return missing
        time.sleep(2)


def register_students(demo: Demo) -> Counter[str]:
    """Every school registers its records (in parallel, as many schools do), then their statuses."""
    t0 = time.monotonic()
    if demo.state.get("student_batch") and _has_batch_endpoint(demo):
        results = _register_batches(demo)
        how = f"batches of up to {BATCH_SIZE}"
    else:
        results = demo.api.parallel(lambda s: _register(demo, s), demo.district.students)
        how = "one POST each"
    demo.lap("students.register", t0, f"{len(results)} records ({how}) in")
    student_of_person: dict[str, str] = {}
    for student, (_, sid) in zip(demo.district.students, results, strict=True):
        person = demo.district.person_of_id(normalise_id_number(student.id_number))
        if sid and person:
            student_of_person[person.person_id] = sid
    demo.state["student_of_person"] = student_of_person
    demo.state["student_ids"] = [sid for _, sid in results]  # per row of the export
    demo.state["student_school"] = {
        sid: s.school_code for s, (_, sid) in zip(demo.district.students, results, strict=True) if sid
    }
    t0 = time.monotonic()
    unlinked = _wait_linked(demo, {sid for pid, sid in student_of_person.items() if demo.child(pid)})
    demo.lap("students.wait_linked", t0, "enrollment linked the records to its children in")
    if unlinked:
        demo.anomaly("students", f"{unlinked} 学籍 of children the registry holds stayed unlinked to them")
    with_status = [
        (s, sid)
        for s, (_, sid) in zip(demo.district.students, results, strict=True)
        if sid and s.status != "enrolled"
    ]
    t0 = time.monotonic()
    demo.api.parallel(lambda item: _record_status(demo, *item), with_status)
    demo.lap("students.statuses", t0, f"{len(with_status)} 休学/辍学 recorded in")
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
    statuses = ["enrolled", "suspended", "dropped_out"]
    parts = demo.api.pages_split("enrollment", "/students", BUREAU, [{"status": s} for s in statuses])
    return {status: len(rows) for status, rows in zip(statuses, parts, strict=True)}
