"""The registry service's own metadata: its domain tables plus the library's (outbox, inbox, audit, jobs)."""

from typing import TYPE_CHECKING

from baoxue.db import model_base
from baoxue.tables import define_mechanism_tables

if TYPE_CHECKING:  # the type checker sees the SQLModel base that model_base() derives from
    from sqlmodel import SQLModel as RegistryModel
else:
    RegistryModel = model_base("RegistryModel")
metadata = RegistryModel.metadata
MECHANISMS = define_mechanism_tables(metadata)
