"""API models of feeds: batches, rows (JSON submissions), the feed calendar."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class FeedRowIn(BaseModel):
    """One row of a JSON/NDJSON feed (Chinese header names are accepted as keys too)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "name": "张三",
                "id_number": "370406201605020659",
                "sex": "男",
                "birth_date": "2016-05-02",
                "hukou_address": "山东省枣庄市山亭区店子镇前庄村12号",
                "current_address": "山亭区店子镇前庄村12号",
                "guardian_name": "张建国",
                "guardian_phone": "13800000000",
                "categories": "常住",
            }
        }
    )

    name: str | None = None
    id_number: str | None = None
    sex: str | None = None
    birth_date: str | None = None
    hukou_address: str | None = None
    current_address: str | None = None
    guardian_name: str | None = None
    guardian_phone: str | None = None
    categories: str | None = None
    disability_type: str | None = None
    disability_grade: str | None = None


class FeedBatchIn(BaseModel):
    """A JSON batch (for large batches send NDJSON, one row object per line, instead)."""

    rows: list[FeedRowIn] = Field(max_length=100_000)


class FeedBatchPublic(BaseModel):
    id: str
    department: str
    period: str
    mode: str
    source_format: str
    status: str
    error_code: str | None = None
    job_id: str | None = None
    client_batch_id: str | None = None
    delivery_complete: bool = Field(
        default=True,
        description="False: one part of the department's delivery for the period, more parts to follow "
        "(it lapses no category flag); true: the batch completes the delivery",
    )
    rows_total: int
    accepted: int
    rejected: int
    warnings: int
    children_registered: int
    children_updated: int
    linked: int
    review_items: int
    submitted_at: dt.datetime
    completed_at: dt.datetime | None = None
    duplicate: bool = Field(default=False, description="True when this submission repeated an earlier batch.")


class CalendarEntry(BaseModel):
    department: str
    period: str
    due: dt.date
    delivered: bool
    delivered_at: dt.datetime | None = Field(
        default=None, description="When the latest completed commit batch of the period was applied"
    )
    first_delivered_at: dt.datetime | None = Field(
        default=None, description="When the first one was (whether the delivery was on time)"
    )
    batch_id: str | None = Field(default=None, description="The latest completed commit batch")
    batches: int = Field(default=0, description="Completed commit batches of the period")
    complete: bool = Field(
        default=False,
        description="One of them completed the delivery (delivery_complete): the period's flag lapses are in",
    )
    accepted: int = Field(
        default=0,
        description="Children accepted, over all of the period's batches (a child sent again: once)",
    )
    rejected: int = Field(
        default=0,
        description="Rows rejected, over all of the period's batches (an ID number sent again: once)",
    )
    overdue: bool
