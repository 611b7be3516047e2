"""API models of the census and the support plans."""

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from baoxue.patches import refuse_null

Category = Literal[
    "registered_poor",
    "disabled",
    "left_behind",
    "orphan",
    "low_income",
    "extreme_poverty",
    "prisoner_child",
    "migrant",
    "economic_hardship",
    "learning_difficulty",
]


class CensusStudent(BaseModel):
    student_id: str = Field(max_length=64)
    child_id: str | None = Field(None, max_length=64)
    categories: list[Category] = Field(min_length=1, max_length=10)


class CensusMark(BaseModel):
    """Special-needs students a school marks (adds or replaces by student id)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"students": [{"student_id": "stu-00042", "categories": ["left_behind", "registered_poor"]}]}
            ]
        },
    )

    students: list[CensusStudent] = Field(min_length=1, max_length=5000)


class CensusSchoolStatus(BaseModel):
    school_code: str
    due_on: dt.date
    students_marked: int
    completed: bool
    completed_on: dt.date | None
    on_time: bool | None
    late: bool = Field(description="completed after the due date, or still open after it")


class CensusSummary(BaseModel):
    semester: str
    due_on: dt.date
    schools: int
    completed: int
    on_time: int
    late: int
    missing: int
    by_school: list[CensusSchoolStatus]


class CensusCompletedPublic(BaseModel):
    id: str
    school_code: str
    semester: str
    due_on: dt.date
    completed_on: dt.date
    on_time: bool
    students: int
    counts_by_category: dict[str, int]


class PlanCreate(BaseModel):
    """A support plan: per student (一生一案) or per registered-poor family (一家一案)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "student",
                    "student_id": "stu-00042",
                    "measures": ["结对帮扶", "每周谈心"],
                    "mentor": "t-wang-0417",
                    "aid": "营养改善计划",
                    "review_on": "2027-01-10",
                },
                {
                    "kind": "family",
                    "family_ref": "hh-3704060011",
                    "student_ids": ["stu-00042", "stu-00077"],
                    "measures": ["教育资助"],
                    "aid": "雨露计划",
                    "review_on": "2027-01-10",
                },
            ]
        },
    )

    kind: Literal["student", "family"]
    school_code: str | None = Field(None, pattern=r"^\d{14}$", description="Default: the caller's school")
    student_id: str | None = Field(None, max_length=64, description="kind=student")
    family_ref: str | None = Field(None, max_length=64, description="kind=family: the household's reference")
    student_ids: list[str] = Field(
        default_factory=list, max_length=10, description="kind=family: its students"
    )
    measures: list[str] = Field(min_length=1, max_length=20)
    mentor: str | None = Field(None, max_length=100)
    aid: str | None = Field(None, max_length=1000)
    review_on: dt.date

    @model_validator(mode="after")
    def _subject(self) -> "PlanCreate":
        if self.kind == "student" and not self.student_id:
            raise ValueError("a student plan names student_id")
        if self.kind == "family" and not (self.family_ref and self.student_ids):
            raise ValueError("a family plan names family_ref and student_ids")
        return self


class PlanUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"mentor": "t-li-0203"}]})

    measures: list[str] | None = Field(None, min_length=1, max_length=20)
    mentor: str | None = Field(None, max_length=100)
    aid: str | None = Field(None, max_length=1000)
    review_on: dt.date | None = None

    _not_null = refuse_null("measures", "review_on")


class PlanPublic(BaseModel):
    id: str
    kind: str
    school_code: str
    subject: str
    student_ids: list[str]
    measures: list[str]
    mentor: str | None
    aid: str | None
    review_on: dt.date
    version: int
