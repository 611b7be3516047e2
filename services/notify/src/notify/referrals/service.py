"""Sending referrals (set-based), receipts, outcomes."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, or_

from baoxue.auth.jurisdiction import ensure_within, within_jurisdiction
from baoxue.auth.principal import Principal
from baoxue.db import conflict_insert, utcnow
from baoxue.errors import Conflict, NotFound, Problem
from baoxue.service import ServiceContext
from baoxue.workdays import today_in_china
from notify.bulletins import repository as facts
from notify.calendar.service import due_after
from notify.deadlines import repository as deadlines
from notify.delivery.inbox import Post, post_messages
from notify.referrals.models import Referral
from notify.referrals.rules import CASE_REASON_REFERRALS, RULES
from notify.settings import NotifySettings

_DEPARTMENT_ROLES = (
    "dept_police",
    "dept_poverty",
    "dept_dpf",
    "dept_civil",
    "justice",
    "hrss",
    "market",
    "culture",
)
"""District-wide departments: their jurisdiction is the whole district, so they see only the referrals
addressed to them or sent by them (never the district's by jurisdiction)."""


async def send(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    kind: str,
    subject_id: str,
    from_org: str,
    case_id: str | None = None,
    child_id: str | None = None,
    details: str = "",
    to_orgs: Sequence[str] = (),
) -> int:
    """Refer a subject to every department the rule names, or to ``to_orgs`` for a rule that names none
    (once per recipient: a repeat is ignored); each gets an inbox message asking for a receipt. Returns
    how many referrals were new."""
    rule = RULES.get(kind)
    if rule is None:
        raise Problem(f"Unknown referral kind '{kind}'.", code="referral_kind_unknown", status=422)
    targets = [ctx.directory.by_role(role).code for role in rule.to_roles]  # type: ignore[arg-type]
    targets += [org for org in to_orgs if org not in targets]
    now = utcnow()
    rows = [
        {
            "id": str(uuid.uuid4()),
            "kind": kind,
            "subject_id": subject_id,
            "case_id": case_id,
            "child_id": child_id,
            "from_org": from_org,
            "to_org": org,
            "required_action": rule.required_action,
            "details": details,
            "status": "sent",
            "created_at": now,
        }
        for org in targets
    ]
    table = Referral.__table__  # type: ignore[attr-defined]
    statement = (
        conflict_insert(session, table)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(table.c.id, table.c.to_org)
    )
    created = (await session.execute(statement)).all()
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)
    receipt_due = await due_after(
        session=session, ctx=ctx, start=today_in_china(), workdays=settings.referral_receipt_workdays
    )
    await deadlines.insert_missing(
        session,
        [
            {
                "id": str(uuid.uuid4()),
                "kind": "referral_receipt",
                "org": r.to_org,
                "subject_id": r.id,
                "case_id": case_id,
                "due_date": receipt_due.due,
                "warnings": ",".join(receipt_due.warnings),
                "status": "open",
                "created_at": now,
            }
            for r in created
        ],
    )
    await post_messages(
        session,
        [
            Post(
                r.to_org,
                "referral",
                rule.title_zh,
                body=f"referral_id={r.id} action={rule.required_action}",
                ref_type="referral",
                ref_id=r.id,
                action_required=True,
            )
            for r in created
        ],
    )
    return len(created)


async def ensure_case_visible(session: AsyncSession, principal: Principal, case_id: str) -> None:
    """A referral sent by hand names a case notify knows within the caller's jurisdiction (404 else)."""
    fact = await facts.case_fact(session, case_id)
    if fact is None:
        raise NotFound("No such case.")
    ensure_within(principal, fact.school_code, fact.hukou_town, resource="case")


async def deferral_expired(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    deferral_id: str,
    kind: str,
    child_id: str | None,
    hukou_school_district: str | None,
    ended_on: dt.date,
) -> int:
    """A deferral or exemption (缓学/免学) ended: the child is expected at school again. The school
    district of the child's hukou place (the notice: 由户籍所在地学区确认去向) gets a ``deferral_return``
    referral — an inbox notice with a receipt deadline — and a ``deferral_return`` deadline to confirm
    the child is back: ``deferral_return_workdays`` working days after the period's end, met when the
    district reports the referral's outcome, else reminded and lapsed by the sweep like every deadline.

    A district the directory does not know (or none in the event) sends it to the bureau instead, with
    the warning ``hukou_school_district_unknown`` on the deadline: nobody is left without the notice.
    Once per deferral: a repeated event finds the referral and the deadline there and adds nothing. The
    notice carries ids, codes and dates only (deferral id, kind, the end and due dates; the child's
    surrogate id is on the referral like a hukou clean-up's)."""
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)
    bureau = ctx.directory.by_role("bureau").code
    known = hukou_school_district is not None and ctx.directory.get(hukou_school_district) is not None
    org = hukou_school_district if known and hukou_school_district else bureau
    due = await due_after(
        session=session, ctx=ctx, start=ended_on, workdays=settings.deferral_return_workdays
    )
    warnings = [*due.warnings, *([] if known else ["hukou_school_district_unknown"])]
    opened = await deadlines.insert_missing(
        session,
        [
            {
                "id": str(uuid.uuid4()),
                "kind": "deferral_return",
                "org": org,
                "subject_id": deferral_id,
                "case_id": None,
                "due_date": due.due,
                "warnings": ",".join(warnings),
                "status": "open",
                "created_at": utcnow(),
            }
        ],
    )
    sent = await send(
        session=session,
        ctx=ctx,
        kind="deferral_return",
        subject_id=deferral_id,
        from_org=bureau,
        child_id=child_id,
        details=f"deferral_id={deferral_id} kind={kind} ended_on={ended_on.isoformat()} due={due.due.isoformat()}",
        to_orgs=[org],
    )
    return opened + sent


async def _for_recipient(session: AsyncSession, principal: Principal, referral_id: str) -> Referral:
    referral = await session.get(Referral, referral_id)
    if referral is None or referral.to_org != principal.org:
        raise NotFound("No such referral.")
    return referral


async def receive(*, session: AsyncSession, principal: Principal, referral_id: str) -> Referral:
    """The receiving department confirms receipt (回执); repeating it changes nothing."""
    referral = await _for_recipient(session, principal, referral_id)
    if referral.received_at is None:
        referral.received_at, referral.received_by = utcnow(), principal.subject
        referral.status = "received" if referral.status == "sent" else referral.status
        await deadlines.close(
            session, kind="referral_receipt", subject_id=referral.id, status="met", on=today_in_china()
        )
        await session.flush()
    return referral


async def close(
    *,
    session: AsyncSession,
    principal: Principal,
    referral_id: str,
    outcome: str,
    note: str | None,
    on: dt.date,
) -> Referral:
    """The receiving department reports the outcome; the referral is closed (a receipt is implied)."""
    referral = await _for_recipient(session, principal, referral_id)
    if referral.status == "closed":
        raise Conflict("The referral is closed already.", code="referral_closed")
    if referral.received_at is None:
        referral.received_at, referral.received_by = utcnow(), principal.subject
        await deadlines.close(session, kind="referral_receipt", subject_id=referral.id, status="met", on=on)
    referral.status, referral.outcome, referral.outcome_note, referral.closed_on = "closed", outcome, note, on
    if referral.kind == "deferral_return":  # the district confirmed where the child is: its deadline is met
        await deadlines.close(
            session,
            kind="deferral_return",
            subject_id=referral.subject_id,
            status="met",
            on=on,
            org=referral.to_org,
        )
    await session.flush()
    return referral


async def page(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None,
    kind: str | None,
    after: str | None,
    limit: int,
) -> list[Referral]:
    """Referrals sent to the caller's organisation or sent from within its jurisdiction."""
    own = or_(col(Referral.to_org) == principal.org, col(Referral.from_org) == principal.org)
    if principal.has_role(*_DEPARTMENT_ROLES) and not principal.has_role("bureau", "inspector"):
        statement = select(Referral).where(own)  # a department's scope is the district: show its own only
    else:
        statement = select(Referral).where(or_(own, within_jurisdiction(principal, col(Referral.from_org))))
    if status:
        statement = statement.where(col(Referral.status) == status)
    if kind:
        statement = statement.where(col(Referral.kind) == kind)
    if after:
        statement = statement.where(col(Referral.id) > after)
    return list((await session.execute(statement.order_by(col(Referral.id)).limit(limit + 1))).scalars())


def referral_kinds_for_case(reason: str | None) -> Sequence[str]:
    """The referrals a confirmed case's reason sends by itself."""
    kind = CASE_REASON_REFERRALS.get(reason or "")
    return [kind] if kind else []
