"""The casework service's own metadata: its domain tables plus the library's (outbox, inbox, audit, jobs)."""

from typing import TYPE_CHECKING

from baoxue.db import model_base
from baoxue.tables import define_mechanism_tables

if TYPE_CHECKING:  # mypy cannot use a base class made at run time; it sees a plain SQLModel subclass.
    from sqlmodel import SQLModel

    class CaseworkModel(SQLModel):
        pass
else:
    CaseworkModel = model_base("CaseworkModel")

metadata = CaseworkModel.metadata
MECHANISMS = define_mechanism_tables(metadata)
