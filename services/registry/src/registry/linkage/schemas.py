"""API models of the review queue and merges."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class ReviewItemPublic(BaseModel):
    id: int
    kind: str
    status: str
    child_id: str = Field(
        description="The record the item is about (an ID collision: the row's provisional record)"
    )
    other_child_id: str | None = Field(
        default=None,
        description=(
            "The other record: a link candidate's candidate; an ID collision's child holding the ID number "
            "(the record that remains after merges, which accepting merges into). Null when there is none "
            "or it is outside the caller's jurisdiction (then other_child_outside_jurisdiction is true)."
        ),
    )
    other_child_outside_jurisdiction: bool = Field(
        default=False,
        description="There is another record, but it is outside the caller's jurisdiction: its id is withheld",
    )
    attribute: str | None = None
    batch_id: str | None = None
    score: float | None = None
    evidence: dict[str, object] = {}
    hukou_town: str | None = None
    merge_id: int | None = None
    decided_at: dt.datetime | None = None
    created_at: dt.datetime


class MergePublic(BaseModel):
    id: int
    survivor_id: str
    merged_id: str
    reason: str
    created_at: dt.datetime
    undone_at: dt.datetime | None = None


class ReviewDecision(BaseModel):
    """How to settle an item (conflicts, unmatched addresses, sex and birth-date mismatches need it)."""

    assertion_id: int | None = Field(
        default=None,
        description="A conflict: the assertion whose value the child keeps (ids are in the child's provenance)",
    )
    hukou_village: str | None = Field(
        default=None,
        max_length=15,
        pattern=r"^[0-9]{12,15}$",
        description="An unmatched address: the village (community) code of the hukou place, from the directory",
    )
    hukou_town: str | None = Field(
        default=None,
        max_length=12,
        pattern=r"^[0-9]{9,12}$",
        description="An unmatched address: the town code, when no village is known (implied by hukou_village)",
    )
    sex: Literal["M", "F"] | None = Field(
        default=None,
        description="An id_sex_mismatch: the sex the child keeps (M or F), the ID number's or the row's",
    )
    birth_date: dt.date | None = Field(
        default=None,
        description=(
            "An id_birth_date_mismatch: the birth date the child keeps, of compulsory school age (6-14) on "
            "the cut-off date of the period of the item's batch"
        ),
    )
