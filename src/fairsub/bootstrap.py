"""Wires ports to adapters from settings. The only module that knows them all."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog
from sqlalchemy import Engine

from fairsub.adapters.catalog_file import check_file, load_catalog
from fairsub.adapters.clock import OffsetFileClock, SystemClock
from fairsub.adapters.db.engine import make_engine
from fairsub.adapters.db.uow import SqlUnitOfWorkFactory
from fairsub.adapters.email.maildir import MaildirMailer
from fairsub.adapters.email.relay import OutboxRelay
from fairsub.adapters.email.render import EmailRenderer, Site
from fairsub.adapters.email.smtp import SmtpMailer
from fairsub.adapters.passwords import Argon2Hasher
from fairsub.adapters.policy_file import load_policy
from fairsub.config import ClockName, GatewayName, MailBackend, Settings
from fairsub.domain.catalog import Catalog
from fairsub.domain.contacts import OfficialChannels
from fairsub.domain.errors import InvalidInput
from fairsub.domain.refunds import RefundPolicy
from fairsub.services.ports import Clock, Mailer, PasswordHasher, PaymentGateway

T = TypeVar("T")
log = structlog.get_logger(__name__)


def _stamp(path: Path | None) -> tuple[int, int] | None:
    """When and how big the operator's file is; None for the shipped demo file."""
    if path is None:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return (-1, -1)  # the loader says what is wrong
    return (found.st_mtime_ns, found.st_size)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    uows: SqlUnitOfWorkFactory
    clock: Clock
    hasher: PasswordHasher
    mailer: Mailer
    relay: OutboxRelay
    channels: OfficialChannels
    secret_key: bytes
    gateway: PaymentGateway
    _parsed: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    def catalog(self) -> Catalog:
        return self._operator_file("catalog", self.settings.catalog_file, load_catalog)

    def refund_policy(self) -> RefundPolicy:
        path = self.settings.refund_policy_file or self.settings.catalog_file
        return self._operator_file("policy", path, load_policy)

    def check_operator_files(self) -> None:
        """Read the catalog and the refund policy now, so that a broken or missing one stops
        the portal or the worker from starting, with FILE:LINE, rather than failing a
        customer's page once they run. Unset, FAIRSUB_REFUND_POLICY_FILE means the policy is
        the [refunds] section of FAIRSUB_CATALOG_FILE: there is no default to fall back to."""
        catalog, policy = self.settings.catalog_file, self.settings.refund_policy_file
        if policy is None and catalog is not None and check_file(catalog)[1] is None:
            raise InvalidInput(
                f"{catalog}: no refund policy: FAIRSUB_CATALOG_FILE has no [refunds] section "
                "and FAIRSUB_REFUND_POLICY_FILE is not set"
            )
        self.catalog()
        self.refund_policy()

    def _operator_file(self, name: str, path: Path | None, load: Callable[[Path | None], T]) -> T:
        """Parsed once, and again whenever the file changes: the portal and the worker keep
        running while the operator edits it. An edit that does not parse is logged once and
        the last version that did is kept, so customers' pages do not fail for it; with no
        good version yet (at start-up) the error is raised."""
        stamp = (path, _stamp(path))
        cached = self._parsed.get(name)
        if cached is None or cached[0] != stamp:
            try:
                cached = (stamp, load(path))
            except InvalidInput as error:
                if cached is None:
                    raise
                log.error(
                    "operator_file_invalid", which=name, error=error.message, kept="last good"
                )
                cached = (stamp, cached[1])  # the same broken version is not logged again
            self._parsed[name] = cached
        value: T = cached[1]
        return value

    def close(self) -> None:
        self.relay.stop()
        self.uows.close()
        self.engine.dispose()
        close_gateway = getattr(self.gateway, "close", None)
        if callable(close_gateway):
            close_gateway()


def prepare_data_dir(settings: Settings) -> None:
    """Make the data directory, if anything is kept there, before any adapter writes to it:
    one that cannot be made is said in one sentence, naming the setting."""
    uses_it = (
        settings.database_url is None
        or not settings.secret_key
        or settings.mail_backend is MailBackend.MAILDIR
        or settings.payment_gateway is GatewayName.SANDBOX
        or settings.clock is ClockName.TEST
    )
    path = settings.data_dir
    if not uses_it:
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InvalidInput(f"FAIRSUB_DATA_DIR is a file, not a directory: {path}") from None
    except NotADirectoryError:
        raise InvalidInput(
            f"FAIRSUB_DATA_DIR cannot be made: part of {path} is a file, not a directory"
        ) from None
    except OSError as error:
        raise InvalidInput(
            f"FAIRSUB_DATA_DIR cannot be made: {path}: {error.strerror or error}"
        ) from None


def _secret_key(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    # dev only (production refuses to start without one): keep one per data directory
    path = settings.data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def configure_logging(level: str) -> None:
    logging.basicConfig(format="%(message)s", level=level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # log.exception(...) says what went wrong, not just `"exc_info": true`
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_stderr_logger,
    )


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    """Log lines go to stderr, so that a command's stdout is its result alone. The stream is
    looked up at each use, not once: whoever runs fairsub in-process may swap it."""
    return structlog.PrintLogger(sys.stderr)


def make_mailer(settings: Settings) -> Mailer:
    if settings.mail_backend is MailBackend.SMTP:
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            settings.mail_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
        )
    return MaildirMailer(settings.mailbox_dir, settings.mail_from)


def make_clock(settings: Settings) -> Clock:
    if settings.clock is ClockName.TEST:
        return OffsetFileClock(settings.data_dir / "test-clock.json")
    return SystemClock()


def make_gateway(settings: Settings, clock: Clock) -> PaymentGateway:
    if settings.payment_gateway is GatewayName.STRIPE:
        from fairsub.adapters.payments.stripe import StripeGateway

        stripe: PaymentGateway = StripeGateway(settings.stripe_api_key or "", clock=clock)
        return stripe
    from fairsub.adapters.payments.sandbox import SandboxGateway

    sandbox: PaymentGateway = SandboxGateway(
        settings.data_dir / "sandbox-gateway.db",
        clock,
        latency=settings.sandbox_latency_ms / 1000,
        failure_rate=settings.sandbox_failure_rate,
    )
    return sandbox


def bootstrap(
    settings: Settings,
    *,
    clock: Clock | None = None,
    mailer: Mailer | None = None,
    hasher: PasswordHasher | None = None,
    gateway: PaymentGateway | None = None,
) -> Container:
    configure_logging(settings.log_level)
    prepare_data_dir(settings)
    engine = make_engine(settings.resolved_database_url, pool_size=settings.db_pool_size)
    uows = SqlUnitOfWorkFactory(engine)
    clock = clock or make_clock(settings)
    mailer = mailer or make_mailer(settings)
    sender_domain = settings.mail_from.rsplit("@", 1)[-1].strip(">") or "fairsub.invalid"
    site = Site(
        base_url=settings.base_url,
        vendor=settings.vendor_name,
        sender=settings.mail_from,
        message_domain=sender_domain,
    )
    relay = OutboxRelay(uows, mailer, EmailRenderer(site), clock)
    uows.on_commit = relay.nudge
    base = urlsplit(settings.base_url)
    channels = OfficialChannels(
        domains=tuple(settings.official_domains),
        emails=tuple(settings.official_emails),
        phones=tuple(settings.official_phones),
        origins=(f"{base.scheme}://{base.netloc}".lower(),),
    )
    return Container(
        settings=settings,
        engine=engine,
        uows=uows,
        clock=clock,
        hasher=hasher or Argon2Hasher(),
        mailer=mailer,
        relay=relay,
        channels=channels,
        secret_key=_secret_key(settings),
        gateway=gateway or make_gateway(settings, clock),
    )
