"""API models of the escalation domain."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class EscalationStepPublic(BaseModel):
    level: str
    kind: str
    trigger: str
    on: dt.date
    deadline: dt.date | None
    actor_org: str | None
    note: str | None
    document_id: str | None


class EscalationPublic(BaseModel):
    id: str
    case_id: str
    child_id: str | None
    school_code: str | None
    hukou_town: str | None
    level: str
    level_label_zh: str
    acting_org: str
    state: str
    resolution: str | None
    level_entered_on: dt.date
    level_deadline: dt.date
    warnings: list[str]
    version: int
    steps: list[EscalationStepPublic] = []


class EscalationAction(BaseModel):
    """What the acting organisation did (e.g. served the order, the justice bureau issued its document)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "限期改正通知书已当面送达监护人", "document_id": None}]},
    )

    note: str = Field(min_length=2, max_length=500)
    document_id: str | None = Field(default=None, max_length=36)
    on: dt.date | None = None


class EscalationDecision(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"note": "监护人明确拒绝送学"}]}
    )

    note: str = Field(min_length=2, max_length=500)
