"""API models of children: list items, detail with provenance and history, look-up by ID number."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class ChildSummary(BaseModel):
    id: str
    name: str | None
    id_number: str | None = Field(description="Masked unless your role allows more and you stated a purpose")
    sex: str | None
    birth_date: dt.date | None
    hukou_town: str | None
    hukou_village: str | None
    hukou_school_district: str | None
    categories: list[str]
    sources: list[str]
    status: str
    merged_into: str | None = None
    needs_review: bool
    version: int


class Assertion(BaseModel):
    id: int = Field(description="The assertion's id (to choose it when accepting a conflict)")
    attribute: str
    value: str
    department: str
    first_period: str
    last_period: str
    first_batch_id: str
    last_batch_id: str
    record_id: str = Field(
        description="The record that received it (a merged duplicate's id, or the child's)"
    )


class Flag(BaseModel):
    category: str
    department: str
    valid_from: str
    last_confirmed: str
    status: str
    lapsed_period: str | None = None


class HistoryEntry(BaseModel):
    kind: str
    at: dt.datetime
    batch_id: str | None = None
    reference: str | None = None
    detail: dict[str, object] = {}


class ChildDetail(ChildSummary):
    status_effective: dt.date | None = None
    hukou_address: str | None
    current_address: str | None
    guardian_name: str | None
    guardian_phone: str | None = Field(
        description="Masked unless your role allows more and you stated a purpose (stored encrypted)"
    )
    disability_type: str | None
    disability_grade: str | None
    unmasked: bool
    merged_records: list[str]
    provenance: list[Assertion]
    flags: list[Flag]
    history: list[HistoryEntry]


class LookupRequest(BaseModel):
    """Find a child by ID number: in a POST body, never in a URL."""

    model_config = ConfigDict(json_schema_extra={"example": {"id_number": "370406201605020659"}})

    id_number: str = Field(min_length=1, max_length=40)
