"""Bulletins from frozen campaign results, their publication, and the scorecards and criticism list."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.contracts.enrollment import CampaignCompleted
from baoxue.db import utcnow
from baoxue.errors import Conflict, NotFound
from baoxue.service import ServiceContext
from notify.bulletins import repository
from notify.bulletins.exports import BulletinView
from notify.bulletins.models import Bulletin
from notify.codes import VERIFICATION_OUTCOMES
from notify.deadlines.service import meet_deadline
from notify.delivery.inbox import Post, post_messages


async def record_campaign(
    *, session: AsyncSession, ctx: ServiceContext, data: CampaignCompleted, on: dt.date
) -> bool:
    """Keep a frozen campaign result exactly as published (one row per result version); the
    September verification closes the bureau's verification deadline, the November comparison its
    bulletin deadline. True when the result was new. A version older than one already held (delivered
    late, or replayed) is superseded: no bulletin is drafted from it and the bureau is not told."""
    latest = await repository.latest_version(session, data.campaign_id)
    if latest is not None and latest > data.result_version:
        return False
    new = await repository.insert_bulletin(
        session,
        {
            "id": str(uuid.uuid4()),
            "campaign_id": data.campaign_id,
            "kind": data.kind,
            "year": data.year,
            "as_of": data.as_of,
            "result_version": data.result_version,
            "children_in_scope": data.children_in_scope,
            "counts_by_outcome": json.dumps(data.counts_by_outcome, sort_keys=True),
            "counts_by_town": json.dumps(data.counts_by_town, sort_keys=True),
            "tasks_total": data.tasks_total,
            "tasks_open": data.tasks_open,
            "received_at": utcnow(),
        },
    )
    if not new:
        return False
    bureau = ctx.directory.by_role("bureau").code
    kind, period = (
        ("verification", f"{data.year}-09")
        if data.kind == "september_verification"
        else ("bulletin", f"{data.year}-11")
    )
    await meet_deadline(session=session, kind=kind, subject_id=period, org=bureau, on=on)
    await post_messages(
        session,
        [
            Post(
                bureau,
                "bulletin",
                f"{data.year}年比对核查结果已冻结（第{data.result_version}版）",
                body=f"campaign_id={data.campaign_id}",
                ref_type="campaign",
                ref_id=data.campaign_id,
                action_required=True,
            )
        ],
    )
    return True


async def get(*, session: AsyncSession, bulletin_id: str) -> Bulletin:
    bulletin = await repository.get_bulletin(session, bulletin_id)
    if bulletin is None:
        raise NotFound("No such bulletin.")
    return bulletin


def view_of(ctx: ServiceContext, bulletin: Bulletin) -> BulletinView:
    outcomes: dict[str, int] = json.loads(bulletin.counts_by_outcome)
    towns: dict[str, dict[str, int]] = json.loads(bulletin.counts_by_town)

    def town_name(code: str) -> str:
        org = ctx.directory.get(code)
        return org.name_zh.removeprefix("山亭区") if org is not None else code

    kind = "控辍保学比对情况通报" if bulletin.kind == "november_comparison" else "秋季入学核查情况通报"
    return BulletinView(
        title=f"山亭区{bulletin.year}年义务教育{kind}",
        as_of=bulletin.as_of.isoformat(),
        children_in_scope=bulletin.children_in_scope,
        outcomes=[
            (code, VERIFICATION_OUTCOMES.get(code, (code, code))[1], count)
            for code, count in sorted(outcomes.items(), key=lambda kv: -kv[1])
        ],
        towns=[(code, town_name(code), counts) for code, counts in sorted(towns.items())],
        tasks_total=bulletin.tasks_total,
        tasks_open=bulletin.tasks_open,
    )


async def publish(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, bulletin_id: str
) -> Bulletin:
    """Publish a bulletin to every town and the inspection office (once; 409 ``bulletin_published``)."""
    bulletin = await get(session=session, bulletin_id=bulletin_id)
    if bulletin.published_at is not None:
        raise Conflict("The bulletin is published already.", code="bulletin_published")
    bulletin.published_at, bulletin.published_by = utcnow(), principal.subject
    recipients = [town.code for town in ctx.directory.towns()] + [ctx.directory.by_role("inspector").code]
    title = view_of(ctx, bulletin).title
    await post_messages(
        session, [Post(org, "bulletin", title, ref_type="bulletin", ref_id=bulletin.id) for org in recipients]
    )
    await session.flush()
    return bulletin


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def scorecards(
    *, session: AsyncSession, principal: Principal, year: int, level: str, special_quota: int
) -> list[dict[str, Any]]:
    """Per school (level=school: schools and school districts) or per town: verification completion,
    dropouts, return rate, report timeliness, census timeliness, home visits, visit coverage, lapsed
    deadlines.

    Visit coverage (家访覆盖率) comes from the rosters casework published (RosterSet): students visited /
    students on the semester's roster, and special-group coverage = visits made towards the quota / visits
    the roster's special-group students owe (``special_quota`` each), over the year's semesters that have
    a roster. Without any roster the figures are None (unknown, never 0 or 100 %); the students visited
    in semesters without a roster are shown apart (``visited_without_roster``)."""
    kinds = ("verification_task", "case_report", "census")
    deadlines = await repository.deadline_stats(
        session, kinds=kinds, year=year, level=level, scope=principal.scope
    )
    cases = await repository.case_stats(session, year=year, level=level, scope=principal.scope)
    visits = await repository.visit_stats(session, year=year, level=level, scope=principal.scope)
    coverage = await repository.roster_coverage(
        session, year=year, level=level, scope=principal.scope, special_quota=special_quota
    )
    rows = []
    for org in sorted(set(deadlines) | set(cases) | set(visits) | set(coverage)):
        d = deadlines.get(org, {})
        empty = {"total": 0, "met": 0, "on_time": 0, "lapsed": 0, "open": 0}
        task, report, census = (d.get(k, empty) for k in kinds)
        c = cases.get(org, {"dropouts": 0, "returned": 0})
        v = visits.get(org, {"visits": 0, "students_visited": 0})
        rows.append(
            {
                "org": org,
                "verification_tasks": task["total"],
                "verification_completion": _ratio(task["met"], task["total"]),
                "dropouts": c["dropouts"],
                "returned": c["returned"],
                "return_rate": _ratio(c["returned"], c["dropouts"]),
                "reports_due": report["total"] - report["open"],
                "report_timeliness": _ratio(report["on_time"], report["total"] - report["open"]),
                "census_due": census["total"] - census["open"],
                "census_timeliness": _ratio(census["on_time"], census["total"] - census["open"]),
                "visits": v["visits"],
                "students_visited": v["students_visited"],
                **_coverage(coverage.get(org)),
                "lapsed": task["lapsed"] + report["lapsed"] + census["lapsed"],
            }
        )
    return rows


COVERAGE_FIELDS = (
    "roster_students",
    "roster_students_visited",
    "visit_coverage",
    "special_visits_due",
    "special_visits_made",
    "special_coverage",
)


def _coverage(figures: dict[str, int] | None) -> dict[str, Any]:
    """The coverage columns of a scorecard row: None throughout without a roster; a ratio is None also
    when its denominator is 0 (a roster listing nobody, or no special-group student)."""
    if figures is None or not figures["rosters"]:
        return dict.fromkeys(COVERAGE_FIELDS) | {
            "visited_without_roster": figures["visited_without_roster"] if figures else 0
        }
    return {
        "roster_students": figures["roster_students"],
        "roster_students_visited": figures["roster_students_visited"],
        "visit_coverage": _ratio(figures["roster_students_visited"], figures["roster_students"]),
        "special_visits_due": figures["special_visits_due"],
        "special_visits_made": figures["special_visits_made"],
        "special_coverage": _ratio(figures["special_visits_made"], figures["special_visits_due"]),
        "visited_without_roster": figures["visited_without_roster"],
    }


def criticism(rows: list[dict[str, Any]], *, min_timeliness: float) -> list[dict[str, Any]]:
    """The organisations to criticise by name (点名批评): any lapsed deadline, or timeliness or
    verification completion under the threshold. Each with its reasons (codes)."""
    out = []
    for row in rows:
        reasons = []
        if row["lapsed"]:
            reasons.append(f"lapsed_deadlines:{row['lapsed']}")
        for metric in ("report_timeliness", "census_timeliness", "verification_completion"):
            value = row[metric]
            if value is not None and value < min_timeliness:
                reasons.append(f"{metric}:{value}")
        if reasons:
            out.append({"org": row["org"], "reasons": reasons})
    return out
