"""Settings of the enrollment service (environment prefix ``ENROLLMENT_``, then ``BAOXUE_``)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from baoxue.settings import ServiceSettings


class EnrollmentSettings(ServiceSettings):
    service_name: ClassVar[str] = "enrollment"
    model_config = SettingsConfigDict(env_prefix="ENROLLMENT_", extra="ignore")

    port: int = 8102
