"""Shaping case rows for responses (ID numbers only ever masked) and auditing the read."""

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth import Principal
from baoxue.pii.masking import mask_id_number
from baoxue.service import ServiceContext
from casework.cases.models import Case
from casework.cases.schemas import CasePublic
from casework.semesters import today


def case_public(ctx: ServiceContext, case: Case) -> CasePublic:
    masked = mask_id_number(ctx.cipher.decrypt(case.id_number_enc)) if case.id_number_enc else None
    overdue = case.reported_on is None and case.report_due is not None and case.report_due < today()
    awaiting = case.state == "placed" and case.placement_mode is None
    return CasePublic.model_validate(
        {
            **case.model_dump(),
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
