"""Settings of the notify service (environment prefix ``NOTIFY_``, then ``BAOXUE_``)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from baoxue.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    service_name: ClassVar[str] = "notify"
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    port: int = 8104
