"""Casework stages: dropout cases (confirmed, persuaded, reported, returned and closed, or escalated when
the guardians refuse), and the autumn semester's home visits."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import Counter
from typing import Any

from baoxue.orgs import default_directory
from demo.api import BUREAU, Actor, ApiError, eventually
from demo.context import YEAR, Demo, district_actor, school_actor
from demo.truth import Person

HIDDEN_FOUND_ON = "2026-10-08"
CONFIRMED_ON = "2026-10-13"
PERSUADED_ON = "2026-10-15"
RETURNED_ON = "2026-10-26"
REFUSAL_REASONS = ("guardian_refusal", "illegal_schooling")
SEMESTER = "2026-autumn"
CLOSURE_WAIT = 180.0
"""Seconds to wait for casework to learn (from enrollment's events) that the child is enrolled again."""
VISIT_ON = "2026-11-10"


def _actor(case: dict[str, Any]) -> Actor:
    if case.get("school_code"):
        return school_actor(case["school_code"])
    return district_actor(case["hukou_school_district"])


def dropouts(demo: Demo) -> list[Person]:
    """The children who really are out of school (active hukou, known to the registry)."""
    return [
        p
        for p in demo.district.people.values()
        if p.school_situation == "not_in_school" and p.registry_status == "active" and demo.child(p.person_id)
    ]


def report_hidden_dropouts(demo: Demo) -> int:
    """Schools find the 'hidden dropouts' (a 学籍 still says enrolled) by their absence and record it."""
    students: dict[str, str] = demo.state.get("student_of_person", {})
    enrolled = demo.api.pages("enrollment", "/students", BUREAU, params={"status": "enrolled"})
    enrolled_ids = {s["id"] for s in enrolled}
    hidden = [(p, students[p.person_id]) for p in dropouts(demo) if students.get(p.person_id) in enrolled_ids]

    def one(item: tuple[Person, str]) -> int:
        person, sid = item
        actor = school_actor(demo.state["student_school"][sid])
        body = {"on": HIDDEN_FOUND_ON, "reason": person.dropout_reason or "other"}
        demo.api.post("enrollment", f"/students/{sid}/dropout", actor, json=body)
        return 1

    return sum(demo.api.parallel(one, hidden))


def play(demo: Demo) -> None:
    """Wait for the cases the signals open, then each school works its cases."""
    hidden = report_hidden_dropouts(demo)
    demo.say("cases", f"schools reported {hidden} hidden dropouts (enrolled on paper, absent)")
    expected = {demo.child(p.person_id) for p in dropouts(demo)}

    def opened() -> list[dict[str, Any]] | None:
        cases = list(demo.api.pages("casework", "/cases", BUREAU))
        seen = {c["child_id"] for c in cases}
        return cases if expected <= seen else None

    try:
        cases = eventually(opened, what="a case for every dropout", timeout=180)
    except TimeoutError:
        cases = list(demo.api.pages("casework", "/cases", BUREAU))
        missing = len(expected - {c["child_id"] for c in cases})
        demo.problem("cases", f"after 180 s casework has no case for {missing} children out of school")
    demo.say("cases", f"{len(cases)} cases opened from dropout signals")
    refusers = {c["id"] for c in cases if _refuses(demo, c)}
    if not refusers and cases:
        refusers = {cases[0]["id"]}  # the notice's ladder must be shown even in a tiny district
    worked = demo.api.parallel(lambda c: _work(demo, c, c["id"] in refusers), cases)
    to_close = [(c, _actor(c)) for c, outcome in zip(cases, worked, strict=True) if outcome == "returned"]
    demo.say("cases", f"{len(to_close)} children back at school; closing their cases (销号)")
    closed = _close_all(demo, to_close)
    outcomes = Counter(o for o in worked if o != "returned")
    outcomes["returned_and_closed"] += len(closed)
    if len(closed) < len(to_close):
        outcomes["returned_not_closed"] += len(to_close) - len(closed)
    demo.summary["case_work"] = dict(outcomes)
    demo.say("cases", f"worked: {dict(outcomes)}")
    demo.state["escalated_cases"] = sorted(refusers)


def _person(demo: Demo, case: dict[str, Any]) -> Person | None:
    """The generated person of a case: by the registry's child, else (a pupil the departments' feeds
    never listed, so enrollment has no child for the 学籍) by the case's student record."""
    person = demo.person(case["child_id"])
    if person is None and case.get("student_id"):
        students: dict[str, str] = demo.state.get("student_of_person", {})
        pid = next((p for p, sid in students.items() if sid == case["student_id"]), None)
        person = demo.district.people.get(pid) if pid else None
    return person


def _refuses(demo: Demo, case: dict[str, Any]) -> bool:
    person = _person(demo, case)
    return person is not None and person.dropout_reason in REFUSAL_REASONS


def _work(demo: Demo, case: dict[str, Any], refuses: bool) -> str:
    """Confirm, persuade, report; then bring the child back or ask for escalation."""
    api, cid, actor = demo.api, case["id"], _actor(case)
    person = _person(demo, case)
    reason = (person.dropout_reason if person else "") or "other"
    try:
        if case["state"] == "suspected":
            body = {
                "to": "confirmed",
                "on": CONFIRMED_ON,
                "reason": reason,
                "responsible_person": "校长（第一责任人）",
            }
            api.post("casework", f"/cases/{cid}/transitions", actor, json=body)
        api.post(
            "casework", f"/cases/{cid}/transitions", actor, json={"to": "persuading", "on": PERSUADED_ON}
        )
        api.post(
            "casework",
            f"/cases/{cid}/persuasions",
            actor,
            json={
                "attempted_on": PERSUADED_ON,
                "by": "班主任",
                "form": "home_visit",
                "outcome": "refused" if refuses else "agreed_to_return",
                "notes": "入户宣讲义务教育法，了解辍学原因",
                "next_step": "镇街约谈" if refuses else "下周一返校",
            },
        )
        api.post(
            "casework",
            f"/cases/{cid}/report",
            actor,
            json={
                "basic_info": "适龄儿童，已确认辍学",
                "reason": reason,
                "measures": "班主任入户劝返，学校领导约谈家长",
                "result": "家长拒绝送学" if refuses else "同意返校",
            },
        )
        if refuses:
            return _escalate(demo, cid, actor)
        return _bring_back(demo, case, actor, person)
    except ApiError as exc:
        demo.problem("cases", f"case step refused: {exc.status} {exc.code}")
        return "refused"


def _escalate(demo: Demo, cid: str, actor: Actor) -> str:
    body = {
        "to": "escalated",
        "on": "2026-10-28",
        "note": "屡劝不返",
        "evidence": [
            {"kind": "persuasion_record", "description": "两次入户劝返记录"},
            {"kind": "written_refusal", "description": "监护人书面拒绝"},
        ],
    }
    demo.api.post("casework", f"/cases/{cid}/transitions", actor, json=body)
    return "escalated"


def _bring_back(demo: Demo, case: dict[str, Any], actor: Actor, person: Person | None) -> str:
    """The child is enrolled again in enrollment; the school then marks the case returned, confirms 20
    days of attendance and writes the care plan. The case is closed later (:func:`_close_all`)."""
    api, cid = demo.api, case["id"]
    students: dict[str, str] = demo.state.get("student_of_person", {})
    sid = students.get(person.person_id) if person else None
    school = _return_school(case, person)
    if sid:
        api.post(
            "enrollment",
            f"/students/{sid}/resumption",
            school_actor(demo.state["student_school"][sid]),
            json={"on": RETURNED_ON},
        )
    elif person is not None and school:
        body = {
            "student_number": "G" + person.id_number,
            "id_number": person.id_number,
            "school_code": school,
            "grade": _grade(person),
            "enrolled_on": RETURNED_ON,
        }
        created = api.post("enrollment", "/students", school_actor(school), json=body)
        students[person.person_id] = created["id"]
        demo.state["student_school"][created["id"]] = school
    api.post("casework", f"/cases/{cid}/transitions", actor, json={"to": "returned", "on": RETURNED_ON})
    api.post(
        "casework",
        f"/cases/{cid}/attendance",
        actor,
        json={"from_date": RETURNED_ON, "to_date": "2026-11-24", "days_attended": 21},
    )
    api.put(
        "casework",
        f"/cases/{cid}/care-plan",
        actor,
        json={
            "academic_help": "每周两次课后辅导",
            "counselling": "心理老师每两周谈话一次",
            "mentor": "王老师",
        },
    )
    return "returned"


def _grade(person: Person) -> int:
    """The grade a child of this age attends (6 on 31 August: grade 1)."""
    born = dt.date.fromisoformat(person.birth_date)
    cutoff = dt.date(YEAR, 8, 31)
    age = cutoff.year - born.year - ((cutoff.month, cutoff.day) < (born.month, born.day))
    return min(max(age - 5, 1), 9)


def _return_school(case: dict[str, Any], person: Person | None) -> str | None:
    """Where a returning child is enrolled: the case's or the child's school; a child who never had one
    (found by the verification, out of school) goes to a school of the hukou's school district (or town,
    or the district) that teaches the child's grade."""
    if person is None:
        return case.get("school_code") or None
    if case.get("school_code") or person.school_code:
        return str(case.get("school_code") or person.school_code)
    kinds = ("primary", "nine_year") if _grade(person) <= 6 else ("junior", "nine_year")
    directory = default_directory()
    for scope in (case.get("hukou_school_district"), person.hukou_town, directory.district_code):
        if not scope:
            continue
        schools = sorted(s.code for s in directory.schools(within=scope) if s.school_type in kinds)
        if schools:
            return schools[0]
    return None


def _close_all(demo: Demo, cases: list[tuple[dict[str, Any], Actor]]) -> set[str]:
    """Close (销号) every case whose child is back: casework accepts it once it has learnt from
    enrollment's events that the 学籍 is active again, so every pending closure is retried in rounds
    until all are closed or ``CLOSURE_WAIT`` has passed (one deadline for all, not one per case)."""
    body = {"to": "closed", "on": "2026-11-25", "closure_reason": "returned"}

    def close(item: tuple[dict[str, Any], Actor]) -> str:
        case, actor = item
        try:
            demo.api.post("casework", f"/cases/{case['id']}/transitions", actor, json=body)
            return "closed"
        except ApiError as exc:
            if exc.code in ("no_active_student_record", "student_record_not_active", "not_enrolled"):
                return "not_yet"
            demo.problem("cases", f"closure refused: {exc.status} {exc.code}")
            return "refused"

    closed: set[str] = set()
    pending = list(cases)
    deadline = time.monotonic() + CLOSURE_WAIT
    while pending:
        answers = demo.api.parallel(close, pending)
        closed |= {str(c["id"]) for (c, _), a in zip(pending, answers, strict=True) if a == "closed"}
        pending = [item for item, a in zip(pending, answers, strict=True) if a == "not_yet"]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    if pending:
        demo.problem(
            "cases",
            f"closure refused for {CLOSURE_WAIT:.0f} s for {len(pending)} cases: casework shows no "
            "active 学籍 after the resumption",
        )
    return closed


def visits(demo: Demo) -> None:
    """Every school puts its autumn roster and its teachers record one home visit per student (batches,
    as the mobile app syncs a day's visits); special groups get a second visit.

    Runs alongside the enrollment and casework stages that follow the 学籍 stage (it only needs the
    enrolled records); :func:`visits_top_up` brings the rosters up to date at the end of the term."""
    _sync_visits(demo, "visits")


def visits_top_up(demo: Demo) -> None:
    """At the end of the term each school puts its roster again where its enrolled students changed
    since (dropouts who stay out leave it, returned children with a new 学籍 join it) and syncs the visits
    of the students who joined."""
    _sync_visits(demo, "visits_top_up")


def _sync_visits(demo: Demo, stage: str) -> None:
    t0 = time.monotonic()
    students = list(demo.api.pages("enrollment", "/students", BUREAU, params={"status": "enrolled"}))
    demo.lap(f"{stage}.list_students", t0, f"{len(students)} enrolled students listed in")
    by_school: dict[str, list[dict[str, Any]]] = {}
    for s in students:
        by_school.setdefault(s["school_code"], []).append(s)
    special = _special_children(demo)
    rosters: dict[str, set[str]] = demo.state.setdefault("rosters", {})
    visited: set[str] = demo.state.setdefault("visited_students", set())
    changed = [
        (code, rows)
        for code, rows in sorted(by_school.items())
        if {r["id"] for r in rows} != rosters.get(code)
    ]
    changed += [(code, []) for code in sorted(rosters) if code not in by_school]

    def school(item: tuple[str, list[dict[str, Any]]]) -> Counter[str]:
        code, rows = item
        actor = school_actor(code)
        roster = [
            {
                "student_id": r["id"],
                "child_id": r["child_id"],
                "categories": special.get(r["child_id"] or "", []),
            }
            for r in rows
        ]
        t0 = time.monotonic()
        demo.api.call("casework", "PUT", f"/rosters/{code}/{SEMESTER}", actor, json={"students": roster})
        rosters[code] = {r["student_id"] for r in roster}
        tally: Counter[str] = Counter()
        tally["roster_ms"] = round((time.monotonic() - t0) * 1000)
        visits = []
        for r in roster:
            if r["student_id"] in visited:
                continue
            times = 2 if r["categories"] else 1
            for n in range(times):
                visits.append(
                    {
                        "id": str(uuid.uuid4()),
                        "student_id": r["student_id"],
                        "school_code": code,
                        "teacher": f"t-{code[-3:]}-{n}",
                        "visited_on": VISIT_ON,
                        "form": "home_visit",
                        "participants": ["班主任", "家长"],
                    }
                )
        t0 = time.monotonic()
        for start in range(0, len(visits), 200):
            chunk = visits[start : start + 200]
            result = demo.api.post("casework", "/visits/batch", actor, json={"visits": chunk})
            tally.update(
                created=result["created"], duplicates=result["duplicates"], rejected=result["rejected"]
            )
            visited.update(v["student_id"] for v in chunk)
        tally["batches_ms"] = round((time.monotonic() - t0) * 1000)
        return tally

    total: Counter[str] = Counter()
    t0 = time.monotonic()
    for tally in demo.api.parallel(school, changed):
        total.update(tally)
    demo.lap(
        f"{stage}.sync",
        t0,
        f"rosters {total.pop('roster_ms', 0) / 1000:.1f}s and visit batches "
        f"{total.pop('batches_ms', 0) / 1000:.1f}s (summed over schools); {len(changed)} schools in",
    )
    synced: Counter[str] = Counter(demo.summary.get("visit_sync", {}))
    synced.update(total)
    demo.summary["visit_sync"] = dict(synced)
    demo.say(stage, f"{len(changed)} of {len(by_school)} schools' rosters put, visits synced: {dict(total)}")


def _special_children(demo: Demo) -> dict[str, list[str]]:
    special_codes = {
        "registered_poor",
        "disabled",
        "left_behind",
        "orphan",
        "low_income",
        "extreme_poverty",
        "prisoner_child",
    }
    out: dict[str, list[str]] = {}
    for person in demo.district.people.values():
        cats = [c for c in person.categories if c in special_codes]
        child = demo.child(person.person_id)
        if cats and child:
            out[child] = cats
    return out
