"""Deadlines: opening (from events and from the statutory calendar), closing, and the periodic sweep
that reminds before a deadline and, once it has passed, marks it lapsed (DeadlineLapsed), tells the
organisation and its supervisor, and climbs the escalation ladder where a ladder level lapsed."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections import Counter
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts.notify import DeadlineLapsed
from baoxue.db import utcnow
from baoxue.events.envelope import EventData
from baoxue.service import ServiceContext
from baoxue.workdays import CalendarYearMissing, WorkdayCalendar, today_in_china
from notify.bulletins import repository as facts
from notify.calendar.service import current_calendar
from notify.calendar.statutory import statutory_items
from notify.deadlines import repository
from notify.deadlines.models import Deadline
from notify.delivery.inbox import Post, post_messages
from notify.escalation import service as escalation
from notify.settings import NotifySettings

log = logging.getLogger(__name__)

KIND_LABELS = {
    "feed": "部门数据报送",
    "verification": "入学核查",
    "verification_task": "核查任务",
    "case_report": "辍学报告",
    "census": "特殊学生摸底",
    "referral_receipt": "移送事项回执",
    "deferral_return": "缓学（免学）期满返校核实",
    "visit_quota": "学期家访覆盖",
    "dropout_report": "辍学情况汇总上报",
    "bulletin": "全区通报",
    "escalation_L1_school": "学校劝返",
    "escalation_L2_town_order": "责令限期改正",
    "escalation_L3_judicial": "司法文书",
    "escalation_L4_legal_action": "依法追究法律责任",
}


@dataclass
class SweepResult:
    opened: int = 0
    reminded: int = 0
    lapsed: int = 0
    advanced: int = 0


def _settings(ctx: ServiceContext) -> NotifySettings:
    assert isinstance(ctx.settings, NotifySettings)
    return ctx.settings


async def open_deadline(
    *,
    session: AsyncSession,
    kind: str,
    org: str,
    subject_id: str,
    due: dt.date,
    case_id: str | None = None,
    warnings: tuple[str, ...] = (),
    sequence: int | None = None,
    status: str = "open",
    closed_on: dt.date | None = None,
    on_time: bool | None = None,
) -> int:
    """Open a deadline unless (kind, org, subject) already has one; returns 1 when opened. ``status``,
    ``closed_on`` and ``on_time``: a row born closed (a verification task's end that arrived before its
    opening)."""
    return await repository.insert_missing(
        session,
        [
            {
                "id": str(uuid.uuid4()),
                "kind": kind,
                "org": org,
                "subject_id": subject_id,
                "case_id": case_id,
                "due_date": due,
                "warnings": ",".join(warnings),
                "status": status,
                "closed_on": closed_on,
                "on_time": on_time,
                "sequence": sequence,
                "created_at": utcnow(),
            }
        ],
    )


TASK = "verification_task"


def _stale(rows: list[Deadline], sequence: int) -> bool:
    """Whether a task event at ``sequence`` is stale: a deadline of the task already applied an event at
    that sequence or a later one (the same event replayed, or an older one arriving late)."""
    return any(row.sequence is not None and row.sequence >= sequence for row in rows)


def _owned_by(rows: list[Deadline], org: str, *, sequence: int, on: dt.date) -> Deadline | None:
    """The task now belongs to school district ``org`` (event ``sequence``): every deadline of the task
    records the sequence, another district's open one is cancelled on ``on`` (the task moved away from
    it); returns ``org``'s deadline, if it has one."""
    mine = None
    for row in rows:
        row.sequence = sequence
        if row.org == org:
            mine = row
        elif row.status == "open":
            row.status, row.closed_on, row.on_time = "cancelled", on, None
    return mine


async def task_unaccounted(
    *, session: AsyncSession, task_id: str, org: str, due: dt.date, sequence: int, on: dt.date
) -> bool:
    """ChildUnaccounted: the verification task belongs to school district ``org`` from now on (opened,
    reopened after it was superseded, or moved there after a hukou move), due on ``due``.

    The task's open deadlines held by another district are cancelled on ``on`` (the task moved away:
    the old district owes nothing more), and ``org``'s deadline is opened — or, cancelled earlier (the
    task superseded, or moved away and back), opened again with the event's due date and a new reminder.
    A met or lapsed deadline of ``org`` stays as it is. An event not after the latest one applied to the
    task (``sequence``, the task's version) is stale and changes nothing. Returns whether it applied."""
    rows = await repository.of_subject(session, kind=TASK, subject_id=task_id)
    if _stale(rows, sequence):
        return False
    mine = _owned_by(rows, org, sequence=sequence, on=on)
    if mine is not None and (mine.status == "cancelled" or (mine.status == "open" and mine.due_date != due)):
        mine.status, mine.due_date, mine.reminded_on = "open", due, None
        mine.closed_on, mine.on_time = None, None
    await session.flush()
    if mine is None:
        await open_deadline(
            session=session, kind=TASK, org=org, subject_id=task_id, due=due, sequence=sequence
        )
    return True


async def task_superseded(
    *, session: AsyncSession, task_id: str, org: str, sequence: int, on: dt.date
) -> bool:
    """VerificationTaskSuperseded: nobody owes the task any more; its open deadline is cancelled on
    ``on``. When the task has no deadline yet (its ChildUnaccounted not applied: dead-lettered), a
    cancelled one is kept for ``org`` at this sequence, due ``on``, so that the opening arriving later is
    stale. Stale events are dropped as in :func:`task_unaccounted`. Returns whether it applied."""
    rows = await repository.of_subject(session, kind=TASK, subject_id=task_id)
    if _stale(rows, sequence):
        return False
    for row in rows:
        row.sequence = sequence
        if row.status == "open":
            row.status, row.closed_on, row.on_time = "cancelled", on, None
    await session.flush()
    if not rows:
        await open_deadline(
            session=session,
            kind=TASK,
            org=org,
            subject_id=task_id,
            due=on,
            sequence=sequence,
            status="cancelled",
            closed_on=on,
        )
    return True


async def task_resolved(
    *,
    session: AsyncSession,
    task_id: str,
    org: str,
    sequence: int,
    on: dt.date,
    on_time: bool,
    due: dt.date | None,
) -> bool:
    """VerificationTaskResolved by school district ``org``, the task's owner: its open deadline is met,
    closed on ``on`` (the day the resolution was recorded, not the day it states) and on time as
    enrollment judged it (``on_time``: the server's day against the task's due day). An open deadline of
    another district is cancelled: the task moved to ``org`` (its ChildUnaccounted naming ``org`` not
    applied yet, dead-lettered), so the work is not credited to the district it left. When ``org`` holds
    no deadline of the task (its opening or its move not applied yet), a met one is kept for it at this
    sequence, due ``due`` (the event's; ``on`` for events without it), so that the opening or move
    arriving later is stale and opens nothing that would lapse. Stale events are dropped as in
    :func:`task_unaccounted`. Returns whether it applied."""
    rows = await repository.of_subject(session, kind=TASK, subject_id=task_id)
    if _stale(rows, sequence):
        return False
    mine = _owned_by(rows, org, sequence=sequence, on=on)
    if mine is not None and mine.status in ("open", "cancelled"):
        mine.status, mine.closed_on, mine.on_time = "met", on, on_time
    await session.flush()
    if mine is None:
        await open_deadline(
            session=session,
            kind=TASK,
            org=org,
            subject_id=task_id,
            due=due or on,
            sequence=sequence,
            status="met",
            closed_on=on,
            on_time=on_time,
        )
    return True


async def meet_deadline(
    *, session: AsyncSession, kind: str, subject_id: str, on: dt.date, org: str | None = None
) -> list[Deadline]:
    """The obligation was fulfilled on `on` (on time when not after the due date)."""
    return await repository.close(session, kind=kind, subject_id=subject_id, status="met", on=on, org=org)


def case_report_subject(case_id: str, confirmed_on: dt.date) -> str:
    """The subject of a case's report deadline: one per confirmation, so a case reopened by a relapse and
    confirmed again owes a new report (``<case id>:<confirmation date>``)."""
    return f"{case_id}:{confirmed_on.isoformat()}"


async def open_case_report(
    *, session: AsyncSession, case_id: str, school_code: str, confirmed_on: dt.date, due: dt.date
) -> int:
    """Open the school's report deadline of one confirmation of a case, unless the case already has one
    for that confirmation; returns 1 when opened.

    Report deadlines opened before there was one per confirmation have the case id alone as their
    subject (one per case and school). Such a deadline is the report of the confirmation whose report
    is due on its due date, so that confirmation replayed after the upgrade (from dead letters) finds it
    and opens no second deadline for the same report, while a later confirmation (a relapse, its report
    due on another day) still opens its own. Two confirmations of one case whose reports are due on the
    same day cannot be told apart under the old subject: the later one opens nothing."""
    subject_id = case_report_subject(case_id, confirmed_on)
    if await repository.has_case_report(session, case_id=case_id, subject_id=subject_id, due=due):
        return 0
    return await open_deadline(
        session=session,
        kind="case_report",
        org=school_code,
        subject_id=subject_id,
        due=due,
        case_id=case_id,
    )


async def meet_case_report(*, session: AsyncSession, case_id: str, on: dt.date) -> Deadline | None:
    """The school reported the case (CaseReported): its latest confirmation's report deadline is met."""
    return await repository.close_latest_of_case(
        session, kind="case_report", case_id=case_id, status="met", on=on
    )


async def ensure_statutory(*, session: AsyncSession, ctx: ServiceContext, today: dt.date) -> int:
    """Open the tracked statutory deadlines of `today`'s year that are not yet past, for every owning
    organisation (set-based). Past ones are not opened after the fact: a service deployed in November
    does not lapse March's feeds."""
    directory, now = ctx.directory, utcnow()
    rows = []
    for item in statutory_items(today.year, _settings(ctx)):
        if not item.tracked or item.due < today:
            continue
        if item.code == "feed":
            orgs = [directory.by_role(role).code for role in item.owners]  # type: ignore[arg-type]
        elif item.code in ("census", "visit_quota"):
            orgs = [school.code for school in directory.schools()]
        else:
            orgs = [directory.by_role("bureau").code]
        rows += [
            {
                "id": str(uuid.uuid4()),
                "kind": item.code,
                "org": org,
                "subject_id": item.period,
                "case_id": None,
                "due_date": item.due,
                "warnings": "",
                "status": "open",
                "created_at": now,
            }
            for org in orgs
        ]
    return await repository.insert_missing(session, rows)


async def evaluate_visit_quotas(*, session: AsyncSession, ctx: ServiceContext, today: dt.date) -> int:
    """At a semester's end, judge each school's home-visit coverage from the visits, the special-needs
    census and the roster casework reported. The shortfall is in visits; a positive one lets the deadline
    lapse in the same sweep (DeadlineLapsed; the lapse message and the deadline's warnings carry the
    figures), otherwise it is met on its due date. Returns how many were judged."""
    settings = _settings(ctx)
    due = await repository.open_overdue(session, kind="visit_quota", today=today)
    if not due:
        return 0
    quota = settings.visit_quota_special_group
    coverage = await facts.visit_coverage(
        session,
        schools={r.org for r in due},
        semesters={r.subject_id for r in due},
        special_quota=quota,
    )
    updates = []
    for row in due:
        c = coverage.get((row.org, row.subject_id), {})
        shortfall, warnings = _visit_shortfall(c, quota)
        met = shortfall == 0
        updates.append(
            {
                "b_id": row.id,
                "b_warnings": ",".join(warnings),
                "b_status": "met" if met else "open",
                "b_closed_on": row.due_date if met else None,
                "b_on_time": True if met else None,
            }
        )
    await repository.settle_many(session, updates)
    return len(updates)


def _visit_shortfall(c: dict[str, int], quota: int) -> tuple[int, list[str]]:
    """A school's shortfall of a semester, in visits, and the deadline's warnings.

    With the roster (RosterSet) it is exact: every listed student nobody visited owes one visit, or
    ``quota`` when special-group (the roster's special-group students minus those visited, at most the
    unvisited ones), and a visited special-group student owes what is missing to ``quota``. Without it
    only a lower bound is known (warning ``roster_unknown``): the special-group students the census
    implies but nobody visited owe the quota, visited ones what is missing, and a school without any
    visit at least one."""
    visits, visited = c.get("visits", 0), c.get("students", 0)
    special_visited, special_missing = c.get("special_students", 0), c.get("special_missing", 0)
    warnings = [
        f"visits:{visits}",
        f"students_visited:{visited}",
        f"special_students_visited:{special_visited}",
    ]
    if "roster_students" in c:
        roster, roster_special = c["roster_students"], c["roster_special"]
        unvisited = max(0, roster - visited)
        unvisited_special = min(unvisited, max(0, roster_special - special_visited))
        shortfall = (unvisited - unvisited_special) + unvisited_special * quota + special_missing
        warnings += [
            f"roster_students:{roster}",
            f"roster_special:{roster_special}",
            f"visit_shortfall:{shortfall}",
        ]
        return shortfall, warnings
    at_least = c.get("special_at_least", 0)
    shortfall = max(0, at_least - special_visited) * quota + special_missing
    if visits == 0:
        shortfall = max(shortfall, 1)
    warnings += [
        f"special_students_at_least:{at_least}",
        f"visit_shortfall_at_least:{shortfall}",
        "roster_unknown",
    ]
    return shortfall, warnings


def _workdays_left(calendar: WorkdayCalendar, today: dt.date, due: dt.date) -> int:
    try:
        return calendar.workdays_between(today, due)
    except CalendarYearMissing:
        return sum(
            1 for n in range(1, (due - today).days + 1) if (today + dt.timedelta(days=n)).weekday() < 5
        )


def supervisor_of(ctx: ServiceContext, org: str) -> str:
    """Who is told when `org` misses a deadline: a school's or district's town, else the bureau."""
    town = ctx.directory.town_of(org)
    bureau = ctx.directory.by_role("bureau").code
    return town if town is not None and town != org else bureau


async def sweep(
    *, session: AsyncSession, ctx: ServiceContext, today: dt.date, open_statutory: bool = True
) -> SweepResult:
    """One pass over the deadlines as of `today` (a legal date in Asia/Shanghai). ``open_statutory=False``
    reminds and lapses what is open without opening the statutory calendar's deadlines of `today`'s year
    (a catch-up sweep for a past date)."""
    settings = _settings(ctx)
    opened = await ensure_statutory(session=session, ctx=ctx, today=today) if open_statutory else 0
    result = SweepResult(opened=opened)
    await evaluate_visit_quotas(session=session, ctx=ctx, today=today)
    calendar = await current_calendar(session=session, ctx=ctx)
    horizon = today + dt.timedelta(days=settings.reminder_workdays * 3 + 14)
    posts: list[Post] = []
    reminded: list[str] = []
    for row in await repository.unreminded_due_by(session, today, horizon):
        if _workdays_left(calendar, today, row.due_date) > settings.reminder_workdays:
            continue
        reminded.append(row.id)
        label = KIND_LABELS.get(row.kind, row.kind)
        posts.append(
            Post(
                row.org,
                "reminder",
                f"提醒：{label}将于 {row.due_date.isoformat()} 到期",
                body=f"deadline_id={row.id} subject={row.subject_id}",
                ref_type="deadline",
                ref_id=row.id,
                action_required=True,
            )
        )
    await repository.mark_reminded(session, reminded, today)
    result.reminded = len(reminded)
    events: list[tuple[EventData, str, int]] = []
    ladder_lapses: list[tuple[str, str]] = []
    digest: dict[str, Counter[str]] = {}
    for row in await repository.lapse_due(session, today):
        events.append(
            (
                DeadlineLapsed(
                    deadline_id=row.id,
                    kind=row.kind,
                    org=row.org,
                    subject_id=row.subject_id,
                    due_date=row.due_date,
                ),
                row.id,
                1,
            )
        )
        title = f"逾期：{KIND_LABELS.get(row.kind, row.kind)}（期限 {row.due_date.isoformat()}）"
        body = f"deadline_id={row.id} subject={row.subject_id}"
        if row.kind == "visit_quota" and row.warnings:
            body += " " + " ".join(w.replace(":", "=", 1) for w in row.warnings.split(",") if w)
        posts.append(
            Post(
                row.org,
                "lapse",
                title,
                body=body,
                ref_type="deadline",
                ref_id=row.id,
                action_required=True,
            )
        )
        supervisor = supervisor_of(ctx, row.org)
        if supervisor != row.org:
            digest.setdefault(supervisor, Counter())[row.kind] += 1
        if row.kind.startswith("escalation_"):
            escalation_id, level = row.subject_id.split(":", 1)
            ladder_lapses.append((escalation_id, level))
    result.lapsed = len(events)
    for supervisor, counts in sorted(digest.items()):  # one summary per supervisor and sweep
        summary = "，".join(f"{KIND_LABELS.get(kind, kind)} {n} 项" for kind, n in sorted(counts.items()))
        posts.append(
            Post(
                supervisor,
                "lapse",
                f"逾期汇总（{today.isoformat()}）：下属单位 {counts.total()} 项",
                body=summary,
                ref_type="sweep",
                ref_id=today.isoformat(),
            )
        )
    await post_messages(session, posts)
    await ctx.outbox.add_many(session, events)
    for escalation_id, level in ladder_lapses:
        if await escalation.level_lapsed(
            session=session, ctx=ctx, escalation_id=escalation_id, level=level, today=today
        ):
            result.advanced += 1
    log.info(
        "deadline sweep",
        extra={
            "opened": result.opened,
            "reminded": result.reminded,
            "lapsed": result.lapsed,
            "advanced": result.advanced,
        },
    )
    return result


async def sweep_loop(ctx: ServiceContext) -> None:
    """ServiceSpec.background: sweep every ``sweep_interval_seconds`` (today in Asia/Shanghai)."""
    settings = _settings(ctx)
    if not settings.sweep_enabled:
        return
    while True:
        async with ctx.db.transaction() as session:
            await sweep(session=session, ctx=ctx, today=today_in_china())
        await asyncio.sleep(settings.sweep_interval_seconds)
