"""API models of the bulletins and scorecards domain."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


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
    lapsed: int


class CriticismEntry(BaseModel):
    org: str
    name_zh: str | None
    reasons: list[str]
