"""The special-needs census of the autumn semester (特殊群体学生摸底, casework).

Within the census window (the semester's first two weeks; casework says the due date) every school marks
its special-group students — the enrolled pupils its own files show as registered-poor, disabled,
left-behind, orphaned, on low income, in extreme poverty or children of prisoners — and completes its
census; casework publishes ``CensusCompleted``. A realistic share of the schools (``LATE_SHARE``, at least
one) completes it a few days after the due date: casework flags them late. Which schools are late is
drawn from the seed (the generator's truth has no census).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

from demo.api import BUREAU, ApiError
from demo.context import Demo, school_actor

SEMESTER = "2026-autumn"
SPECIAL_GROUPS = (
    "registered_poor",
    "disabled",
    "left_behind",
    "orphan",
    "low_income",
    "extreme_poverty",
    "prisoner_child",
)
"""The categories of the special groups (the same as the visit rosters')."""
LATE_SHARE = 0.1
MARK_CHUNK = 5000  # students per call (the service's maximum)


def special_categories(categories: tuple[str, ...]) -> list[str]:
    return sorted(c for c in set(categories) if c in SPECIAL_GROUPS)


def marked_students(demo: Demo, enrolled: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """school → its enrolled special-group students as the school's files show them (export row → person)."""
    by_school: dict[str, list[dict[str, Any]]] = {}
    ids: list[str | None] = demo.state.get("student_ids", [])
    for student, sid in zip(demo.district.students, ids, strict=True):
        record = enrolled.get(sid or "")
        person = demo.district.people.get(student.person_id)
        if record is None or person is None:
            continue
        categories = special_categories(person.categories)
        if categories:
            by_school.setdefault(record["school_code"], []).append(
                {"student_id": record["id"], "child_id": record["child_id"], "categories": categories}
            )
    return by_school


def late_schools(seed: int, schools: list[str]) -> set[str]:
    """The schools that miss the window: ``LATE_SHARE`` of them (at least one), drawn from the seed."""
    if not schools:
        return set()
    k = max(1, round(len(schools) * LATE_SHARE))
    return set(random.Random(f"census-{seed}").sample(sorted(schools), k))  # noqa: S311 (a simulation)


def census(demo: Demo, seed: int) -> dict[str, Any]:
    """Every school marks its special-group students and completes the census, most within the window."""
    api = demo.api
    before = api.get("casework", f"/census/{SEMESTER}", BUREAU)
    due = dt.date.fromisoformat(before["due_on"])
    schools = [s["school_code"] for s in before["by_school"]]
    enrolled = {
        s["id"]: s for s in api.pages("enrollment", "/students", BUREAU, params={"status": "enrolled"})
    }
    by_school = marked_students(demo, enrolled)
    late = late_schools(seed, schools)
    rng = random.Random(f"census-days-{seed}")  # noqa: S311
    plan = [
        (
            code,
            due + dt.timedelta(days=rng.randint(3, 10))
            if code in late
            else due - dt.timedelta(days=rng.randint(0, 6)),
        )
        for code in schools
    ]

    def one(item: tuple[str, dt.date]) -> dict[str, Any] | None:
        code, on = item
        actor = school_actor(code)
        rows = by_school.get(code, [])
        try:
            for start in range(0, len(rows), MARK_CHUNK):
                body = {"students": rows[start : start + MARK_CHUNK]}
                api.post("casework", f"/census/{SEMESTER}/schools/{code}/students", actor, json=body)
            done: dict[str, Any] = api.post(
                "casework",
                f"/census/{SEMESTER}/schools/{code}/complete",
                actor,
                params={"completed_on": on.isoformat()},
            )
            return done
        except ApiError as exc:
            demo.problem("census", f"census of {code} refused: {exc.status} {exc.code}")
            return None

    completed = [c for c in api.parallel(one, plan) if c is not None]
    by_category: Counter[str] = Counter()
    for c in completed:
        by_category.update(c["counts_by_category"])
    filed = {
        "schools": len(schools),
        "completed": len(completed),
        "filed_late": sum(1 for c in completed if c["school_code"] in late),
        "students_marked": sum(len(rows) for rows in by_school.values()),
        "counts_by_category": dict(sorted(by_category.items())),
    }
    demo.say(
        "census",
        f"{len(completed)} of {len(schools)} schools completed the census (due {due}), "
        f"{filed['filed_late']} after it; {filed['students_marked']} special-group students marked",
    )
    return filed


def census_figures(demo: Demo) -> dict[str, Any]:
    """Completeness and lateness as casework reports them (``GET /census/{semester}``)."""
    got = demo.api.get("casework", f"/census/{SEMESTER}", BUREAU)
    return {
        "semester": got["semester"],
        "due_on": got["due_on"],
        "schools": got["schools"],
        "completed": got["completed"],
        "on_time": got["on_time"],
        "late": got["late"],
        "missing": got["missing"],
        "students_marked": sum(s["students_marked"] for s in got["by_school"]),
        "by_school": {
            s["school_code"]: {
                "students_marked": s["students_marked"],
                "completed_on": s["completed_on"],
                "late": s["late"],
            }
            for s in got["by_school"]
        },
    }
