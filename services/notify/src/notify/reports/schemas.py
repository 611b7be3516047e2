"""API models of the dropout reports."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class DropoutReportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"period": "2026-10"}]})

    period: str = Field(pattern=r"^20\d{2}-(03|10)$", description="YYYY-03 (end of March) or YYYY-10")


class DropoutRow(BaseModel):
    town: str
    town_name: str
    school: str | None = Field(description="None: children out of school without a school (hukou town)")
    school_name: str | None
    suspected: int = Field(description="cases opened in the window")
    confirmed: int
    returned: int
    escalated: int = Field(description="guardians refused: escalation to the town requested")
    reopened: int = Field(
        default=0,
        description=(
            "children who had returned and dropped out again (复学后再次辍学): a closed case reopened by a new "
            "dropout signal, or an open case's relapse (returned → persuading); a case counts once. 0 in "
            "reports before the figure existed; open cases' relapses only from reports after 29 Nov 2026"
        ),
    )


class DropoutReportPublic(BaseModel):
    id: str
    period: str
    version: int
    window_start: dt.date
    as_of: dt.date
    final: bool
    rows: list[DropoutRow]
    totals: dict[str, int]
    generated_at: dt.datetime
