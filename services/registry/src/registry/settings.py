"""Settings of the registry service (environment prefix ``REGISTRY_``, then ``BAOXUE_``)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from baoxue.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    service_name: ClassVar[str] = "registry"
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")

    port: int = 8101
