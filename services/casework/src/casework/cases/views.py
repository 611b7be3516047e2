"""Shaping case rows for responses (ID numbers only ever masked) and auditing the read."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth import Principal
from baoxue.pii.masking import mask_id_number
from baoxue.service import ServiceContext
from casework.cases.models import Case
from casework.cases.schemas import CasePublic
from casework.semesters import today


def case_public(ctx: ServiceContext, case: Case) -> CasePublic:
    return case_public_of(ctx, case.model_dump())


def case_public_of(ctx: ServiceContext, case: Mapping[Any, Any]) -> CasePublic:
    """The response model of a case's columns (an ORM case's ``model_dump()`` or a row's mapping)."""
    enc = case.get("id_number_enc")
    masked = mask_id_number(ctx.cipher.decrypt(enc)) if enc else None
    report_due = case["report_due"]
    overdue = case["reported_on"] is None and report_due is not None and report_due < today()
    awaiting = case["state"] == "placed" and case["placement_mode"] is None
    return CasePublic.model_validate(
        {
            **case,
            "id_number_masked": masked,
            "report_overdue": overdue,
            "awaiting_placement_mode": awaiting,
        }
    )


async def audited(
    session: AsyncSession, ctx: ServiceContext, principal: Principal, cases: list[Case]
) -> list[CasePublic]:
    """The response models of ``cases``, after recording the read of the children's cases in the audit log."""
    if cases:
        await ctx.audit.record(session, principal, "read", "case", [c.id for c in cases])
    return [case_public(ctx, c) for c in cases]
