"""The bureau works the registry's review queue after the feeds (``/review-items``).

A clerk with the paper file — the departments' forms, here the generator's truth — settles what the file
settles and leaves the rest open:

- ``link_candidate`` (two records that may be one child): each record is identified in the file from
  what the registry shows of it (ID number, name, birth date, sex, guardian, hukou address); the same
  child → accept (the registry merges them), two different children → reject; a record the file cannot
  tell apart from another child (twins, a sibling with the same noisy values) → left open.
- ``conflict`` (departments disagree on a value): accept the assertion whose value is the one in the file;
  none of them → left open.
- ``id_collision``, ``flag_lapsed``, ``address_unmatched``: left open. An ID collision needs the row's ID
  number, which the queue does not show (the batch's error report shows it masked to the bureau); the
  other two are decision-only in the registry (accepting changes nothing).

The stage reports decided / left open per kind and the registry's children before and after (read back).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from baoxue.pii.citizen_id import normalise_id_number
from demo.api import BUREAU, ApiError
from demo.context import Demo
from demo.stages.registry import PURPOSE_MAP, count_children
from demo.truth import District, Person

DECIDED_KINDS = ("link_candidate", "conflict")
IDENTIFY_MIN = 7
IDENTIFY_MARGIN = 3
TRUTH_VALUE = {
    "name": "name",
    "sex": "sex",
    "birth_date": "birth_date",
    "hukou_village": "hukou_village",
    "hukou_address": "hukou_address",
    "current_address": "current_address",
    "guardian_name": "guardian_name",
    "guardian_phone": "guardian_phone",
}


class PaperFile:
    """Who a registry record is, as the departments' paper forms tell: the person whose particulars
    agree best, when clearly better than any other."""

    def __init__(self, district: District) -> None:
        self.district = district
        self.by_name: dict[str, list[Person]] = {}
        self.by_birth: dict[str, list[Person]] = {}
        self.by_guardian: dict[str, list[Person]] = {}
        for p in district.people.values():
            self.by_name.setdefault(p.name, []).append(p)
            self.by_birth.setdefault(p.birth_date, []).append(p)
            self.by_guardian.setdefault(p.guardian_name, []).append(p)

    def identify(self, record: dict[str, Any]) -> Person | None:
        id_number = normalise_id_number(record.get("id_number") or "")
        candidates = {
            p.person_id: p
            for p in self.by_name.get(record.get("name") or "", [])
            + self.by_birth.get(record.get("birth_date") or "", [])
            + self.by_guardian.get(record.get("guardian_name") or "", [])
        }
        owner = self.district.person_of_id(id_number)
        if owner is not None:
            candidates[owner.person_id] = owner
        scored = sorted(
            ((self._score(p, record, id_number), p) for p in candidates.values()), key=lambda t: -t[0]
        )
        if not scored or scored[0][0] < IDENTIFY_MIN:
            return None
        if len(scored) > 1 and scored[0][0] - scored[1][0] < IDENTIFY_MARGIN:
            return None
        return scored[0][1]

    @staticmethod
    def _score(p: Person, record: dict[str, Any], id_number: str) -> int:
        points = 0
        if id_number and normalise_id_number(p.id_number) == id_number:
            points += 6
        points += 4 if record.get("name") == p.name else 0
        points += 3 if record.get("birth_date") == p.birth_date else 0
        points += 1 if record.get("sex") == p.sex else 0
        points += 2 if record.get("guardian_name") == p.guardian_name else 0
        points += 1 if record.get("hukou_address") == p.hukou_address else 0
        return points


def work_queue(demo: Demo) -> dict[str, Any]:
    """Decide what the paper file settles; returns the counts (the registry's, read back, and the decisions)."""
    api = demo.api
    children_before = _children(demo)
    items = list(api.pages("registry", "/review-items", BUREAU))
    paper = PaperFile(demo.district)
    details: dict[str, dict[str, Any]] = {}

    def detail(child_id: str) -> dict[str, Any]:
        if child_id not in details:
            details[child_id] = api.get("registry", f"/children/{child_id}", BUREAU, purpose=PURPOSE_MAP)
        return details[child_id]

    def decide(item: dict[str, Any]) -> str:
        try:
            if item["kind"] == "link_candidate":
                return _link(api, item, paper, detail)
            if item["kind"] == "conflict":
                return _conflict(api, item, demo.district, detail)
        except ApiError as exc:
            if exc.code == "review_already_decided":
                return "already_decided"  # an earlier merge settled it
            demo.problem("review", f"{item['kind']} decision refused: {exc.status} {exc.code}")
            return "refused"
        return "left_open"

    # Link candidates one after the other (a merge can settle or change another item), conflicts in parallel.
    links = [i for i in items if i["kind"] == "link_candidate"]
    others = [i for i in items if i["kind"] != "link_candidate"]
    outcomes = [decide(i) for i in links] + api.parallel(decide, others)
    decisions = Counter(f"{i['kind']}:{o}" for i, o in zip(links + others, outcomes, strict=True))
    remaining = Counter(i["kind"] for i in api.pages("registry", "/review-items", BUREAU))
    children_after = _children(demo)
    figures = {
        "items_before": dict(Counter(i["kind"] for i in items)),
        "decisions": dict(sorted(decisions.items())),
        "decided": sum(n for k, n in decisions.items() if k.split(":")[1] in ("accepted", "rejected")),
        "remaining_open": dict(remaining),
        "children_before": children_before,
        "children_after": children_after,
        "merged_by_review": children_before - children_after,
    }
    demo.say(
        "review",
        f"{figures['decided']} of {len(items)} review items decided {dict(decisions)}; "
        f"children {children_before} → {children_after}",
    )
    return figures


def _children(demo: Demo) -> int:
    """Children the registry lists that are not merged duplicates (any status but ``duplicate``)."""
    return sum(count_children(demo, 0, 30, status=s) for s in ("active", "deceased", "moved_out", "missing"))


def _link(api: Any, item: dict[str, Any], paper: PaperFile, detail: Any) -> str:
    one = paper.identify(detail(item["child_id"]))
    other = paper.identify(detail(item["other_child_id"]))
    if one is None or other is None:
        return "left_open"
    same = one.person_id == other.person_id
    api.post("registry", f"/review-items/{item['id']}/{'accept' if same else 'reject'}", BUREAU)
    return "accepted" if same else "rejected"


def _conflict(api: Any, item: dict[str, Any], district: District, detail: Any) -> str:
    child = detail(item["child_id"])
    field = TRUTH_VALUE.get(item["attribute"] or "")
    owner = district.person_of_id(normalise_id_number(child.get("id_number") or ""))
    if field is None or owner is None:
        return "left_open"
    true_value = getattr(owner, field, "")
    chosen = [
        a for a in child["provenance"] if a["attribute"] == item["attribute"] and a["value"] == true_value
    ]
    if not true_value or not chosen:
        return "left_open"
    api.post("registry", f"/review-items/{item['id']}/accept", BUREAU, json={"assertion_id": chosen[0]["id"]})
    return "accepted"
