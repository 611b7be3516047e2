"""The rules of a case: opening (by signal or by hand), one open case per child, edits, relapse reopen."""

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth import Principal
from baoxue.auth.jurisdiction import ensure_writable
from baoxue.concurrency import apply_changes, bump_version
from baoxue.contracts.casework import CaseOpened, CaseReopened
from baoxue.db import hold_transaction_lock, utcnow
from baoxue.errors import Conflict, NotFound, Problem
from baoxue.patches import refuse_emptying
from baoxue.pii.citizen_id import normalise_id_number, parse_id_number
from baoxue.service import ServiceContext
from casework.cases import repository as repo
from casework.cases.events import case_event
from casework.cases.models import SCHOOL_REPORT, Case, CaseSignal, CaseTransition
from casework.cases.schemas import CaseCreate, CaseUpdate
from casework.cases.states import CONFIRMED_STATES
from casework.semesters import today
from casework.settings import CaseworkSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Signal:
    """A dropout signal about one child, from enrollment or from a school."""

    signal_id: str
    signal: str
    detected_on: dt.date
    child_id: str | None = None
    student_id: str | None = None
    id_blind_index: str | None = None
    school_code: str | None = None
    hukou_town: str | None = None
    hukou_school_district: str | None = None
    places_child: bool = False
    """Enrollment's signal: its school (where the student is enrolled) and hukou are facts that replace
    a case's, not only fill them (a case a school opened before the read model knew the child)."""

    @property
    def identifier_keys(self) -> list[str]:
        """A key per identifier the signal carries, sorted (the order their locks are taken in)."""
        keys = [
            f"{prefix}:{value}"
            for prefix, value in (("c", self.child_id), ("s", self.student_id), ("b", self.id_blind_index))
            if value
        ]
        return sorted(keys)

    @property
    def child_key(self) -> str:
        if self.child_id:
            return f"c:{self.child_id}"
        if self.student_id:
            return f"s:{self.student_id}"
        if self.id_blind_index:
            return f"b:{self.id_blind_index}"
        raise ValueError("a signal names no child")


def settings_of(ctx: ServiceContext) -> CaseworkSettings:
    assert isinstance(ctx.settings, CaseworkSettings)
    return ctx.settings


async def record_transition(
    session: AsyncSession,
    case: Case,
    to_state: str,
    *,
    on: dt.date,
    by: str,
    note: str | None = None,
    changed: Iterable[str] = (),
) -> None:
    """Move ``case`` to ``to_state`` (already checked by the caller), bump its version, keep the history.
    ``changed`` names the other fields the move set, so a stale ``If-Match`` can name them with ``state``."""
    session.add(
        CaseTransition(case_id=case.id, from_state=case.state, to_state=to_state, on=on, by=by, note=note)
    )
    case.state = to_state
    bump_version(case, ["state", *changed])
    case.updated_at = utcnow()


async def _resolved(session: AsyncSession, signal: Signal) -> Signal:
    """The signal with what the student read model adds: the child and ID blind index of the record it
    names, or the one child of the records with its blind index. A signal naming only a record then
    meets a signal naming only the child on the child's lock and the child's case."""
    child_id, blind_index = await repo.child_of_record(
        session, student_id=signal.student_id, blind_index=signal.id_blind_index
    )
    return replace(
        signal,
        child_id=signal.child_id or child_id,
        id_blind_index=signal.id_blind_index or blind_index,
    )


async def lock_child(session: AsyncSession, signal: Signal) -> None:
    """Serialise, until the end of the transaction, every transaction that looks for or opens a case of
    a child known by any identifier ``signal`` carries (one transaction lock per identifier, taken in
    one sorted order, so two signals sharing any identifier never deadlock and never both miss the
    other's case). SQLite: the database's write lock, taken before the checks read."""
    for key in signal.identifier_keys:
        await hold_transaction_lock(
            session,
            f"casework.child.{key}",
            sqlite_write_lock_on=Case.__table__,  # type: ignore[attr-defined]
        )


async def receive_signal(
    *, session: AsyncSession, ctx: ServiceContext, signal: Signal, actor: str
) -> tuple[Case, str]:
    """Apply a dropout signal: attach it to the child's open case, reopen a case still under relapse
    watch (a dropout detected after its closure), record it on that closed case (one detected on or
    before the closure, delivered late), or open a new case. Returns the case and the effect
    (``attached``, ``reopened``, ``recorded``, ``opened``, or ``duplicate`` for a signal id seen
    before: the case it was applied to). One open case per child even when signals race: the
    signal's identifiers are locked (:func:`lock_child`) before the look-up, and the database's unique
    ``open_key`` stays the last guard (the loser of an insert race attaches to the winner's case)."""
    signal = await _resolved(session, signal)
    await lock_child(session, signal)
    if await repo.signal_seen(session, signal.signal_id):
        case = await repo.case_of_signal(session, signal.signal_id)
        if case is None:
            raise NotFound("The signal's case is gone.")
        return case, "duplicate"
    ids = {"child_id": signal.child_id, "student_id": signal.student_id, "blind_index": signal.id_blind_index}
    case = await repo.find_open_case(session, **ids)
    if case is not None:
        await _attach(session, case, signal, "attached")
        return case, "attached"
    watched = await repo.find_watched_case(session, **ids, on=signal.detected_on)
    if watched is not None and watched.closed_on is not None and signal.detected_on <= watched.closed_on:
        # Detected on or before the closure (delivered late): about the episode already closed, so it
        # is kept in the case's history and does not reopen it.
        await _attach(session, watched, signal, "recorded")
        return watched, "recorded"
    if watched is not None:
        await _reopen(session, ctx, watched, signal, actor)
        return watched, "reopened"
    try:
        async with session.begin_nested():
            case = _new_case(signal, actor)
            session.add(case)
            await session.flush()
    except IntegrityError:
        # Another transaction opened the child's case first: attach to it.
        case = await repo.find_open_case(session, **ids)
        if case is None:
            raise
        await _attach(session, case, signal, "attached")
        return case, "attached"
    session.add(
        CaseSignal(
            case_id=case.id,
            signal_id=signal.signal_id,
            signal=signal.signal,
            detected_on=signal.detected_on,
            effect="opened",
        )
    )
    session.add(
        CaseTransition(
            case_id=case.id, from_state=None, to_state="suspected", on=signal.detected_on, by=actor
        )
    )
    await ctx.outbox.add(
        session, case_event(CaseOpened, case, signal=signal.signal), subject=case.id, sequence=case.version
    )
    log.info("case opened", extra={"case_id": case.id, "signal": signal.signal})
    return case, "opened"


def _new_case(signal: Signal, actor: str) -> Case:
    return Case(
        id=str(uuid.uuid4()),
        child_key=signal.child_key,
        open_key=signal.child_key,
        child_id=signal.child_id,
        student_id=signal.student_id,
        id_blind_index=signal.id_blind_index,
        school_code=signal.school_code,
        hukou_town=signal.hukou_town,
        hukou_school_district=signal.hukou_school_district,
        state="suspected",
        opened_signal=signal.signal,
        opened_on=signal.detected_on,
        created_by=actor,
    )


FILLED_BY_SIGNALS = (
    "child_id",
    "student_id",
    "id_blind_index",
    "school_code",
    "hukou_town",
    "hukou_school_district",
)


PLACED_BY_ENROLLMENT = ("school_code", "hukou_town", "hukou_school_district")


async def _attach(
    session: AsyncSession,
    case: Case,
    signal: Signal,
    effect: str,
    *,
    bump: bool = True,
    replacing: tuple[str, ...] = (),
) -> list[str]:
    """Record ``signal`` on ``case`` and fill what it knows that the case does not; the fields named in
    ``replacing`` (for enrollment's signal: its school and hukou) take the signal's value even when the
    case has one — unless the signal was detected before another of enrollment's signals the case
    holds (delivered late, or replayed from dead letters: it names where the child was then, such as the
    school before a transfer). Returns the fields changed; with ``bump`` (unless the caller's own
    transition bumps) the case gets a new version, so its ETag moves whenever a stored field does."""
    if signal.places_child:
        latest = await repo.latest_enrollment_signal_day(session, case.id)
        if latest is None or signal.detected_on >= latest:
            replacing = PLACED_BY_ENROLLMENT
    session.add(
        CaseSignal(
            case_id=case.id,
            signal_id=signal.signal_id,
            signal=signal.signal,
            detected_on=signal.detected_on,
            effect=effect,
        )
    )
    case.signal_count += 1
    changed = ["signal_count"]
    # A later signal may know the child by more identifiers than the first one did; enrollment's says
    # where the child is enrolled and registered, which replaces a case's school and hukou.
    for name in FILLED_BY_SIGNALS:
        value = getattr(signal, name)
        if not value or getattr(case, name) == value:
            continue
        if not getattr(case, name) or name in replacing:
            setattr(case, name, value)
            changed.append(name)
    if bump:
        bump_version(case, changed)
    case.updated_at = utcnow()
    await session.flush()
    return changed


REOPEN_CLEARS = (
    "confirmed_on",
    "report_due",
    "reported_on",
    "returned_on",
    "placement_mode",
    "closed_on",
    "closure_reason",
    "watch_until",
    "escalation_id",
    "escalation_level",
)


async def _reopen(session: AsyncSession, ctx: ServiceContext, case: Case, signal: Signal, actor: str) -> None:
    case.open_key = case.child_key
    case.reopen_count += 1
    for name in REOPEN_CLEARS:
        setattr(case, name, None)
    case.overdue_published = False
    attached = await _attach(session, case, signal, "reopened", bump=False)
    await record_transition(
        session,
        case,
        "suspected",
        on=signal.detected_on,
        by=actor,
        note="relapse",
        changed=[*REOPEN_CLEARS, "reopen_count", *attached],
    )
    await session.flush()
    await ctx.outbox.add(
        session, case_event(CaseReopened, case, signal=signal.signal), subject=case.id, sequence=case.version
    )
    log.info("case reopened", extra={"case_id": case.id, "signal": signal.signal})


@dataclass(frozen=True)
class OpenedByHand:
    """What a school's open came to: ``opened`` (a new or reopened case, 201), ``already_open`` (the
    child's open case, which the caller may see, possibly only since this request moved it to the
    caller's school: 409 naming it), or ``recorded`` (a case the caller may not see: the report is on
    it, the answer names nothing, 202)."""

    case: Case
    outcome: Literal["opened", "already_open", "recorded"]


async def open_case_by_hand(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, data: CaseCreate
) -> OpenedByHand:
    """A school (or school district) opens a case; the ID number, if given, is stored encrypted with
    its blind index and never leaves unmasked.

    If the child has an open case the caller may see, 409 ``case_already_open`` naming it (nothing is
    written). A case the caller may not see is never named to it: it becomes the caller's
    when the student records place the child at the caller's school (a case opened elsewhere before
    they knew the child) or when it has no school and the child's hukou town is the school's (the
    school district's verification case of an unenrolled child); otherwise the school's report is
    recorded on it (``recorded``) for those who handle it. The 202 still differs from a 201, so it
    tells the caller that someone else handles the child; it names no case, school, state or date,
    and it can only arise for a child the student records place at no school, which a school may
    report only for its own town (:func:`_ensure_child_of_school`)."""
    school_code = data.school_code or (principal.org if principal.has_role("school", "teacher") else None)
    if school_code is None or ctx.directory.get(school_code) is None:
        raise Problem("Name the child's school.", code="school_required", status=422)
    ensure_writable(principal, principal.org, school_code)
    blind_index = encrypted = None
    if data.id_number:
        check = parse_id_number(data.id_number)
        if not check.ok:
            raise Problem(
                "The ID number is not valid.",
                code="invalid_id_number",
                status=422,
                errors=[{"field": "id_number", "code": str(r)} for r in check.errors],
            )
        normalised = normalise_id_number(data.id_number)
        blind_index = ctx.blind_index.of(normalised)
        encrypted = ctx.cipher.encrypt(normalised)
    hukou_town = data.hukou_town or (ctx.directory.town_of(school_code) if school_code else None)
    district = ctx.directory.school_district_for(town_code=hukou_town) if hukou_town else None
    signal = Signal(
        signal_id=f"manual:{uuid.uuid4()}",
        signal=SCHOOL_REPORT,
        detected_on=data.detected_on or today(),
        child_id=data.child_id,
        student_id=data.student_id,
        id_blind_index=blind_index,
        school_code=school_code,
        hukou_town=hukou_town,
        hukou_school_district=district.code if district else None,
    )
    signal = await _resolved(session, signal)
    await lock_child(session, signal)
    own_student = await _ensure_child_of_school(session, ctx, principal, signal)
    existing = await repo.find_open_case(
        session, child_id=signal.child_id, student_id=signal.student_id, blind_index=signal.id_blind_index
    )
    if existing is not None:
        if _sees(principal, existing):
            raise Conflict(
                "The child already has an open case.", code="case_already_open", case_id=existing.id
            )
        takes_over = own_student or (existing.school_code is None and existing.hukou_town == hukou_town)
        await _attach(session, existing, signal, "attached", replacing=("school_code",) if takes_over else ())
        log.info("school report on an open case", extra={"case_id": existing.id, "taken_over": takes_over})
        return OpenedByHand(existing, "already_open" if takes_over else "recorded")
    case, effect = await receive_signal(session=session, ctx=ctx, signal=signal, actor=principal.subject)
    if effect == "recorded":
        raise Conflict(
            "The child's case was closed on or after the day stated; report a dropout after the closure.",
            code="detected_before_closure",
        )
    if effect not in ("opened", "reopened"):
        raise Conflict("The child already has an open case.", code="case_already_open")
    case.id_number_enc = encrypted
    case.reason = data.reason
    case.analysis = data.analysis
    case.responsible_person = data.responsible_person
    case.planned_measures = list(data.planned_measures)
    await session.flush()
    return OpenedByHand(case, "opened")


def _sees(principal: Principal, case: Case) -> bool:
    """Whether the caller may see ``case`` (as :func:`repository.visible` decides in SQL)."""
    orgs = (case.school_code, case.hukou_town, case.hukou_school_district)
    return bool(principal.scope) and any(principal.covers(org) for org in orgs)


async def _ensure_child_of_school(
    session: AsyncSession, ctx: ServiceContext, principal: Principal, signal: Signal
) -> bool:
    """A case opened by hand is the school's (``signal.school_code``): 403 ``student_of_another_school``
    when the student read model places the child at other schools (its enrolled records' schools, else
    its records'), so a school cannot take another school's student's case. A child the read model does
    not know (never enrolled, or its record not here yet) may be opened by a school of its hukou town
    only (403 ``child_outside_school_area`` otherwise): the school district verifies the others of its
    area. Enrollment's later signal moves the case to the school it names (:func:`_attach`). Returns
    whether the read model places the child at the school (its own student)."""
    schools = await repo.schools_of_child(
        session, child_id=signal.child_id, student_id=signal.student_id, blind_index=signal.id_blind_index
    )
    if schools and signal.school_code not in schools:
        raise Problem(
            "The student records place the child at another school.",
            code="student_of_another_school",
            status=403,
        )
    school_town = ctx.directory.town_of(signal.school_code) if signal.school_code else None
    if not schools and principal.has_role("school") and signal.hukou_town != school_town:
        raise Problem(
            "A school opens a case for its own students, or for a child of its town no school has enrolled.",
            code="child_outside_school_area",
            status=403,
        )
    return bool(schools)


KEPT_ONCE_CONFIRMED = ("reason", "responsible_person")
"""A confirmed dropout keeps a reason category and one responsible person (一人一案) until it is closed."""


async def update_case(
    *, session: AsyncSession, principal: Principal, case_id: str, data: CaseUpdate, expected_version: int
) -> Case:
    """Edit an open case's analysis fields under ``If-Match``: 412 naming the fields changed since."""
    case = await repo.get_case(session, case_id, principal, for_update=True)
    if case is None:
        raise NotFound("No such case.")
    if case.state == "closed":
        raise Conflict("A closed case cannot be edited.", code="case_closed")
    changes = data.model_dump(exclude_unset=True)
    if case.state in CONFIRMED_STATES:
        refuse_emptying(
            changes, KEPT_ONCE_CONFIRMED, why="A confirmed case keeps its reason and responsible person"
        )
    if "placement_mode" in changes and (case.state != "placed" or changes["placement_mode"] is None):
        raise Conflict(
            "A placement mode is recorded on a placed case.", code="case_not_placed", state=case.state
        )
    if apply_changes(case, changes, expected_version=expected_version):
        case.updated_at = utcnow()
        await session.flush()
    return case
