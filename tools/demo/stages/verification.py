"""Enrollment stages: deferral/exemption applications, placements, the September verification and the
resolution of its tasks by the school districts, the November comparison and its frozen result."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from demo.api import BUREAU, Actor, ApiError, until_known
from demo.context import YEAR, Demo, district_actor, school_actor
from demo.truth import Person

CHILD_UNKNOWN = ("child_not_found", "student_not_found")
"""Enrollment learns children from the registry's events: right after the feeds it may not know them yet."""
DECIDED_ON = "2026-09-15"
RESOLVED_ON = "2026-10-12"
CONFIRMED_ON = "2026-10-15"
PLATFORM = Actor("provincial_platform", "370406")
PROVINCES = {"山东": "37", "江苏": "32", "浙江": "33", "上海": "31", "北京": "11"}
OUTCOME_OF_STATUS = {
    "deceased": "deceased",
    "moved_out": "moved_out",
    "duplicate": "duplicate_hukou",
    "missing": "unreachable",
}
SAME_OUTCOME = {
    "enrolled_local",
    "deferred",
    "exempted",
    "placed",
    "hukou_only",
    "abroad",
    "enrolled_without_xueji",
    "not_in_school",
    "unreachable",
}
EVIDENCE = {
    "enrolled_local": "到校核实：在本区学校就读，学籍号待补录",
    "enrolled_elsewhere": "电话核实：随父母在外地就读",
    "deferred": "已批准缓学",
    "exempted": "已批准免学",
    "placed": "已安置（特殊教育）",
    "deceased": "公安户籍注销（死亡）",
    "moved_out": "公安户籍迁出",
    "duplicate_hukou": "重复户籍，已由公安清理",
    "hukou_only": "入户核实：空挂户，无人居住",
    "abroad": "入户核实：随父母出国",
    "enrolled_without_xueji": "到校核实：在读无学籍",
    "not_in_school": "入户核实：未在校就读",
    "unreachable": "多次入户未见人",
    "id_error": "身份证号有误，待户籍更正",
}


def deferrals(demo: Demo) -> Counter[str]:
    """Parents' applications, filed with the school district, decided by the bureau (approved)."""
    done: Counter[str] = Counter()

    def one(app: Any) -> str:
        child_id = demo.child(app.person_id)
        if child_id is None:
            return "child_not_in_registry"
        body = {
            "child_id": child_id,
            "kind": app.kind,
            "reason": app.reason,
            "evidence": [app.evidence],
            "filed_on": app.applied_on,
        }
        # The school district files; a child whose hukou matched no district is outside every district's
        # jurisdiction (enrollment answers 404 as for a child it does not know), so the bureau files.
        actor = BUREAU if child_id in demo.child_without_district else district_actor(app.school_district)
        try:
            filed = until_known(
                lambda: demo.api.post("enrollment", "/deferral-applications", actor, json=body),
                codes=CHILD_UNKNOWN,
            )
            decision = {
                "approve": True,
                "on": DECIDED_ON,
                "valid_from": "2026-09-01",
                "valid_until": "2027-08-31",
            }
            demo.api.post(
                "enrollment", f"/deferral-applications/{filed['id']}/decision", BUREAU, json=decision
            )
            return f"{app.kind}_approved"
        except ApiError as exc:
            demo.problem("deferrals", f"{app.kind} refused: {exc.status} {exc.code}")
            return "refused"

    done.update(demo.api.parallel(one, demo.district.applications))
    return done


def placements(demo: Demo) -> Counter[str]:
    """Disabled children who cannot attend a regular class are placed by the receiving school."""
    students: dict[str, str] = demo.state.get("student_of_person", {})
    placed = [
        p
        for p in demo.district.people.values()
        if p.school_situation == "placed" and p.registry_status == "active"
    ]

    def one(person: Person) -> str:
        child_id, student_id = demo.child(person.person_id), students.get(person.person_id)
        if child_id is None or student_id is None:
            return "no_child_or_student_record"
        body = {
            "child_id": child_id,
            "mode": person.placement_mode,
            "receiving_school": person.school_code,
            "student_id": student_id,
            "teaching_plan": "个别化教育计划：生活适应、康复训练、语文、数学",
            "planned_sessions_per_term": 16 if person.placement_mode == "home_delivery" else 0,
            "starts_on": "2026-09-01",
        }
        try:
            until_known(
                lambda: demo.api.post(
                    "enrollment", "/placements", school_actor(person.school_code), json=body
                ),
                codes=CHILD_UNKNOWN,
            )
            return person.placement_mode
        except ApiError as exc:
            demo.problem("placements", f"placement refused: {exc.status} {exc.code}")
            return "refused"

    return Counter(demo.api.parallel(one, placed))


def open_campaign(demo: Demo, kind: str, as_of: str, deadline: str) -> dict[str, Any]:
    body = {"kind": kind, "year": YEAR, "as_of": as_of, "cutoff_date": f"{YEAR}-08-31", "deadline": deadline}
    campaign: dict[str, Any] = demo.api.post("enrollment", "/campaigns", BUREAU, json=body)
    return campaign


def run_campaign(
    demo: Demo, campaign_id: str, expected_in_scope: int, *, attempts: int = 20
) -> list[dict[str, Any]]:
    """Run the classification; re-run while enrollment's copy of the registry is still catching up
    (the children travel as events), until every school-age child the registry lists is in scope."""
    progress: list[dict[str, Any]] = []
    for attempt in range(attempts):
        started = demo.api.post("enrollment", f"/campaigns/{campaign_id}/runs", BUREAU)
        demo.api.wait_job("enrollment", started["job_id"], BUREAU)
        progress = demo.api.get("enrollment", f"/campaigns/{campaign_id}/progress", BUREAU)
        in_scope = sum(r["in_scope"] for r in progress)
        if in_scope >= expected_in_scope:
            return progress
        demo.say("verify", f"run {attempt + 1}: {in_scope}/{expected_in_scope} in scope; waiting for events")
        time.sleep(2)
    demo.problem("verify", f"in scope {sum(r['in_scope'] for r in progress)} < registry {expected_in_scope}")
    return progress


def _outcome(person: Person | None) -> str:
    if person is None:
        return "id_error"
    if person.registry_status in OUTCOME_OF_STATUS:
        return OUTCOME_OF_STATUS[person.registry_status]
    if person.school_situation == "enrolled_elsewhere":
        return "enrolled_elsewhere"
    return person.school_situation if person.school_situation in SAME_OUTCOME else "unreachable"


def _province(person: Person) -> str:
    for name, code in PROVINCES.items():
        if person.current_address.startswith(name):
            return code
    return "37"


def resolve_tasks(demo: Demo, campaign_id: str) -> Counter[str]:
    """Each school district records where each of its children really is (the ground truth)."""
    tasks = list(
        demo.api.pages(
            "enrollment", "/verification-tasks", BUREAU, params={"campaign_id": campaign_id, "state": "open"}
        )
    )

    def one(task: dict[str, Any]) -> str:
        person = demo.person(task["child_id"])
        outcome = _outcome(person)
        actor = district_actor(task["hukou_school_district"])
        body: dict[str, Any] = {"outcome": outcome, "evidence": EVIDENCE[outcome], "on": RESOLVED_ON}
        if outcome == "enrolled_elsewhere" and person is not None:
            body["enrolling_org"] = _province(person)
        try:
            demo.api.post("enrollment", f"/verification-tasks/{task['id']}/resolution", actor, json=body)
            if outcome == "enrolled_elsewhere" and person is not None:
                _confirm(demo, task["id"], body["enrolling_org"], actor)
        except ApiError as exc:
            demo.problem("verify", f"task {outcome} refused: {exc.status} {exc.code}")
            return "refused"
        return outcome

    return Counter(demo.api.parallel(one, tasks))


def _confirm(demo: Demo, task_id: str, province: str, district: Actor) -> None:
    """In Shandong the provincial platform's record confirms it. A school in another province has no
    identity in the district's directory, so its confirmation reaches us through the provincial
    platform's system account (``source: enrolling_org``)."""
    if province == "37":
        body = {"source": "provincial_platform", "on": CONFIRMED_ON}
        demo.api.post("enrollment", f"/verification-tasks/{task_id}/confirmation", district, json=body)
    else:
        body = {"source": "enrolling_org", "on": CONFIRMED_ON}
        demo.api.post("enrollment", f"/verification-tasks/{task_id}/confirmation", PLATFORM, json=body)


def freeze(demo: Demo, campaign_id: str) -> dict[str, Any]:
    result: dict[str, Any] = demo.api.post("enrollment", f"/campaigns/{campaign_id}/result", BUREAU)
    return result
