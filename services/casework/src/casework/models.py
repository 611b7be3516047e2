"""Imports every table module of the casework service so the metadata is complete (for Alembic)."""

from casework.cases import models as cases
from casework.census import models as census
from casework.readmodels import models as readmodels
from casework.visits import models as visits

__all__ = ["cases", "census", "readmodels", "visits"]
