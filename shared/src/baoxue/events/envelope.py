"""The CloudEvents 1.0 envelope and the base class of every event contract."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

SERVICES = ("registry", "enrollment", "casework", "notify")


class EventData(BaseModel):
    """Base of every event's ``data``: past-tense name, owning service, aggregate, version.

    Subclasses live in :mod:`baoxue.contracts` and set the four class variables. Event data never holds
    a raw ID number or phone number: children travel as surrogate ids and blind indexes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: ClassVar[str]
    aggregate: ClassVar[str]
    event: ClassVar[str]
    version: ClassVar[int] = 1

    @classmethod
    def event_type(cls) -> str:
        """The CloudEvents ``type``: ``baoxue.<service>.<aggregate>.<event>.v<version>``."""
        return f"baoxue.{cls.service}.{cls.aggregate}.{cls.event}.v{cls.version}"

    @classmethod
    def relative_subject(cls) -> str:
        """The NATS subject without the namespace: ``<service>.<aggregate>.<event>``."""
        return f"{cls.service}.{cls.aggregate}.{cls.event}"


class Envelope(BaseModel):
    """A CloudEvents 1.0 event as it travels on NATS (structured JSON mode)."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str
    type: str
    subject: str = Field(description="The aggregate's surrogate id (never personal data).")
    time: dt.datetime
    datacontenttype: Literal["application/json"] = "application/json"
    sequence: int = Field(
        ge=0, description="Version of the aggregate after this event; consumers drop older."
    )
    traceid: str | None = None
    data: dict[str, Any]

    @classmethod
    def wrap(cls, data: EventData, *, subject: str, sequence: int, trace_id: str | None) -> Envelope:
        return cls(
            source=f"/baoxue/{data.service}",
            type=data.event_type(),
            subject=subject,
            time=dt.datetime.now(dt.UTC),
            sequence=sequence,
            traceid=trace_id,
            data=data.model_dump(mode="json"),
        )


def stream_name(namespace: str, service: str) -> str:
    """The JetStream stream that holds ``service``'s events in ``namespace``."""
    return f"{namespace}_{service}".upper()


def stream_subjects(namespace: str, service: str) -> list[str]:
    return [f"{namespace}.{service}.>"]


def nats_subject(namespace: str, relative: str) -> str:
    return f"{namespace}.{relative}"
