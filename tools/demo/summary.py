"""The year's summary: every figure read back from the services' APIs (never from the generator)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from demo.api import BUREAU, ApiError
from demo.context import YEAR, Demo
from demo.stages import census, registry, students
from demo.stages.casework import SEMESTER

PURPOSE_DOCUMENTS = "bulletin"


def collect(demo: Demo) -> dict[str, Any]:
    """Read the figures of each stage from the services."""
    api = demo.api
    out: dict[str, Any] = {"children_generated": len(demo.district.people)}
    out["registry"] = registry.registry_figures(demo)
    out["student_records"] = students.student_figures(demo)
    deferrals = Counter(
        f"{a['kind']}:{a['state']}" for a in api.pages("enrollment", "/deferral-applications", BUREAU)
    )
    out["deferral_applications"] = dict(deferrals)
    out["placements"] = demo.summary.get("placements_made", {})
    for key in ("september", "november"):
        cid = demo.state.get(key)
        if cid:
            out[f"{key}_campaign"] = {
                "campaign": api.get("enrollment", f"/campaigns/{cid}", BUREAU),
                "result": api.get("enrollment", f"/campaigns/{cid}/result", BUREAU),
            }
    out["verification_outcomes"] = (
        out.get("september_campaign", {}).get("result", {}).get("counts_by_outcome", {})
    )
    out["census"] = census.census_figures(demo)
    out["cases"] = _cases(demo)
    out["escalations"] = _escalations(demo)
    out["visits"] = api.get("casework", "/visits/coverage", BUREAU, params={"semester": SEMESTER})
    out["visits_total"] = {
        k: sum(r[k] for r in out["visits"])
        for k in ("students", "visited_at_least_once", "special_students", "special_quota_met", "owed")
    }
    out["notify"] = _notify(demo)
    out["actions_taken"] = demo.summary
    out["problems"] = demo.problems
    out["anomalies"] = demo.anomalies
    return out


def _cases(demo: Demo) -> dict[str, Any]:
    cases = list(demo.api.pages("casework", "/cases", BUREAU))
    reported = 0
    persuasions = 0
    for c in cases:
        persuasions += demo.api.count("casework", f"/cases/{c['id']}/persuasions", BUREAU)
        if c.get("reported_on"):
            reported += 1
    return {
        "opened": len(cases),
        "by_state": dict(Counter(c["state"] for c in cases)),
        "by_closure_reason": dict(Counter(c["closure_reason"] for c in cases if c["closure_reason"])),
        "by_reason": dict(Counter(c["reason"] or "unknown" for c in cases)),
        "by_opening_signal": dict(Counter(c["opened_signal"] for c in cases)),
        "reports_filed": reported,
        "persuasion_attempts": persuasions,
    }


def _escalations(demo: Demo) -> dict[str, Any]:
    ladders = list(demo.api.pages("notify", "/escalations", BUREAU))
    levels_visited: Counter[str] = Counter()
    for esc in ladders:
        detail = demo.api.get("notify", f"/escalations/{esc['id']}", BUREAU)
        for level in {s["level"] for s in detail["steps"]}:
            levels_visited[level] += 1
    return {
        "ladders": len(ladders),
        "current_level": dict(Counter(e["level"] for e in ladders)),
        "levels_visited": dict(levels_visited),
        "state": dict(Counter(e["state"] for e in ladders)),
    }


def _notify(demo: Demo) -> dict[str, Any]:
    api, files = demo.api, demo.out / "documents"
    files.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    bid = demo.state.get("bulletin_id")
    if bid:
        out["bulletin"] = api.get("notify", f"/bulletins/{bid}", BUREAU)
        for fmt in ("pdf", "xlsx"):
            path = files / f"bulletin-{YEAR}.{fmt}"
            path.write_bytes(api.call("notify", "GET", f"/bulletins/{bid}/{fmt}", BUREAU).content)
            out[f"bulletin_{fmt}"] = str(path)
    out["scorecards_town"] = api.get("notify", "/scorecards", BUREAU, params={"year": YEAR, "level": "town"})
    out["criticism_town"] = api.get(
        "notify", "/scorecards/criticism", BUREAU, params={"year": YEAR, "level": "town"}
    )
    samples: dict[str, Any] = {}
    kinds: Counter[str] = Counter()
    for doc in api.pages("notify", "/documents", BUREAU, params={"year": YEAR}):
        kinds[doc["kind"]] += 1
        if doc["kind"] in samples:
            continue
        path = files / f"{doc['kind']}-{doc['id']}.pdf"
        try:
            path.write_bytes(api.call("notify", "GET", f"/documents/{doc['id']}/pdf", BUREAU).content)
            samples[doc["kind"]] = {"number": doc["number"], "title": doc["title"], "pdf": str(path)}
        except ApiError as exc:
            demo.problem("documents", f"{doc['kind']} pdf refused: {exc.status} {exc.code}")
    out["documents_by_kind"] = dict(kinds)
    out["document_samples"] = samples
    return out


def show(result: dict[str, Any], path: Path, *, quiet: bool) -> None:
    """Print the headline figures and the verification outcome table."""
    if quiet:
        return
    reg = result["registry"]
    print("\n=== One statutory year: summary (read back from the services) ===")
    print(f"children registered (by status): {reg['children_by_status']}")
    print(
        f"school-age active children: {reg['children_school_age_active']}   review queue: {reg['review_queue_open']}"
    )
    worked = result["actions_taken"].get("review_queue")
    if worked:
        print(
            f"review queue worked by the bureau: {worked['decided']} decided {worked['decisions']}; open after: "
            f"{worked['remaining_open']}; children {worked['children_before']} → {worked['children_after']}"
        )
    print(f"student records: {result['student_records']}")
    print(f"deferral applications: {result['deferral_applications']}   placements: {result['placements']}")
    print("\nSeptember verification outcomes:")
    for outcome, n in sorted(result["verification_outcomes"].items(), key=lambda kv: -kv[1]):
        print(f"  {outcome:<24} {n:>7}")
    cen = result["census"]
    print(
        f"\nspecial-needs census {cen['semester']} (due {cen['due_on']}): {cen['completed']} of {cen['schools']} "
        f"schools completed, {cen['on_time']} on time, {cen['late']} late, {cen['missing']} missing; "
        f"{cen['students_marked']} students marked"
    )
    print(f"cases: {json.dumps(result['cases'], ensure_ascii=False)}")
    print(f"escalations: {json.dumps(result['escalations'], ensure_ascii=False)}")
    print(f"visits: {result['visits_total']}")
    notify = result["notify"]
    print(f"bulletin: {notify.get('bulletin_pdf')}  {notify.get('bulletin_xlsx')}")
    for kind, sample in notify.get("document_samples", {}).items():
        print(f"  document {kind:<20} {sample['number']}  {sample['pdf']}")
    scan = result.get("leak_scan", {})
    if "findings" in scan:
        print(
            f"leak scan: read {scan['read']}; plaintext ID numbers {scan['findings']['id_number']}, "
            f"phone numbers {scan['findings']['phone']}"
        )
    else:
        print(f"leak scan: {scan}")
    print(f"timings (s): {result['timings_seconds']}")
    if result["problems"]:
        print(f"\n{len(result['problems'])} calls refused (see summary.json → problems)")
    print(f"\nsummary written to {path}")
