"""Settings: one pydantic-settings class per service, with a shared fallback prefix.

A service reads ``<SERVICE>_FOO`` first and ``BAOXUE_FOO`` second, so an operator can set what all
services share (NATS URL, keys) once and still override one service. Outside ``development`` the
settings refuse the well-known development secrets.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from baoxue.pii.crypto import key_from_setting, keys_from_setting

# Development-only key material. Public on purpose: anything signed or encrypted with it is worthless,
# which is why non-development environments refuse to start with it.
DEV_PII_KEYS = "dev1:ZGV2LW9ubHktc200LWtleQ=="  # b"dev-only-sm4-key" (16 bytes)
DEV_BLIND_INDEX_KEY = "ZGV2LW9ubHktYmxpbmQtaW5kZXgta2V5LTMyYnl0ZXM="
DEV_JWT_KEY_FILE = "var/dev-jwt-key.pem"

Environment = Literal["development", "test", "staging", "production"]


def _cipher_keys(setting: str) -> set[bytes]:
    """The key bytes of a ``pii_keys`` setting; none when it is malformed (the cipher built from it at
    start-up refuses it then, with the entry it cannot read)."""
    try:
        return set(keys_from_setting(setting).values())
    except ValueError:
        return set()


def _key(setting: str | None) -> bytes | None:
    """The bytes of a blind-index key setting; None when unset or malformed (refused where it is used)."""
    try:
        return None if setting is None else key_from_setting(setting, name="key")
    except ValueError:
        return None


def _is_development_key_file(path: str | None) -> bool:
    """The development token key (``baoxue.auth.tokens.ensure_dev_keypair`` writes it) by any path."""
    if path is None:
        return False
    dev = Path(DEV_JWT_KEY_FILE)
    return Path(path).name == dev.name or Path(path).resolve() == dev.resolve()


class ServiceSettings(BaseSettings):
    """Settings every Baoxue service has; subclasses set ``model_config`` with their own env prefix."""

    service_name: ClassVar[str] = "baoxue"
    shared_prefix: ClassVar[str] = "BAOXUE_"

    # A refused setting's error must not print the settings it was given: they hold the keys.
    model_config = SettingsConfigDict(env_prefix="BAOXUE_", extra="ignore", hide_input_in_errors=True)

    environment: Environment = "development"
    simulation: bool = Field(
        default=False,
        description=(
            "The demo's stack plays a statutory year in minutes, so the days a service would take from its "
            "own clock come from the caller: a census completed on a past day of the semester (casework), "
            "a deferral filed on its stated September day and a verification task's timeliness judged on "
            "its stated day (enrollment), a sweep or a report for a later date (notify). Refused in "
            "staging and production"
        ),
    )
    host: str = "127.0.0.1"
    port: int = 8100
    database_url: str = ""
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=100,
        description=(
            "PostgreSQL connections per pool (a service has two: transactions and autocommit reads); a "
            "request that finds them all busy waits for one (up to 5 s) instead of opening another"
        ),
    )
    nats_url: str = "nats://127.0.0.1:4222"
    event_namespace: str = Field(
        default="baoxue",
        description="First token of every NATS subject and stream name; tests give each run its own.",
        pattern=r"^[a-z][a-z0-9_]{0,30}$",
    )
    stream_replicas: int = Field(
        default=1, ge=1, le=5, description="JetStream replicas per stream (3 in production)"
    )
    duplicate_window_seconds: float = 600.0
    relay_enabled: bool = True
    consumers_enabled: bool = True
    max_deliver: int = 8
    ack_wait_seconds: float = 30.0
    outbox_retention_days: int = 30

    # Long jobs (baoxue.jobs): each process refreshes the heartbeat of the jobs it runs every
    # JOB_HEARTBEAT_SECONDS and sweeps as often (resumes or marks `interrupted` abandoned jobs); a queued
    # or running job whose heartbeat is older than JOB_STALE_AFTER_SECONDS counts as abandoned.
    job_heartbeat_seconds: float = Field(default=10.0, gt=0, le=600)
    job_stale_after_seconds: float = Field(default=60.0, gt=0, le=86400)

    # Authentication: production verifies against the identity provider's JWKS.
    jwt_issuer: str = "https://idp.baoxue.local"
    jwt_audience: str = "baoxue"
    jwt_jwks_url: str | None = None
    jwt_public_key_file: str | None = DEV_JWT_KEY_FILE
    jwt_algorithms: list[str] = ["RS256", "ES256", "EdDSA"]

    # Personal data: key id → key (base64), the active key id, and the blind-index key.
    pii_keys: str = DEV_PII_KEYS
    pii_active_key_id: str = "dev1"
    pii_algorithm: Literal["sm4-gcm", "aes-gcm"] = "sm4-gcm"
    blind_index_key: str = DEV_BLIND_INDEX_KEY
    # Read only by `baoxue pii reindex` (changing the blind-index key; docs/operations.md): the key every
    # stored blind index is recomputed under. The services themselves never use it.
    new_blind_index_key: str | None = None
    # Division codes (GB/T 2260) created after the package's lists end (2021): a CSV of the operator's
    # (code,name,start_year,end_year), read at start-up; baoxue.pii.address_codes.
    division_codes_file: Path | None = None

    # The district's school calendar (MM-DD), one value for every service (BAOXUE_SPRING_SEMESTER_START
    # …): the autumn semester runs from its start to the day before the next spring start, the spring
    # semester to its end. Set it each year to the education bureau's dates.
    spring_semester_start: str = Field(default="03-01", pattern=r"^\d{2}-\d{2}$")
    spring_semester_end: str = Field(default="07-15", pattern=r"^\d{2}-\d{2}$")
    autumn_semester_start: str = Field(default="09-01", pattern=r"^\d{2}-\d{2}$")

    cors_origins: list[str] = []
    root_path: str = Field(default="", description="Path prefix of a gateway in front (e.g. /casework)")
    log_level: str = "INFO"
    var_dir: Path = Path("var")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared = EnvSettingsSource(settings_cls, env_prefix=cls.shared_prefix)
        return init_settings, env_settings, shared, file_secret_settings

    @field_validator("division_codes_file", mode="before")
    @classmethod
    def _empty_means_no_file(cls, value: object) -> object:
        """``BAOXUE_DIVISION_CODES_FILE=`` (set but empty, as manifests often leave it): no file, not ``.``."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _school_calendar_is_real_dates(self) -> ServiceSettings:
        days = {}
        for name in ("spring_semester_start", "spring_semester_end", "autumn_semester_start"):
            month, day = (int(part) for part in getattr(self, name).split("-"))
            try:
                days[name] = date(2024, month, day)  # a leap year: 02-29 is accepted
            except ValueError:
                raise ValueError(f"{name} is not a day of the year: {getattr(self, name)}") from None
        if not days["spring_semester_start"] < days["spring_semester_end"] < days["autumn_semester_start"]:
            raise ValueError("the school calendar must run spring start < spring end < autumn start")
        return self

    @model_validator(mode="after")
    def _job_heartbeat_goes_stale_after_several_beats(self) -> ServiceSettings:
        if self.job_stale_after_seconds < 3 * self.job_heartbeat_seconds:
            raise ValueError(
                "job_stale_after_seconds must be at least 3 × job_heartbeat_seconds, or a live job whose "
                "heartbeat is merely late would be taken over"
            )
        return self

    @model_validator(mode="after")
    def _blind_index_key_is_not_a_cipher_key(self) -> ServiceSettings:
        """The blind index must not be computable by whoever holds a cipher key, and the reverse."""
        cipher_keys = _cipher_keys(self.pii_keys)
        for name in ("blind_index_key", "new_blind_index_key"):
            if _key(getattr(self, name)) in cipher_keys:
                raise ValueError(f"{name} must not be one of the cipher keys (pii_keys)")
        return self

    @model_validator(mode="after")
    def _simulation_is_for_the_demo_only(self) -> ServiceSettings:
        """A simulated clock in a real deployment would let a caller backdate what the service dates."""
        if self.simulation and self.environment in ("staging", "production"):
            raise ValueError(f"simulation is not allowed in {self.environment}: it is the demo's stack only")
        return self

    @model_validator(mode="after")
    def _refuse_development_secrets(self) -> ServiceSettings:
        """Outside development and test, refuse the public development keys however they are written
        (the key bytes are compared, so padding, spaces, another key id or a place among older keys
        in the ring do not hide them) and the development token key file wherever it is named."""
        if self.environment not in ("staging", "production"):
            return self
        weak = []
        if _cipher_keys(DEV_PII_KEYS) & _cipher_keys(self.pii_keys):
            weak.append("pii_keys")
        for name in ("blind_index_key", "new_blind_index_key"):
            if _key(getattr(self, name)) == _key(DEV_BLIND_INDEX_KEY):
                weak.append(name)
        if self.jwt_jwks_url is None and _is_development_key_file(self.jwt_public_key_file):
            weak.append("jwt_jwks_url")
        if weak:
            raise ValueError(f"development secrets are not allowed in {self.environment}: {', '.join(weak)}")
        return self

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to this service's SQLite file under ``var_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / (self.service_name + '.db')}"

    def describe(self) -> dict[str, Any]:
        """Settings safe to print: secrets omitted."""
        hidden = {"pii_keys", "blind_index_key", "new_blind_index_key"}
        return {k: v for k, v in self.model_dump().items() if k not in hidden}
