"""The registry service's own metadata: its domain tables plus the library's (outbox, inbox, audit, jobs)."""

from baoxue.db import model_base
from baoxue.tables import define_mechanism_tables

RegistryModel = model_base("RegistryModel")
metadata = RegistryModel.metadata
MECHANISMS = define_mechanism_tables(metadata)
