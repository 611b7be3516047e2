"""Imports every table module of the enrollment service so the metadata is complete (for Alembic)."""

from enrollment.children import models as children
from enrollment.deferrals import models as deferrals
from enrollment.placements import models as placements
from enrollment.provincial import models as provincial
from enrollment.signals import models as signals
from enrollment.students import models as students
from enrollment.verification import models as verification

__all__ = ["children", "deferrals", "placements", "provincial", "signals", "students", "verification"]
