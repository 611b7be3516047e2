"""Settings of the notify service (environment prefix ``NOTIFY_``, then ``BAOXUE_``)."""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from baoxue.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    service_name: ClassVar[str] = "notify"
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    port: int = 8104

    # Calendar: extra State Council arrangement files (*.json) besides the package's and the database's.
    calendar_dir: Path | None = None
    # The deadline sweep (reminders, lapses, the ladder's automatic climb).
    sweep_enabled: bool = True
    sweep_interval_seconds: float = Field(default=3600.0, gt=0)
    reminder_workdays: int = Field(
        default=3, ge=0, description="Remind this many working days before a deadline."
    )
    # The semester dates the notice leaves open are the library's school calendar (spring_semester_start,
    # spring_semester_end, autumn_semester_start), shared with casework.
    census_calendar_days: int = Field(default=14, description="'within two weeks of each semester start'")
    visit_quota_special_group: int = Field(
        default=2,
        ge=1,
        description="Home visits per semester owed to a special-group student (casework's default quota)",
    )
    # The escalation ladder: working days each level has before the case moves up by itself.
    ladder_workdays_l1: int = Field(default=20, ge=1, description="school persuasion (学校劝返)")
    ladder_workdays_l2: int = Field(default=15, ge=1, description="town order to correct (责令限期改正)")
    ladder_workdays_l3: int = Field(default=20, ge=1, description="judicial documents (司法文书)")
    ladder_workdays_l4: int = Field(
        default=30, ge=1, description="legal action: the justice bureau reports back"
    )
    ladder_starts_at_confirmation: bool = Field(
        default=True, description="Track school persuasion (L1) from the case's confirmation."
    )
    referral_receipt_workdays: int = Field(
        default=5, ge=1, description="A department confirms a referral within."
    )
    deferral_return_workdays: int = Field(
        default=10,
        ge=1,
        description=(
            "An expired deferral or exemption (缓学/免学): the hukou school district confirms the child is "
            "back at school within this many working days of the period's end"
        ),
    )
    document_backdate_days: int = Field(
        default=30,
        ge=0,
        description=(
            "A document issued by hand may be dated at most this many days before today (a paper document "
            "entered late), never after today: its year gives the number"
        ),
    )
    criticism_min_timeliness: float = Field(
        default=0.9, ge=0, le=1, description="Below this: criticised by name."
    )
    # The delivery queue of webhooks, email and SMS (the webhook_* limits apply to all three channels).
    webhook_max_attempts: int = Field(default=6, ge=1, description="then dead-lettered")
    webhook_backoff_seconds: float = Field(
        default=30.0, ge=0, description="First retry delay; doubles each time."
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, description="webhook POST and SMS gateway")
    delivery_enabled: bool = True
    delivery_interval_seconds: float = Field(default=5.0, gt=0)
    delivery_batch: int = Field(default=20, ge=1, le=500, description="Deliveries claimed (and sent) at once")
    delivery_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A claimed delivery is another worker's again after this (its process died); a send "
        "is cut off at half of it",
    )
    # SMS gateway (the simulator in development: python -m baoxue.fakes.sms_gateway --port 8190).
    sms_gateway_url: str | None = None
    sms_gateway_key: str = "dev-sms-key"
    # Email over SMTP (the simulator in development: python -m baoxue.fakes.smtp_server --port 8125).
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls (port 587), tls (implicit, port 465), none (local relay)"
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the relay's certificate (default: the system's)"
    )
    smtp_sender: str | None = Field(
        default=None, description="The From address, e.g. kongchuo@example.gov.cn"
    )
    smtp_sender_name: str = "山亭区教育和体育局控辍保学办公室"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
