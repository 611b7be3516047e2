"""Registry stages: the departments' March and September feeds, and the police's hukou clean-up."""

from __future__ import annotations

from collections import Counter
from typing import Any

from baoxue.pii.citizen_id import normalise_id_number
from baoxue.synth import DEPARTMENTS
from demo.api import BUREAU, DEPARTMENT_ACTORS, POLICE, ApiError
from demo.context import Demo

PURPOSE_MAP = "verification"  # the stated purpose of reading ID numbers (X-Access-Purpose)
CORRECTION_DATE = "2026-09-20"
CORRECTION_KINDS = {
    "deceased": "deceased",
    "moved_out": "moved_out",
    "duplicate": "duplicate",
    "missing": "missing",
}


def feeds(demo: Demo, seed: int) -> None:
    """Each department uploads its generated CSV for each period (as its own service account).

    The four departments of a period deliver at the same moment, as at the end of March and September;
    the registry merges their batches one after the other (on the embedded SQLite default each job waits
    for the single writer lock). The periods follow each other: a flag lapses against the period before.
    """
    api = demo.api

    def deliver(period: str, dept: str) -> dict[str, Any]:
        path = demo.district.feed_file(period, dept)
        actor = DEPARTMENT_ACTORS[dept]
        batch = api.post(
            "registry",
            f"/feeds/{dept}/{period}/uploads",
            actor,
            params={"client_batch_id": f"demo-{seed}-{dept}-{period}"},
            files={"file": (path.name, path.read_bytes(), "text/csv")},
        )
        if batch.get("job_id") and batch["status"] in ("queued", "running"):
            api.wait_job("registry", batch["job_id"], actor)
        return api.get("registry", f"/feeds/batches/{batch['id']}", actor)  # type: ignore[no-any-return]

    batches: list[dict[str, Any]] = []
    for period in demo.district.periods:
        delivered = api.parallel(lambda dept, period=period: deliver(period, dept), list(DEPARTMENTS))
        for dept, done in zip(DEPARTMENTS, delivered, strict=True):
            batches.append(done)
            demo.say(
                "feeds",
                f"{period} {dept:<8} rows {done['rows_total']:>6}  accepted {done['accepted']:>6}  "
                f"rejected {done['rejected']:>4}  new {done['children_registered']:>6}  "
                f"linked {done['linked']:>5}  review {done['review_items']:>4}",
            )
    demo.state["batch_ids"] = [b["id"] for b in batches]


def age_parts(low: int, high: int, parts: int, **params: Any) -> list[dict[str, Any]]:
    """Disjoint age bands covering ``low``..``high`` (full years), to read a long list in parts."""
    step = max(1, -(-(high - low + 1) // parts))
    return [{**params, "age_min": a, "age_max": min(a + step - 1, high)} for a in range(low, high + 1, step)]


def count_children(demo: Demo, low: int, high: int, **params: Any) -> int:
    """How many children the registry lists with these filters (the bands read concurrently)."""
    parts = demo.api.pages_split(
        "registry", "/children", BUREAU, age_parts(low, high, demo.api.workers, **params)
    )
    return sum(len(p) for p in parts)


def map_children(demo: Demo) -> int:
    """Learn the registry's child id of each person: the bureau lists the children (audited, purpose stated).

    All but duplicates first, then the duplicates (a person's surviving record wins), each list read in
    age bands concurrently."""
    mapped = 0
    for status in (None, "duplicate"):
        params: dict[str, Any] = {"status": status} if status else {}
        parts = demo.api.pages_split(
            "registry",
            "/children",
            BUREAU,
            age_parts(0, 30, demo.api.workers, **params),
            purpose=PURPOSE_MAP,
        )
        for child in (c for part in parts for c in part):
            person = demo.district.person_of_id(normalise_id_number(child["id_number"] or ""))
            if person is None:
                continue
            if person.person_id not in demo.child_of_person or child["status"] != "duplicate":
                demo.child_of_person[person.person_id] = child["id"]
            demo.person_of_child[child["id"]] = person.person_id
            if not child.get("hukou_school_district"):
                demo.child_without_district.add(child["id"])
            mapped += 1
    return mapped


def hukou_cleanup(demo: Demo) -> Counter[str]:
    """The police correct the hukou of children who died, moved out, are registered twice or are missing."""
    done: Counter[str] = Counter()
    todo = []
    for person in demo.district.people.values():
        kind = CORRECTION_KINDS.get(person.registry_status)
        child_id = demo.child(person.person_id)
        if kind is None or child_id is None:
            continue
        body: dict[str, Any] = {"kind": kind, "effective_date": CORRECTION_DATE}
        if kind == "duplicate":
            survivor = demo.child(person.duplicate_of)
            if survivor is None or survivor == child_id:
                done["already_linked"] += 1
                continue
            body["duplicate_of"] = survivor
        todo.append((child_id, body))

    def correct(item: tuple[str, dict[str, Any]]) -> str:
        child_id, body = item
        try:
            demo.api.post("registry", f"/children/{child_id}/hukou-corrections", POLICE, json=body)
            return body["kind"]
        except ApiError as exc:
            demo.problem("hukou", f"correction {body['kind']} refused: {exc.status} {exc.code}")
            return "refused"

    done.update(demo.api.parallel(correct, todo))
    return done


def registry_figures(demo: Demo) -> dict[str, Any]:
    """Children by status and source, counted from the registry's own list."""
    by_status: Counter[str] = Counter()
    by_source: Counter[str] = Counter()
    statuses = ("active", "deceased", "moved_out", "duplicate", "missing")
    parts = [p for status in statuses for p in age_parts(0, 30, 3, status=status)]
    for params, rows in zip(parts, demo.api.pages_split("registry", "/children", BUREAU, parts), strict=True):
        for child in rows:
            by_status[params["status"]] += 1
            for source in child["sources"]:
                by_source[source] += 1
    school_age_active = count_children(demo, 6, 14, status="active")
    batches = [
        demo.api.get("registry", f"/feeds/batches/{b}", BUREAU) for b in demo.state.get("batch_ids", [])
    ]
    review = demo.api.count("registry", "/review-items", BUREAU)
    return {
        "batches": [
            {
                k: b[k]
                for k in (
                    "department",
                    "period",
                    "rows_total",
                    "accepted",
                    "rejected",
                    "warnings",
                    "children_registered",
                    "linked",
                    "review_items",
                    "status",
                )
            }
            for b in batches
        ],
        "children_by_status": dict(by_status),
        "children_by_source": dict(by_source),
        "children_school_age_active": school_age_active,
        "review_queue_open": review,
    }
