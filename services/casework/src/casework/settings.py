"""Settings of the casework service (environment prefix ``CASEWORK_``, then ``BAOXUE_``)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from baoxue.settings import ServiceSettings


class CaseworkSettings(ServiceSettings):
    service_name: ClassVar[str] = "casework"
    model_config = SettingsConfigDict(env_prefix="CASEWORK_", extra="ignore")

    port: int = 8103
