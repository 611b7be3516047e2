"""Notify stages: the escalation ladder of the refusing families, the deadline sweep, the November
bulletin and the scorecards, and one sample of each document type."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from demo.api import BUREAU, JUSTICE, Actor, ApiError, eventually
from demo.context import YEAR, Demo

ACTIONS = {
    "L2_town_order": ("镇街已向监护人送达责令限期改正通知书", "限期届满仍未送学，提请司法局"),
    "L3_judicial": ("司法局已出具司法文书并送达", "仍拒不送学，依法追究法律责任"),
}
LEVELS = ("L1_school", "L2_town_order", "L3_judicial", "L4_legal_action")


def _acting(esc: dict[str, Any]) -> Actor:
    level = esc["level"]
    if level in {"L3_judicial", "L4_legal_action"}:
        return JUSTICE
    if level == "L2_town_order":
        return Actor("town", esc["acting_org"])
    return BUREAU


def ladder(demo: Demo) -> None:
    """Each refusal climbs: the town orders the parents (L2), the justice bureau issues judicial documents
    (L3), then legal action (L4). The deadline sweep is run for every day from the first escalation to
    today (reminders and lapses); the climb is by the acting organisations, because a sweep cannot run
    for a future date and the ladder's deadlines lie ahead of today."""
    cases = demo.state.get("escalated_cases", [])
    if not cases:
        return

    def ladders() -> list[dict[str, Any]] | None:
        found = [
            e
            for cid in cases
            for e in demo.api.pages(
                "notify", "/escalations", BUREAU, params={"case_id": cid, "state": "active"}
            )
            if e["level"] != "L1_school"
        ]
        return found if len({e["case_id"] for e in found}) == len(cases) else None

    escalations = eventually(ladders, what="notify to open a ladder for every escalated case", timeout=120)
    reached: Counter[str] = Counter()
    for esc in escalations:
        while esc["level"] in ACTIONS:
            action, decision = ACTIONS[esc["level"]]
            actor = _acting(esc)
            demo.api.post("notify", f"/escalations/{esc['id']}/actions", actor, json={"note": action})
            esc = demo.api.post("notify", f"/escalations/{esc['id']}/advance", actor, json={"note": decision})
        reached[esc["level"]] += 1
    demo.say("ladder", f"levels reached: {dict(reached)}")
    sweeps = sweep(demo, dt.date(YEAR, 10, 1))
    demo.say("ladder", f"deadline sweep over {sweeps['days']} days: {sweeps}")
    demo.summary["sweeps"] = sweeps


def sweep(demo: Demo, start: dt.date) -> dict[str, int]:
    """Run the sweep for each day from ``start`` to today, as the daily scheduler would have."""
    totals: Counter[str] = Counter()
    today = dt.datetime.now(dt.UTC).date()
    day = start
    while day <= today:
        try:
            result = demo.api.post("notify", "/deadlines/sweep", BUREAU, json={"today": day.isoformat()})
        except ApiError as exc:
            if exc.code == "sweep_date_in_future":
                break
            raise
        totals.update({k: result[k] for k in ("opened", "reminded", "lapsed", "advanced")})
        totals["days"] += 1
        day += dt.timedelta(days=1)
    return dict(totals)


def bulletin(demo: Demo) -> None:
    """Notify renders the bulletin from the frozen November result; the bureau publishes it."""
    campaign = demo.state["november"]

    def found() -> dict[str, Any] | None:
        for b in demo.api.pages("notify", "/bulletins", BUREAU, params={"year": YEAR}):
            if b["campaign_id"] == campaign:
                return b
        return None

    b = eventually(found, what="notify's bulletin of the November comparison", timeout=120)
    demo.api.post("notify", f"/bulletins/{b['id']}/publication", BUREAU)
    demo.state["bulletin_id"] = b["id"]
    demo.say("bulletin", f"bulletin {b['id']} published")
