"""Annotations for a child assessed as incapable of receiving education: written by the disabled persons'
federation or the bureau, read only by the bureau, the federation and the student's own school."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.errors import NotFound, Problem
from baoxue.service import ServiceContext
from enrollment.students import repository
from enrollment.students.models import IncapacityAnnotation
from enrollment.students.schemas import AnnotationCreate
from enrollment.visibility import ensure_visible


async def annotate(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    student_id: str,
    data: AnnotationCreate,
) -> IncapacityAnnotation:
    """Attach an incapacity assessment to a record; the re-assessment date must follow the assessment."""
    record = await repository.get_for_update(session, student_id)
    if record is None:
        raise NotFound("No such student record.", code="student_not_found")
    ensure_visible(principal, record.school_code, resource="student record")
    if data.reassess_on <= data.assessed_on:
        raise Problem(
            "The re-assessment date must follow the assessment.",
            code="reassessment_before_assessment",
            status=422,
        )
    annotation = IncapacityAnnotation(
        id=str(uuid.uuid4()),
        student_id=record.id,
        school_code=record.school_code,
        assessing_body=data.assessing_body,
        evidence_ref=data.evidence_ref,
        assessed_on=data.assessed_on,
        reassess_on=data.reassess_on,
        created_by=principal.subject,
    )
    session.add(annotation)
    await ctx.audit.record(session, principal, "create", "incapacity_annotation", [annotation.id])
    return annotation


async def list_annotations(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, student_id: str
) -> Sequence[IncapacityAnnotation]:
    """The record's annotations; a school sees only its own students' (the permission limits the roles)."""
    record = await repository.get_visible(session, principal, student_id)
    if record is None or not principal.covers(record.school_code):
        raise NotFound("No such student record.", code="student_not_found")
    found = await repository.annotations_of(session, student_id)
    await ctx.audit.record(session, principal, "read", "incapacity_annotation", [a.id for a in found])
    return found
