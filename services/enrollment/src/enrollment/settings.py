"""Settings of the enrollment service (environment prefix ``ENROLLMENT_``, then ``BAOXUE_``)."""

from typing import TYPE_CHECKING, ClassVar

from pydantic_settings import SettingsConfigDict

from baoxue.settings import ServiceSettings

if TYPE_CHECKING:
    from baoxue.service import ServiceContext


class EnrollmentSettings(ServiceSettings):
    service_name: ClassVar[str] = "enrollment"
    model_config = SettingsConfigDict(env_prefix="ENROLLMENT_", extra="ignore")

    port: int = 8102
    transfer_workdays: int = 10
    """Working days within which a transfer must be completed before it is flagged as hanging."""
    absence_days_for_signal: int = 28
    """Four weeks of unexcused absence make a suspected dropout: the run of absence spans at least this many
    days up to the report …"""
    absence_school_days_for_signal: int = 20
    """… and at least this many school days of it were missed without excuse (four weeks of five days)."""
    vocational_confirm_days: int = 30
    """Days within which a vocational school must confirm a junior-3 leaver's record."""
    deferral_window_months: tuple[int, ...] = (9,)
    """Months in which deferral/exemption applications are filed (early September by the notice): checked
    on the day the server receives the application (China's day), not on the ``filed_on`` it states."""
    sweep_enabled: bool = True
    sweep_interval_seconds: float = 3600.0
    campaign_refresh_seconds: float = 30.0
    """How often campaigns whose data changed (a new feed) are run again."""
    provincial_base_url: str = "http://127.0.0.1:8190"
    provincial_batch_size: int = 500


def settings_of(ctx: "ServiceContext") -> EnrollmentSettings:
    """The running service's settings, typed (the library's context holds them as ServiceSettings)."""
    settings = ctx.settings
    assert isinstance(settings, EnrollmentSettings), "the enrollment service runs with EnrollmentSettings"
    return settings
