"""Settings of the registry service (environment prefix ``REGISTRY_``, then ``BAOXUE_``)."""

import datetime as dt
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from baoxue.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    service_name: ClassVar[str] = "registry"
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")

    port: int = 8101
    school_age_cutoff_month_day: str = "08-31"
    """Cut-off (MM-DD) on which a child must be 6-14 full years old; the year is the feed period's year."""
    feed_max_bytes: int = 512 * 1024 * 1024
    feed_max_rows: int = 2_000_000

    def cutoff_for(self, period: str) -> dt.date:
        """The school-age cut-off date that applies to a feed period (``YYYY-MM``)."""
        month, day = (int(x) for x in self.school_age_cutoff_month_day.split("-"))
        return dt.date(int(period[:4]), month, day)
