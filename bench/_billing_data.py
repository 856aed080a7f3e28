"""The billing benchmark's data: due subscriptions seeded in bulk, and fresh copies per run."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, text

from _billing_common import CARD, SEED_CHUNK
from _support import Postgres, bench_settings
from fairsub.adapters.clock import SystemClock
from fairsub.adapters.db import migrate
from fairsub.adapters.db import tables as t
from fairsub.adapters.payments.sandbox import SandboxGateway
from fairsub.bootstrap import bootstrap
from fairsub.domain.billing import AttemptStatus, InvoiceKind, InvoiceStatus, idempotency_key
from fairsub.domain.periods import Period, Term, add_months

# --------------------------------------------------------------------------- data


def make_ledger_template(path: Path) -> str:
    """The sandbox ledger every run starts from: one stored test card. Returns its token."""
    gateway = SandboxGateway(path, SystemClock())
    try:
        return gateway.store_card(CARD).token
    finally:
        gateway.close()


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite file, WAL included (the backup API)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


HISTORY_TABLES = (t.accounts, t.payment_methods, t.subscriptions, t.invoices, t.payment_attempts)


def _due_period(rng: random.Random, now: datetime, term: Term) -> tuple[datetime, Period]:
    """(anchor, period) for a subscription whose period ended between 1 min and 20 days ago.
    The end is on day 1-28, so counting months from the anchor never clamps."""
    end = (now - timedelta(seconds=rng.randint(60, 20 * 86400))).replace(microsecond=0)
    if end.day > 28:
        end -= timedelta(days=3)
    periods_before = rng.randint(1, 3) if term is Term.MONTH else 1
    anchor = add_months(end, -term.months * periods_before)
    period = Period.nth(anchor, term, periods_before - 1)
    assert period.end == end
    return anchor, period


Rows = list[dict[str, Any]]


def _rows(
    first: int, last: int, rng: random.Random, now: datetime, token: str, offer: list[Any]
) -> tuple[Rows, Rows, Rows, Rows, Rows]:
    """Accounts, payment methods, subscriptions, and the paid invoice and succeeded payment
    attempt of each subscription's current period, with ids first..last (one of each per
    id). The history is what a real database holds when its subscriptions come due; it
    also keeps the run honest on PostgreSQL: over empty invoice and attempt tables the
    planner caches sequential scans for the foreign-key checks of the first inserts."""
    accounts, methods, subs, invoices, attempts = [], [], [], [], []
    created = now - timedelta(days=800)
    for i in range(first, last + 1):
        region, plan, price = rng.choice(offer)
        anchor, period = _due_period(rng, now, plan.term)
        accounts.append(
            {
                "id": i,
                "email": f"billing{i:07d}@example.com",
                "name": f"Bench Customer {i}",
                "password_hash": "not-a-hash: never signs in",
                "region": region.code,
                "locale": region.locale,
                "timezone": region.timezone,
                "created_at": created,
            }
        )
        methods.append(
            {
                "id": i,
                "account_id": i,
                "brand": "Visa",
                "last4": "4242",
                "expires": "12/2030",
                "created_at": created,
                "gateway": "sandbox",
                "token": token,
            }
        )
        subs.append(
            {
                "id": i,
                "account_id": i,
                "plan_code": plan.code,
                "region": region.code,
                "status": "active",
                "auto_renew": True,
                "price_minor": price.amount_minor,
                "currency": price.currency,
                "started_at": anchor,
                "trial_ends_at": None,
                "period_start": period.start,
                "period_end": period.end,
                "payment_method_id": i,
                "reseller_name": None,
                "reseller_order": None,
                "reseller_cancel_url": None,
                "version": 1,
                "claimed_until": None,
                "failed_attempts": 0,
                "next_retry_at": None,
            }
        )
        invoices.append(
            {
                "id": i,
                "number": i,
                "account_id": i,
                "subscription_id": i,
                "kind": (
                    InvoiceKind.PURCHASE if period.start == anchor else InvoiceKind.RENEWAL
                ).value,
                "period_start": period.start,
                "period_end": period.end,
                "amount_minor": price.amount_minor,
                "currency": price.currency,
                "status": InvoiceStatus.PAID.value,
                "created_at": period.start,
                "paid_at": period.start,
            }
        )
        attempts.append(
            {
                "id": i,
                "account_id": i,
                "invoice_id": i,
                "subscription_id": i,
                "attempt_no": 1,
                "idempotency_key": idempotency_key(i, period.start, 1),
                "amount_minor": price.amount_minor,
                "currency": price.currency,
                "payment_method_id": i,
                "payment_token": token,
                "status": AttemptStatus.SUCCEEDED.value,
                "gateway_ref": f"history-{i}",
                "decline_reason": None,
                "created_at": period.start,
                "settled_at": period.start,
            }
        )
    return accounts, methods, subs, invoices, attempts


def seed(url: str, data_dir: Path, n: int, token: str, rng_seed: int) -> float:
    """Migrate, store the catalog, bulk-insert n due subscriptions. Returns seconds taken."""
    started = time.perf_counter()
    container = bootstrap(bench_settings(url, data_dir), clock=SystemClock())
    try:
        migrate.upgrade(container.engine)
        catalog = container.catalog()
        with container.uows().write() as uow:
            uow.catalog.store(catalog)
            uow.commit()
        offer = [
            (catalog.regions[code], plan, plan.price_in(code))
            for plan in catalog.plans.values()
            for code in sorted(catalog.regions)
            if code in plan.prices
        ]
        rng = random.Random(rng_seed)
        now = container.clock.now()
        for first in range(1, n + 1, SEED_CHUNK):
            chunk = _rows(first, min(n, first + SEED_CHUNK - 1), rng, now, token, offer)
            with container.engine.begin() as connection:
                for table, rows in zip(HISTORY_TABLES, chunk, strict=True):
                    connection.execute(insert(table), rows)
        with container.engine.begin() as connection:
            connection.execute(insert(t.invoice_counter).values(id=1, last_number=n))
        _after_bulk_load(container.engine)
    finally:
        container.close()
    return time.perf_counter() - started


def _after_bulk_load(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        for table in HISTORY_TABLES:
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT max(id) FROM {table.name}))"
                )
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))  # what autovacuum would soon have done


@dataclass
class Database:
    """Where the data sets of one database live, and how to hand out fresh copies."""

    name: str
    data_dir: Path
    postgres: Postgres | None = None
    templates: dict[str, str] = field(default_factory=dict)  # data set -> file or db name

    def template_url(self, dataset: str) -> str:
        if self.postgres is not None:
            db = f"tmpl_{dataset}"
            self.templates[dataset] = db
            return self.postgres.create_database(db)
        path = self.data_dir / f"tmpl_{dataset}.db"
        remove_sqlite(path)
        self.templates[dataset] = str(path)
        return f"sqlite:///{path}"

    @contextlib.contextmanager
    def fresh_copy(self, dataset: str, run: str) -> Iterator[str]:
        if self.postgres is not None:
            db = f"run_{run}"
            url = self.postgres.create_database(db, template=self.templates[dataset])
            try:
                yield url
            finally:
                self.postgres.drop_database(db)
            return
        path = self.data_dir / f"run_{run}.db"
        copy_sqlite(Path(self.templates[dataset]), path)
        try:
            yield f"sqlite:///{path}"
        finally:
            remove_sqlite(path)

    @property
    def pg_pid(self) -> int | None:
        return self.postgres.postmaster_pid() if self.postgres else None
