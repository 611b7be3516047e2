"""API models of hukou corrections."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CorrectionCreate(BaseModel):
    """A hukou correction from the police. ``duplicate`` needs ``duplicate_of``: the record that remains."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"kind": "deceased", "effective_date": "2026-10-08"},
                {
                    "kind": "duplicate",
                    "effective_date": "2026-10-08",
                    "duplicate_of": "7f1c2d3e-0000-4000-8000-000000000001",
                },
            ]
        }
    )

    kind: Literal["deceased", "moved_out", "duplicate", "missing"]
    effective_date: dt.date
    duplicate_of: str | None = Field(default=None, max_length=36)


class CorrectionPublic(BaseModel):
    id: str
    child_id: str
    kind: str
    effective_date: dt.date
    previous_status: str
    duplicate_of: str | None = None
    merge_id: int | None = None
    created_at: dt.datetime
    undone_at: dt.datetime | None = None
