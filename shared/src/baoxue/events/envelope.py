"""The CloudEvents 1.0 envelope and the base class of every event contract."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from baoxue.entropy import uuid4_text

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
    id: str = Field(default_factory=uuid4_text)
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


_TIME = TypeAdapter(dt.datetime)


class EnvelopeBatch:
    """The envelopes of many events as JSON text, without an :class:`Envelope` model per event.

    Each text is exactly what ``Envelope.wrap(data, …).model_dump_json()`` gives for the same ``id`` and
    ``time`` (the event's own ``data`` is still its validated contract model); only the envelope around
    it is written as text, which saves ≈ 8 µs per event on bulk paths (a verification run publishes
    tens of thousands). One ``time`` for the batch: its events belong to one transaction.

    >>> batch = EnvelopeBatch(trace_id=None)
    >>> event_id, text = batch.dump(data, subject=task.id, sequence=1)
    """

    def __init__(self, *, trace_id: str | None, time: dt.datetime | None = None) -> None:
        self._time = _TIME.dump_json(time or dt.datetime.now(dt.UTC)).decode()
        self._trace = json.dumps(trace_id, ensure_ascii=False)
        self._heads: dict[type[EventData], str] = {}

    def _head(self, cls: type[EventData]) -> str:
        head = self._heads.get(cls)
        if head is None:
            source = json.dumps(f"/baoxue/{cls.service}", ensure_ascii=False)
            head = self._heads[cls] = f',"source":{source},"type":{json.dumps(cls.event_type())},"subject":'
        return head

    def dump(self, data: EventData, *, subject: str, sequence: int) -> tuple[str, str]:
        """A new event id and the envelope's JSON text."""
        if sequence < 0:  # Envelope.sequence is ge=0
            raise ValueError(f"sequence must be ≥ 0, got {sequence}")
        event_id = uuid4_text()
        text = (
            f'{{"specversion":"1.0","id":"{event_id}"{self._head(type(data))}'
            f'{json.dumps(subject, ensure_ascii=False)},"time":{self._time},'
            f'"datacontenttype":"application/json","sequence":{int(sequence)},"traceid":{self._trace},'
            f'"data":{data.model_dump_json()}}}'
        )
        return event_id, text


def stream_name(namespace: str, service: str) -> str:
    """The JetStream stream that holds ``service``'s events in ``namespace``."""
    return f"{namespace}_{service}".upper()


def stream_subjects(namespace: str, service: str) -> list[str]:
    return [f"{namespace}.{service}.>"]


def nats_subject(namespace: str, relative: str) -> str:
    return f"{namespace}.{relative}"
