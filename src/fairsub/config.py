"""Settings, read from FAIRSUB_* environment variables (and a .env file if present).

Built once, in bootstrap or the CLI, never at import.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fairsub.adapters.db.engine import POOL_SIZE

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev"}


class Environment(StrEnum):
    DEV = "dev"
    PRODUCTION = "production"


class MailBackend(StrEnum):
    MAILDIR = "maildir"
    SMTP = "smtp"


class GatewayName(StrEnum):
    SANDBOX = "sandbox"
    STRIPE = "stripe"


class ClockName(StrEnum):
    SYSTEM = "system"
    TEST = "test"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FAIRSUB_", env_file=".env", extra="ignore")

    env: Environment = Field(Environment.DEV, description="dev or production.")
    data_dir: Path = Field(
        Path("var"), description="Where the SQLite file, mailbox and generated secret live."
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default SQLite in "
        "data_dir. PostgreSQL: postgresql+psycopg://user@host/db",
    )
    db_pool_size: int = Field(
        POOL_SIZE,
        ge=1,
        description="Database connections each process keeps (10 more at a peak); one per "
        "thread that may query at once. Lower it when many web workers share PostgreSQL.",
    )
    base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Public address, used in "
        "email links; https:// turns on Secure __Host- cookies.",
    )
    secret_key: str | None = Field(
        None,
        description="Signs CSRF tokens. Required in production; generated into data_dir in dev.",
    )
    vendor_name: str = Field("Larkspur Security", description="Shown on every page and email.")
    catalog_file: Path | None = Field(
        None, description="Catalog TOML; default: the demo catalog shipped with fairsub."
    )
    refund_policy_file: Path | None = Field(
        None,
        description="TOML with the refund policy (a [refunds] section); default: the "
        "catalog file, or the demo catalog's policy when neither is set.",
    )
    mail_backend: MailBackend = Field(
        MailBackend.MAILDIR,
        description="maildir (local folder, shown at /dev/mailbox in dev) or smtp.",
    )
    mail_from: str = Field(
        "Larkspur Security <no-reply@larkspur.example>", description="From: of every email."
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP server.")
    smtp_port: int = Field(25, description="SMTP port.")
    smtp_starttls: bool = Field(False, description="Use STARTTLS.")
    smtp_username: str | None = Field(None, description="SMTP login, if any.")
    smtp_password: str | None = Field(None, description="SMTP password, if any.")
    official_domains: list[str] = Field(
        ["larkspur.example"], description="Domains whose links are ours (JSON list)."
    )
    official_emails: list[str] = Field(
        ["support@larkspur.example", "no-reply@larkspur.example"],
        description="Addresses we write from or answer at (JSON list).",
    )
    official_phones: list[str] = Field(
        [],
        description="Phone numbers the vendor really "
        "uses, if any (JSON list). None by default: "
        "nothing needs a call.",
    )
    payment_gateway: GatewayName = Field(
        GatewayName.SANDBOX,
        description="sandbox (built in, with its own ledger and test cards) or stripe.",
    )
    sandbox_latency_ms: int = Field(
        0, ge=0, description="Simulated sandbox gateway latency per call, in milliseconds."
    )
    sandbox_failure_rate: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Share of sandbox calls that fail as 'unavailable' before charging.",
    )
    stripe_api_key: str | None = Field(
        None, description="Stripe secret key, for payment_gateway=stripe."
    )
    clock: ClockName = Field(
        ClockName.SYSTEM,
        description="system, or test: a clock the CLI "
        "and the demo can move (`fairsub clock advance --days 30`).",
    )
    trust_proxy_headers: bool = Field(
        False,
        description="Take the client address from X-Forwarded-For (only behind your own proxy).",
    )
    log_level: str = Field("info", description="debug, info, warning or error.")

    @property
    def is_dev(self) -> bool:
        return self.env is Environment.DEV

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'fairsub.db'}"

    @property
    def mailbox_dir(self) -> Path:
        return self.data_dir / "mailbox"

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Self:
        if self.env is Environment.PRODUCTION:
            if (self.secret_key or "").strip().lower() in PLACEHOLDER_SECRETS or len(
                self.secret_key or ""
            ) < 32:
                raise ValueError(
                    "FAIRSUB_SECRET_KEY must be set to 32+ random characters in production"
                )
            if self.mail_backend is MailBackend.MAILDIR:
                raise ValueError("FAIRSUB_MAIL_BACKEND=smtp is required in production")
            if self.clock is ClockName.TEST:
                raise ValueError("FAIRSUB_CLOCK=test is for development only")
        if self.payment_gateway is GatewayName.STRIPE and not self.stripe_api_key:
            raise ValueError(
                "FAIRSUB_STRIPE_API_KEY is required with FAIRSUB_PAYMENT_GATEWAY=stripe"
            )
        return self
