"""API models of the bulletins and scorecards domain."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class BulletinPublic(BaseModel):
    id: str
    campaign_id: str
    kind: str
    year: int
    as_of: dt.date
    result_version: int
    children_in_scope: int
    counts_by_outcome: dict[str, int]
    counts_by_town: dict[str, dict[str, int]]
    tasks_total: int
    tasks_open: int
    published_at: dt.datetime | None


class Scorecard(BaseModel):
    org: str
    name_zh: str | None = Field(description="The organisation's name (directory)")
    verification_tasks: int
    verification_completion: float | None
    dropouts: int
    returned: int
    return_rate: float | None
    reports_due: int
    report_timeliness: float | None
    census_due: int
    census_timeliness: float | None
    visits: int
    students_visited: int
    roster_students: int | None = Field(
        description="Students on the rosters of the year's semesters that have one (student-semesters); "
        "null: no roster known"
    )
    roster_students_visited: int | None = Field(
        description="Of them visited (distinct students visited, at most the roster); null: no roster"
    )
    visit_coverage: float | None = Field(
        description="家访覆盖率 roster_students_visited / roster_students; null: no roster (or it lists nobody)"
    )
    special_visits_due: int | None = Field(
        description="Visits the roster's special-group students owe (students × NOTIFY_VISIT_QUOTA_SPECIAL_GROUP)"
    )
    special_visits_made: int | None = Field(
        description="Visits made towards that quota (each student's up to it)"
    )
    special_coverage: float | None = Field(
        description="special_visits_made / special_visits_due; null: no roster or no special-group student"
    )
    visited_without_roster: int = Field(description="Students visited in semesters without a roster")
    lapsed: int


class CriticismEntry(BaseModel):
    org: str
    name_zh: str | None
    reasons: list[str]
