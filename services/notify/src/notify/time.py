"""Legal dates are in Asia/Shanghai."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def today_local() -> dt.date:
    """Today's date in Asia/Shanghai (deadlines are legal dates)."""
    return dt.datetime.now(SHANGHAI).date()
