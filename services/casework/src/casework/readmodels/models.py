"""Read models fed by other services' events."""

import datetime as dt

from sqlmodel import Field

from casework.database import CaseworkModel


class StudentRecord(CaseworkModel, table=True):
    """A student record (学籍) as enrollment last published it."""

    __tablename__ = "student_records"

    student_id: str = Field(primary_key=True, max_length=64)
    child_id: str | None = Field(default=None, max_length=64, index=True)
    id_blind_index: str | None = Field(default=None, max_length=128, index=True)
    school_code: str = Field(max_length=20)
    status: str = Field(max_length=20)
    sequence: int


class ChildRegistryStatus(CaseworkModel, table=True):
    """A child's registry status (active, deceased, moved out …) as the registry last published it."""

    __tablename__ = "child_registry_status"

    child_id: str = Field(primary_key=True, max_length=64)
    status: str = Field(max_length=20)
    effective_date: dt.date
    sequence: int
