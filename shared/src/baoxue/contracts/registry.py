"""Events published by the registry service (subjects ``<namespace>.registry.<aggregate>.<event>``).

Children travel as their surrogate ``child_id`` and the keyed blind index of the ID number: never the
ID number, the name, the address text or a phone number.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from baoxue.events.envelope import EventData

RegistryStatus = Literal["active", "deceased", "moved_out", "duplicate", "missing"]


class RegistryEvent(EventData):
    """Base of the registry's events."""

    service: ClassVar[str] = "registry"


class ChildSnapshot(RegistryEvent):
    """The consumer-relevant state of one merged child record (full state: consumers upsert it)."""

    aggregate: ClassVar[str] = "child"
    child_id: str
    id_blind_index: str | None = None
    birth_date: dt.date | None = None
    sex: Literal["M", "F"] | None = None
    hukou_town: str | None = None
    hukou_village: str | None = None
    hukou_school_district: str | None = None
    categories: list[str] = []
    disability_type: str | None = None
    disability_grade: str | None = None
    status: RegistryStatus = "active"
    sources: list[str] = []


class ChildRegistered(ChildSnapshot):
    event: ClassVar[str] = "registered"


class ChildUpdated(ChildSnapshot):
    event: ClassVar[str] = "updated"


class ChildStatusChanged(RegistryEvent):
    """The child's registry status changed: a hukou correction (deceased, moved out, duplicate, missing), or
    a merge into another record (duplicate, merged_into: a feed's record linkage or a review's decision).

    ``merged_into`` names the record that remains. When it changes for a record already merged (the
    record it names is merged in turn, or the merge that made it name that one is undone), the record is
    announced again with ``status`` and ``previous_status`` both ``duplicate`` and the new ``merged_into``
    (``effective_date``: the date of that merge or undo)."""

    aggregate: ClassVar[str] = "child"
    event: ClassVar[str] = "status_changed"
    child_id: str
    status: RegistryStatus
    previous_status: RegistryStatus
    effective_date: dt.date
    merged_into: str | None = None
    correction_id: str | None = None
    hukou_town: str | None = None
    hukou_school_district: str | None = None


class FeedCompleted(RegistryEvent):
    """A department's feed batch was applied (counts only)."""

    aggregate: ClassVar[str] = "feed"
    event: ClassVar[str] = "completed"
    batch_id: str
    department: str
    period: str
    rows_total: int
    accepted: int
    rejected: int
    warnings: int = 0
    children_registered: int = 0
    children_updated: int = 0
