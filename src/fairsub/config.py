"""Settings, read from FAIRSUB_* environment variables (and a .env file if present).

Built once, in bootstrap or the CLI, never at import.
"""

from __future__ import annotations

import re
from email.utils import getaddresses
from enum import StrEnum
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from fairsub.adapters.db.engine import POOL_SIZE
from fairsub.domain.accounts import normalize_email
from fairsub.domain.errors import InvalidInput

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev"}
LOG_LEVELS = ("debug", "info", "warning", "error")
# What a written phone number may hold besides its digits; the contact checker takes a
# number only from five digits on, so an official one with fewer could never match.
PHONE_CHARACTERS = re.compile(r"[0-9 +\-().]+")
PHONE_MIN_DIGITS = 5
# The databases fairsub is built and tested on, and the drivers it ships with.
DATABASES = {("sqlite", "pysqlite"), ("postgresql", "psycopg")}
DATABASE_EXAMPLES = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DBNAME"


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
        description="sqlite:///PATH or postgresql+psycopg://user@host/db; default: SQLite "
        "in data_dir.",
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
    smtp_port: int = Field(25, description="SMTP port, 1 to 65535.")
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

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_given(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            # Path("") is the current directory: the database and the secret key would land
            # wherever the command happened to be run.
            raise ValueError("is empty; leave it unset for ./var, or name a directory")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_supported(cls, value: str | None) -> str | None:
        if not value:
            return None  # empty is unset: SQLite in the data directory
        try:
            url = make_url(value)
            kind = (url.get_backend_name(), url.get_driver_name())
        except (ArgumentError, NoSuchModuleError, ValueError):
            kind = ("", "")
        if kind not in DATABASES:
            raise ValueError(f"is not a database fairsub can use; give {DATABASE_EXAMPLES}")
        if kind[0] == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError("needs a file path for SQLite, e.g. sqlite:///var/fairsub.db")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url_is_a_site(cls, value: str) -> str:
        """The portal's root: email links are this address and one of its paths."""
        try:
            parts = urlsplit(value.strip())
            site = parts.scheme in ("http", "https") and parts.hostname and parts.port != 0
        except ValueError:  # a port that is not a number from 0 to 65535
            site = False
        if (
            not site
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or ("@" in parts.netloc)
        ):
            raise ValueError(
                "must be http:// or https:// and a host name, with a port if need be and "
                "nothing after it, e.g. https://billing.example.com"
            )
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("vendor_name")
    @classmethod
    def _vendor_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty; every page and email shows the vendor's name")
        return value.strip()

    @field_validator("mail_from")
    @classmethod
    def _mail_from_is_an_address(cls, value: str) -> str:
        found = getaddresses([value])
        example = "e.g. Larkspur Security <no-reply@larkspur.example>"
        if len(found) != 1 or re.search(r"[\x00-\x1f\x7f]", value):
            raise ValueError(f"must be one email address, with a name if you like, {example}")
        try:
            normalize_email(found[0][1])
        except InvalidInput:
            raise ValueError(f"has no email address in it; give one, {example}") from None
        return value.strip()

    @field_validator("official_emails")
    @classmethod
    def _official_emails_are_addresses(cls, value: list[str]) -> list[str]:
        for number, address in enumerate(value, 1):
            try:
                normalize_email(address)
            except InvalidInput:
                raise ValueError(
                    f"entry {number} is not an email address; give a JSON list of addresses, "
                    'e.g. ["support@larkspur.example"]'
                ) from None
        return [address.strip() for address in value]

    @field_validator("official_phones")
    @classmethod
    def _official_phones_are_numbers(cls, value: list[str]) -> list[str]:
        for number, phone in enumerate(value, 1):
            digits = sum(ch.isdigit() for ch in phone)
            if not PHONE_CHARACTERS.fullmatch(phone.strip()) or digits < PHONE_MIN_DIGITS:
                raise ValueError(
                    f"entry {number} is not a phone number; give a JSON list of "
                    f"numbers of {PHONE_MIN_DIGITS}+ digits, written with only digits, spaces, "
                    '+, -, parentheses and dots, e.g. ["+00 0000 0000"]'
                )
        return [phone.strip() for phone in value]

    @field_validator("stripe_api_key")
    @classmethod
    def _stripe_secret_key(cls, value: str | None) -> str | None:
        """Only a secret (sk_) or restricted (rk_) key can charge; a publishable key (pk_)
        pasted in its place would fail every call. The key itself is never repeated."""
        key = (value or "").strip()
        if key and not key.startswith(("sk_", "rk_")):
            what = "a publishable key (pk_…)" if key.startswith("pk_") else "not a Stripe API key"
            raise ValueError(
                f"is {what}; give the secret key (sk_…) or a restricted key (rk_…) "
                "from the API keys page of your Stripe dashboard"
            )
        return key or None

    @field_validator("smtp_port")
    @classmethod
    def _port_in_range(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be a port number from 1 to 65535")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

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


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, or InvalidInput saying in one sentence which
    FAIRSUB_* variable is wrong and how (never its value: it may be a secret)."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise InvalidInput(_first_problem(error)) from None
    except SettingsError as error:  # a list setting whose text is not JSON
        found = re.search(r'field "(\w+)"', str(error))
        name = f"FAIRSUB_{found.group(1).upper()}" if found else "a FAIRSUB_* list setting"
        raise InvalidInput(
            f'{name} must be a JSON list of strings, e.g. ["one.example", "two.example"]'
        ) from None


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    if first["type"] == "value_error":
        message = str(first["ctx"]["error"])
    else:
        message = first["msg"][:1].lower() + first["msg"][1:]
    field = next((str(part) for part in first["loc"] if str(part) in Settings.model_fields), None)
    if field is None:  # the model's own checks name their variables themselves
        return message
    # Our checks' messages go on from the name ("FAIRSUB_SMTP_PORT must be ..."); pydantic's
    # stand on their own ("FAIRSUB_SMTP_PORT: input should be a valid integer").
    joint = " " if first["type"] == "value_error" else ": "
    return f"FAIRSUB_{field.upper()}{joint}{message}"
