"""API models of cases: create, update, transitions, persuasion, reports, attendance, care plans."""

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from baoxue.dropout_reasons import DropoutReason
from baoxue.patches import refuse_null

CaseStateCode = Literal["suspected", "confirmed", "persuading", "returned", "placed", "escalated", "closed"]
ClosureReason = Literal["returned", "placed", "excluded", "unfounded"]
PlacementMode = Literal["regular_class", "special_school", "home_delivery", "remote", "institution_class"]
PersuasionForm = Literal["home_visit", "phone", "town_meeting", "village_committee"]
PersuasionOutcome = Literal["agreed_to_return", "considering", "refused", "not_reached"]
ORG_CODE_PATTERN = r"^\d{6}[0-9A-Z]{0,14}$"


class CaseCreate(BaseModel):
    """A school opens a case by hand. The child is named by surrogate ids or, if it has none here, by ID number."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "student_id": "stu-00042",
                    "school_code": "37040600101001",
                    "hukou_town": "370406001",
                    "reason": "learning_weariness",
                    "analysis": "连续三周未到校，家长称孩子不愿上学",
                    "responsible_person": "班主任王老师",
                    "planned_measures": ["班主任家访", "心理辅导"],
                    "detected_on": "2026-11-20",
                }
            ]
        },
    )

    child_id: str | None = Field(None, max_length=64)
    student_id: str | None = Field(None, max_length=64)
    id_number: str | None = Field(
        None, max_length=32, description="Citizen ID; stored encrypted, shown masked."
    )
    school_code: str | None = Field(
        None,
        pattern=ORG_CODE_PATTERN,
        max_length=20,
        description="The child's school; left out, the caller's own school (school role). A school "
        "district names one of its schools.",
    )
    hukou_town: str | None = Field(None, pattern=r"^\d{9}$")
    reason: DropoutReason | None = None
    analysis: str | None = Field(None, max_length=4000)
    responsible_person: str | None = Field(None, max_length=100)
    planned_measures: list[str] = Field(default_factory=list, max_length=20)
    detected_on: dt.date | None = None

    @model_validator(mode="after")
    def _names_a_child(self) -> "CaseCreate":
        if not (self.child_id or self.student_id or self.id_number):
            raise ValueError("name the child: child_id, student_id or id_number")
        return self


class CaseUpdate(BaseModel):
    """Fields a school may edit on an open case (send If-Match). A field left out is unchanged, an
    explicit ``null`` clears it; a confirmed dropout keeps its reason and responsible person (一人一案),
    so from confirmation on emptying either is refused."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"analysis": "家庭经济困难，父母外出务工", "planned_measures": ["申请助学金"]}]
        },
    )

    reason: DropoutReason | None = Field(
        None, description="Cannot be emptied (null) once the case is confirmed: 422 naming the field."
    )
    analysis: str | None = Field(None, max_length=4000)
    responsible_person: str | None = Field(
        None,
        max_length=100,
        description="Cannot be emptied (null or blank) once the case is confirmed: 422 naming the field.",
    )
    planned_measures: list[str] | None = Field(None, max_length=20)
    placement_mode: PlacementMode | None = Field(
        None,
        description="Placed cases only: how the child is placed, e.g. after the escalation ladder "
        "resolved the case as placed without one (awaiting_placement_mode).",
    )

    _not_null = refuse_null("planned_measures")


class EvidenceItem(BaseModel):
    kind: Literal[
        "persuasion_record", "written_refusal", "photo", "witness_statement", "notice_receipt", "other"
    ]
    description: str = Field(max_length=500)
    file_hash: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


class TransitionRequest(BaseModel):
    """Move a case to another state. Each target needs its own fields (see the descriptions)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"to": "confirmed", "reason": "guardian_refusal", "responsible_person": "李校长"},
                {
                    "to": "escalated",
                    "evidence": [{"kind": "written_refusal", "description": "家长拒绝书面材料"}],
                },
                {"to": "closed", "closure_reason": "returned"},
            ]
        },
    )

    to: CaseStateCode = Field(
        description="The target state. Besides the issue's path: returned → persuading (the child stopped "
        "attending again before closure) and escalated → persuading (the school takes the case back)."
    )
    on: dt.date | None = Field(
        None,
        description="Effective date (default: today). May be back-dated, but not before the case's latest "
        "transition (its opening, or the move before) and not after today: 422 transition_date_too_early "
        "(naming `earliest`) or transition_date_in_future (naming `latest`).",
    )
    note: str | None = Field(None, max_length=500)
    reason: DropoutReason | None = Field(None, description="confirmed: required unless the case has one")
    responsible_person: str | None = Field(None, max_length=100, description="confirmed: required unless set")
    placement_mode: PlacementMode | None = Field(None, description="placed: required")
    closure_reason: ClosureReason | None = Field(None, description="closed: required")
    evidence: list[EvidenceItem] = Field(
        default_factory=list, max_length=50, description="escalated: at least one"
    )


class CasePublic(BaseModel):
    id: str
    child_id: str | None
    student_id: str | None
    id_number_masked: str | None = None
    school_code: str | None
    hukou_town: str | None
    hukou_school_district: str | None
    state: CaseStateCode
    reason: str | None
    analysis: str | None
    responsible_person: str | None
    planned_measures: list[str]
    opened_signal: str
    opened_on: dt.date
    signal_count: int
    confirmed_on: dt.date | None
    report_due: dt.date | None
    reported_on: dt.date | None
    report_overdue: bool = False
    returned_on: dt.date | None
    placement_mode: str | None
    awaiting_placement_mode: bool = Field(
        False,
        description="Placed without a placement mode (the escalation ladder resolved it as placed): the "
        "school records the mode with PATCH placement_mode (closing as placed is refused until then).",
    )
    escalation_level: str | None
    escalation_episode: int | None = Field(
        None,
        description="Read-only. The episode of the escalation ladder the case follows, as notify's ladder "
        "events state it: the case's version when it published the event that started the ladder or last "
        "lifted it (its confirmation, relapse or escalation request). A case reopened or relapsed starts "
        "a new episode, whose ladder has a higher one; ladder events of a lower episode (an earlier "
        "episode's, delivered late) are ignored. null until an event of a ladder carrying an episode has "
        "arrived; kept when the case is reopened.",
        json_schema_extra={"readOnly": True},
    )
    closed_on: dt.date | None
    closure_reason: str | None
    watch_until: dt.date | None
    reopen_count: int
    version: int


class PersuasionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "attempted_on": "2026-11-21",
                    "by": "班主任王老师",
                    "form": "home_visit",
                    "outcome": "considering",
                    "next_step": "请村委会协助再次上门",
                    "next_step_on": "2026-11-25",
                }
            ]
        },
    )

    attempted_on: dt.date
    by: str = Field(max_length=100)
    form: PersuasionForm
    outcome: PersuasionOutcome
    notes: str | None = Field(None, max_length=2000)
    next_step: str | None = Field(None, max_length=500)
    next_step_on: dt.date | None = None


class PersuasionPublic(PersuasionCreate):
    model_config = ConfigDict(extra="ignore")
    id: int
    case_id: str


class ReportCreate(BaseModel):
    """The dropout report. It is filed on the day the server receives it (``filed_on`` in the answer); a
    client cannot state another day."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "basic_info": "七年级学生，2026年11月起未到校",
                    "reason": "learning_weariness",
                    "measures": "班主任两次家访，村委会协助",
                    "result": "家长同意下周返校",
                }
            ]
        },
    )

    basic_info: str = Field(max_length=4000)
    reason: DropoutReason
    measures: str = Field(max_length=4000)
    result: str = Field(max_length=4000)


class ReportPublic(BaseModel):
    case_id: str
    episode: int = Field(description="The case's reopen count when the report was filed (0: first episode)")
    basic_info: str
    reason: str
    measures: str
    result: str
    town_code: str | None
    bureau_code: str
    filed_on: dt.date = Field(description="The day the server received the report (China's calendar)")
    report_due: dt.date
    on_time: bool = Field(description="filed_on is on or before report_due")


class AttendanceCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"from_date": "2026-11-02", "to_date": "2026-11-27", "days_attended": 20}]
        },
    )

    from_date: dt.date
    to_date: dt.date
    days_attended: int = Field(ge=1, le=200)

    @model_validator(mode="after")
    def _ordered(self) -> "AttendanceCreate":
        if self.to_date < self.from_date:
            raise ValueError("to_date is before from_date")
        if self.days_attended > (self.to_date - self.from_date).days + 1:
            raise ValueError("more days attended than days in the period")
        return self


class AttendancePublic(AttendanceCreate):
    model_config = ConfigDict(extra="ignore")
    total_days: int
    required_days: int


class CarePlanPut(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "academic_help": "数学老师每周两次课后辅导",
                    "counselling": "心理老师每两周谈话一次",
                    "family_care": "协助申请教育资助",
                    "mentor": "王老师",
                    "review_on": "2027-01-10",
                }
            ]
        },
    )

    academic_help: str | None = Field(None, max_length=1000)
    counselling: str | None = Field(None, max_length=1000)
    family_care: str | None = Field(None, max_length=1000)
    mentor: str | None = Field(None, max_length=100)
    review_on: dt.date | None = None


class CarePlanPublic(CarePlanPut):
    model_config = ConfigDict(extra="ignore")
    case_id: str
    version: int
