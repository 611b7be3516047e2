"""Imports every table module of the notify service so the metadata is complete (for Alembic)."""

from notify.blacklist import models as blacklist_models
from notify.bulletins import models as bulletin_models
from notify.calendar import models as calendar_models
from notify.deadlines import models as deadline_models
from notify.delivery import models as delivery_models
from notify.documents import models as document_models
from notify.escalation import models as escalation_models
from notify.referrals import models as referral_models
from notify.reports import models as report_models

__all__ = [
    "blacklist_models",
    "bulletin_models",
    "calendar_models",
    "deadline_models",
    "delivery_models",
    "document_models",
    "escalation_models",
    "referral_models",
    "report_models",
]
