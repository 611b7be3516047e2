"""API models of home visits, batch sync, rosters and coverage."""

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from baoxue.patches import refuse_null
from baoxue.text import unstorable
from casework.census.schemas import Category
from casework.semesters import SEMESTER_PATTERN

VisitForm = Literal["home_visit", "phone", "video", "school_meeting"]
PhotoHash = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-fA-F]{64}$"),
    AfterValidator(str.lower),
    Field(description="SHA-256 of the photo in hex; stored in lower case (upper case is the same photo)"),
]
"""A photo's SHA-256 in hex. Upper case is accepted and lower-cased, so one photo has one hash (the reuse
check compares stored hashes exactly); anything else is a 422 naming the hash."""


def _storable(value: str) -> str:
    """Refuse what no store takes (a NUL, another control character but tab and line breaks, a lone
    surrogate): PostgreSQL would refuse the row, and in a batch that is one item's problem."""
    found = unstorable(value)
    if found:  # code "control_character" or "invalid_text" (both found: the first)
        raise PydanticCustomError(
            min(found), "Text with a control character or a broken character cannot be stored"
        )
    return value


Text = Annotated[str, AfterValidator(_storable)]
"""Free text of a visit: refused at the schema (422 naming the field) when the database could not store it."""

_VISIT_EXAMPLE: dict[str, Any] = {
    "id": "0b7c4a58-3f0e-4d8e-9c57-2f8a8f1d6a10",
    "student_id": "stu-00042",
    "school_code": "37040600101001",
    "teacher": "t-wang-0417",
    "semester": "2026-autumn",
    "visited_on": "2026-11-20",
    "form": "home_visit",
    "participants": ["班主任", "母亲"],
    "notes": "学生在家表现良好",
    "latitude": 34.98,
    "longitude": 117.46,
    "photo_hashes": ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
}


class VisitCreate(BaseModel):
    """A visit as the mobile app records it; ``id`` is a UUID the app generates once per visit."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_VISIT_EXAMPLE]})

    id: str = Field(pattern=r"^[0-9a-fA-F-]{36}$", description="Client-generated UUID")
    student_id: Text = Field(max_length=64)
    school_code: str | None = Field(None, pattern=r"^\d{14}$", description="Default: the caller's school")
    class_code: Text | None = Field(None, max_length=40)
    teacher: Text | None = Field(None, max_length=100, description="Staff id; default: the caller")
    case_id: Text | None = Field(None, max_length=36)
    semester: str | None = Field(None, pattern=SEMESTER_PATTERN, description="Default: from visited_on")
    visited_on: dt.date
    form: VisitForm
    participants: list[Text] = Field(default_factory=list, max_length=20)
    notes: Text | None = Field(None, max_length=4000)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    photo_hashes: list[PhotoHash] = Field(default_factory=list, max_length=20)


class VisitUpdate(BaseModel):
    """Fields the teacher may correct later (send If-Match)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"notes": "补充：家长同意参加家长学校"}]}
    )

    visited_on: dt.date | None = None
    form: VisitForm | None = None
    participants: list[Text] | None = Field(None, max_length=20)
    notes: Text | None = Field(None, max_length=4000)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    photo_hashes: list[PhotoHash] | None = Field(None, max_length=20)

    _not_null = refuse_null("visited_on", "form", "participants", "photo_hashes")


class VisitPublic(BaseModel):
    id: str
    student_id: str
    school_code: str
    class_code: str | None
    teacher: str
    case_id: str | None
    semester: str
    visited_on: dt.date
    form: str
    participants: list[str]
    notes: str | None
    latitude: float | None
    longitude: float | None
    photo_hashes: list[str]
    flags: list[str]
    special_group: bool
    version: int


class VisitBatch(BaseModel):
    """A day's offline visits in one call. Items are validated one by one: a bad item is reported, the
    good ones are kept. An item is documented as an object (a VisitCreate) but any JSON value is taken
    here, so that one that is not an object (``null``, a number) is rejected alone, like any other item
    that is no valid VisitCreate, instead of refusing the day's batch; the batch itself is still refused
    as a whole when it is not a list of 1 to 200 items."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"visits": [_VISIT_EXAMPLE]}]})

    visits: list[Annotated[Any, WithJsonSchema({"type": "object"})]] = Field(
        min_length=1,
        max_length=200,
        description="VisitCreate objects; an item that is not one is rejected alone (status rejected)",
    )


class BatchItemResult(BaseModel):
    index: int
    id: str | None
    status: Literal["created", "duplicate", "rejected"]
    code: str | None = None
    detail: str | None = None
    errors: list[dict[str, Any]] = []
    flags: list[str] = []
    version: int | None = None


class BatchResult(BaseModel):
    created: int
    duplicates: int
    rejected: int
    items: list[BatchItemResult]


class RosterStudent(BaseModel):
    student_id: str = Field(max_length=64)
    child_id: str | None = Field(None, max_length=64)
    class_code: str | None = Field(None, max_length=40)
    teacher: str | None = Field(None, max_length=100)
    categories: list[Category] = Field(
        default_factory=list,
        max_length=12,
        description="Special-group codes (code list child_category, as in the census); another is a 422",
    )


class RosterPut(BaseModel):
    """The school's students for a semester (replaces the previous roster of that semester)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "students": [
                        {
                            "student_id": "stu-00042",
                            "class_code": "7-2",
                            "teacher": "t-wang-0417",
                            "categories": ["left_behind"],
                        },
                        {"student_id": "stu-00043", "class_code": "7-2", "teacher": "t-wang-0417"},
                    ]
                }
            ]
        },
    )

    students: list[RosterStudent] = Field(max_length=10000)


class RosterResult(BaseModel):
    school_code: str
    semester: str
    students: int
    special_group: int


class CoverageRow(BaseModel):
    key: str | None = Field(description="school code, class code or teacher, by the grouping asked for")
    school_code: str
    students: int
    visited_at_least_once: int
    special_students: int
    special_quota_met: int
    owed: int = Field(description="students who still owe visits (fewer than their quota)")
    flagged_visits: int


class OwedStudent(BaseModel):
    student_id: str
    school_code: str
    class_code: str | None
    teacher: str | None
    categories: list[str]
    required_visits: int
    visits_done: int
