"""Settings of the casework service (environment prefix ``CASEWORK_``, then ``BAOXUE_``)."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from baoxue.settings import ServiceSettings

# Default visits per semester owed to a student of a special group (k per category); others owe one.
DEFAULT_VISIT_QUOTAS: dict[str, int] = {
    "registered_poor": 2,
    "disabled": 2,
    "left_behind": 2,
    "orphan": 2,
    "low_income": 2,
    "extreme_poverty": 2,
    "prisoner_child": 2,
    "economic_hardship": 2,
    "learning_difficulty": 2,
}


class CaseworkSettings(ServiceSettings):
    service_name: ClassVar[str] = "casework"
    model_config = SettingsConfigDict(env_prefix="CASEWORK_", extra="ignore")

    port: int = 8103
    report_due_workdays: int = Field(
        10, ge=1, description="Working days after confirmation to file the dropout report."
    )
    attendance_days_for_closure: int = Field(
        20, ge=1, description="School days of confirmed attendance required before a returned case is closed."
    )
    relapse_watch_days: int = Field(
        183, ge=0, description="Days after closure in which a new signal reopens the case (one semester)."
    )
    report_sweep_seconds: float = Field(300.0, gt=0, description="How often overdue reports are looked for.")
    visit_quotas: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_VISIT_QUOTAS))
    census_window_days: int = Field(14, ge=1, description="Days after semester start to complete the census.")
