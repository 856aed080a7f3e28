"""Billing-run benchmark: services.billing.renew_due beside a plain-SQL two-phase loop.

    .venv/bin/python bench/billing_run.py               # N = 100,000, SQLite and PostgreSQL
    .venv/bin/python bench/billing_run.py --million     # N = 1,000,000
    .venv/bin/python bench/billing_run.py --quick       # N = 5,000: a smoke run
    .venv/bin/python bench/billing_run.py --profile     # also cProfile the fairsub run
    .venv/bin/python bench/billing_run.py --help

For each database (SQLite in a temporary directory; PostgreSQL in a throwaway cluster this
script starts with initdb/pg_ctl on a free port on 127.0.0.1 and stops at the end):

1. set-up, timed apart and not counted: migrate (fairsub.adapters.db.migrate.upgrade), store
   the catalog (container.catalog() through uow.catalog.store), and bulk-insert N accounts,
   each with one payment method and one subscription whose period has ended, so all N are
   due (Core executemany in chunks, streamed: never all rows in memory). Every payment
   method carries the token of ONE real sandbox card (4242 4242 4242 4242), stored once.
   The same for N/10 (the memory check) and for the latency data set (--latency-n).
2. each measured run gets a fresh copy of its data set (SQLite: the backup API; PostgreSQL:
   CREATE DATABASE ... TEMPLATE) and a fresh copy of the sandbox ledger holding only that
   card, and runs in a fresh process (spawned), so its peak RSS is its own:
   - sandbox alone: N/10 charges straight to the gateway, no fairsub database: the ceiling
     any renewal loop here can reach;
   - baseline: a plain-SQL two-phase loop (one DBAPI connection, SQL written out) doing
     the minimum honest work on fairsub's schema: claim a batch (the same due/lease/in-
     flight predicate as fairsub; FOR UPDATE SKIP LOCKED on PostgreSQL; BEGIN IMMEDIATE on
     SQLite), reserve invoice numbers, insert invoices and 'sending' attempts (one multi-row
     INSERT each), commit; charge
     each through the same SandboxGateway with the same idempotency key; then record every
     answer in one transaction (attempt, invoice, subscription: executemany). No audit
     event, no outbox email;
   - fairsub: services.billing.renew_due(uows, gateway, clock, batch=, in_flight=) on N/10
     and on N (zero latency), and on the latency data set with --latency-ms and
     --in-flight (beside the baseline with the same threads);
   - on PostgreSQL, also --workers processes (default 2) renewing the same N at once,
     started together, beside the single worker: several workers must be faster than one.
3. after each run (not timed) it checks that every due subscription was renewed exactly
   once: paid invoices == distinct subscriptions paid == succeeded attempts == all attempts
   == sandbox charges == subscriptions whose period moved on == N.

Peak RSS growth is VmHWM at the end minus VmRSS at the start of the run (the peak is reset
through /proc/self/clear_refs first). CPU is sampled over the run: this process (all its
threads), PostgreSQL (postmaster and backends), and the rest of the machine ("other"): a
busy machine makes every figure low.

Figures are printed, never asserted: the exit code is 0 whether targets are met or not.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import multiprocessing
import os
import platform
import pstats
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, distinct, event, func, insert, select, text
from sqlalchemy.engine import make_url

from _support import (
    Postgres,
    _package_version,
    cpu_seconds,
    machine_busy_seconds,
)
from fairsub.adapters.clock import SystemClock
from fairsub.adapters.db import migrate
from fairsub.adapters.db import tables as t
from fairsub.adapters.db.engine import make_engine
from fairsub.adapters.payments.sandbox import SandboxGateway
from fairsub.bootstrap import Container, bootstrap
from fairsub.config import Settings
from fairsub.domain.billing import AttemptStatus, InvoiceKind, InvoiceStatus, idempotency_key
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, Term, add_months, following
from fairsub.services import billing
from fairsub.services.ports import CardDetails, ChargeResult, GatewayTimeout, GatewayUnavailable

SECRET_KEY = "bench-" + "k" * 40
CARD = CardDetails("4242424242424242", 12, 2030, "123")
TARGET_RATE = {"SQLite": 2000.0, "PostgreSQL": 1000.0}
TARGET_RATIO = 0.50
TARGET_LATENCY_SHARE = 0.80
FLAT_SLACK_MIB = 16.0  # RSS growth at N may exceed growth at N/10 by this much and be "flat"
OTHER_WARN = 10.0  # percent of one core used by processes outside the benchmark
SEED_CHUNK = 5000
LEASE = timedelta(minutes=10)

# Wide enough for the tables when the output goes to a file or a pipe.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


# --------------------------------------------------------------------------- machine
# machine_info, cpu_seconds, machine_busy_seconds, free_port and Postgres are copied, trimmed,
# from bench/portal.py (its owner is still working on it, so nothing is shared yet).


def load_average() -> str:
    with suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def machine_info(pg_version: str | None) -> dict[str, str]:
    cpu = "?"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": f"{cpu}: {os.cpu_count()} cores, {usable} usable by this process",
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version or "not available",
        "stack": f"sqlalchemy {_package_version('sqlalchemy')}, "
        f"psycopg {_package_version('psycopg')}",
        "load average (1/5/15 min) at start": load_average(),
    }


def _proc_status_kib(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------- PostgreSQL


# --------------------------------------------------------------------------- data


def _settings(url: str, data_dir: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=url,
        data_dir=data_dir,
        secret_key=SECRET_KEY,
        log_level="warning",
    )


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


def _rows(
    first: int, last: int, rng: random.Random, now: datetime, token: str, offer: list[Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Accounts, payment methods and subscriptions with ids first..last (one of each per id)."""
    accounts, methods, subs = [], [], []
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
    return accounts, methods, subs


def seed(url: str, data_dir: Path, n: int, token: str, rng_seed: int) -> float:
    """Migrate, store the catalog, bulk-insert n due subscriptions. Returns seconds taken."""
    started = time.perf_counter()
    container = bootstrap(_settings(url, data_dir), clock=SystemClock())
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
                for table, rows in zip(
                    (t.accounts, t.payment_methods, t.subscriptions), chunk, strict=True
                ):
                    connection.execute(insert(table), rows)
        _after_bulk_load(container.engine)
    finally:
        container.close()
    return time.perf_counter() - started


def _after_bulk_load(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        for table in (t.accounts, t.payment_methods, t.subscriptions):
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


# --------------------------------------------------------------------------- baseline


@dataclass
class BaselineSummary:
    charged: int = 0
    declined: int = 0
    unknown: int = 0
    skipped: int = 0


class PlainSql:
    """One DBAPI connection and SQL written out: nothing between the loop and the driver.
    Placeholders are written `?` and turned into `%s` for psycopg."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.postgres = parsed.get_backend_name() == "postgresql"
        self.statements = 0
        self.connection: Any
        if self.postgres:
            conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            self.connection = psycopg.connect(conninfo)
        else:
            # The same settings fairsub's engine gives SQLite connections.
            self.connection = sqlite3.connect(
                parsed.database or "", isolation_level=None, check_same_thread=False, timeout=30
            )
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                "PRAGMA foreign_keys=ON",
                "PRAGMA busy_timeout=30000",
            ):
                self.connection.execute(pragma)
        self.cursor = self.connection.cursor()

    def close(self) -> None:
        self.connection.close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def begin_write(self) -> None:
        if not self.postgres:  # psycopg begins a transaction by itself
            self.cursor.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self.postgres:
            self.connection.commit()
        else:
            self.cursor.execute("COMMIT")

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        self.statements += 1
        self.cursor.execute(self._sql(sql), params)
        return self.cursor

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        self.statements += 1
        self.cursor.executemany(self._sql(sql), rows)
        return int(self.cursor.rowcount)

    def insert_rows(self, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
        """One multi-row INSERT ... VALUES (...), (...): one round trip and one statement
        for the server to plan, as fairsub's SQLAlchemy engine sends them."""
        if not rows:
            return
        values = ", ".join(["(" + ", ".join("?" * len(rows[0])) + ")"] * len(rows))
        params = [value for row in rows for value in row]
        self.execute(f"INSERT INTO {table} ({columns}) VALUES {values}", params)

    def to_db(self, moment: datetime | None) -> Any:
        """fairsub's UtcDateTime on SQLite: naive UTC text, as SQLAlchemy writes it."""
        if moment is None or self.postgres:
            return moment
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def from_db(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return datetime.fromisoformat(value).replace(tzinfo=UTC)


_BASELINE_CLAIM = """
SELECT s.id, s.account_id, s.started_at, s.trial_ends_at, s.period_start, s.period_end,
       s.price_minor, s.currency, s.failed_attempts, s.payment_method_id, pm.token, p.term
FROM subscriptions s
JOIN plans p ON p.code = s.plan_code
LEFT JOIN payment_methods pm ON pm.id = s.payment_method_id
WHERE s.auto_renew = TRUE AND s.reseller_name IS NULL
  AND ((s.status IN ('active', 'trialing') AND s.period_end <= ?)
       OR (s.status = 'past_due' AND s.next_retry_at <= ?))
  AND (s.claimed_until IS NULL OR s.claimed_until <= ?)
  AND NOT EXISTS (SELECT 1 FROM payment_attempts a
                  WHERE a.subscription_id = s.id AND a.status IN ('sending', 'unknown'))
ORDER BY s.period_end
LIMIT ?"""


@dataclass(frozen=True, slots=True)
class _Charge:
    key: str
    subscription_id: int
    invoice_id: int
    amount: Money
    token: str
    period: Period
    attempt_no: int
    description: str


def _baseline_claim(db: PlainSql, now: datetime, batch: int) -> tuple[list[_Charge], int]:
    db.begin_write()
    at = db.to_db(now)
    claim = _BASELINE_CLAIM + (" FOR UPDATE OF s SKIP LOCKED" if db.postgres else "")
    rows = db.execute(claim, (at, at, at, batch)).fetchall()
    if not rows:
        db.commit()
        return [], 0
    ids = [row[0] for row in rows]
    marks = ", ".join("?" * len(ids))
    db.execute(
        f"UPDATE subscriptions SET claimed_until = ? WHERE id IN ({marks})",
        (db.to_db(now + LEASE), *ids),
    )
    # C23: the price changes in effect. This data set has none; fairsub's run asks too.
    changes = db.execute(
        "SELECT s.id FROM subscriptions s JOIN price_changes pc "
        f"ON pc.plan_code = s.plan_code AND pc.region = s.region WHERE s.id IN ({marks})",
        ids,
    ).fetchall()
    if changes:
        raise NotImplementedError("the baseline does not apply price changes")
    chargeable = [row for row in rows if row[10]]
    skipped = len(rows) - len(chargeable)
    if not chargeable:
        db.commit()
        return [], skipped
    last = db.execute(
        "UPDATE invoice_counter SET last_number = last_number + ? WHERE id = 1 "
        "RETURNING last_number",
        (len(chargeable),),
    ).fetchone()[0]
    number = int(last) - len(chargeable) + 1
    invoices, planned = [], []
    for offset, row in enumerate(chargeable):
        (
            sid,
            account,
            started,
            trial_end,
            p_start,
            p_end,
            price,
            currency,
            failed,
            _pm,
            _t,
            term,
        ) = row
        anchor = db.from_db(trial_end) if trial_end else db.from_db(started)
        current = Period(db.from_db(p_start), db.from_db(p_end))
        period = following(anchor, Term(term), current)
        planned.append((row, period, number + offset))
        invoices.append(
            (number + offset, account, sid, InvoiceKind.RENEWAL.value, db.to_db(period.start),
             db.to_db(period.end), price, currency, InvoiceStatus.OPEN.value, at)
        )  # fmt: skip
    db.insert_rows(
        "invoices",
        "number, account_id, subscription_id, kind, period_start, period_end, amount_minor, "
        "currency, status, created_at",
        invoices,
    )
    invoice_ids = dict(
        db.execute(
            "SELECT number, id FROM invoices WHERE number BETWEEN ? AND ?",
            (number, number + len(chargeable) - 1),
        ).fetchall()
    )
    attempts, work = [], []
    for row, period, invoice_number in planned:
        sid, account, _s, _te, _ps, _pe, price, currency, failed, pm_id, token, _term = row
        attempt_no = int(failed) + 1
        key = idempotency_key(sid, period.start, attempt_no)
        invoice_id = invoice_ids[invoice_number]
        attempts.append(
            (account, invoice_id, sid, attempt_no, key, price, currency, pm_id, token,
             AttemptStatus.SENDING.value, at)
        )  # fmt: skip
        work.append(
            _Charge(
                key,
                sid,
                invoice_id,
                Money(int(price), currency),
                token,
                period,
                attempt_no,
                f"Renewal, invoice {invoice_number}",
            )
        )
    db.insert_rows(
        "payment_attempts",
        "account_id, invoice_id, subscription_id, attempt_no, idempotency_key, amount_minor, "
        "currency, payment_method_id, payment_token, status, created_at",
        attempts,
    )
    db.commit()
    return work, skipped


def _gateway_charge(gateway: SandboxGateway, item: _Charge) -> ChargeResult | None:
    try:
        return gateway.charge(item.key, item.amount, item.token, item.description)
    except (GatewayTimeout, GatewayUnavailable):
        return None


def _baseline_record(
    db: PlainSql, now: datetime, work: list[_Charge], outcomes: list[ChargeResult | None]
) -> BaselineSummary:
    summary = BaselineSummary()
    at = db.to_db(now)
    attempts, paid, renewed, declined, unknown, released = [], [], [], [], [], []
    for item, outcome in zip(work, outcomes, strict=True):
        if outcome is None:
            unknown.append((at, item.key))
            released.append((item.subscription_id,))
            summary.unknown += 1
        elif outcome.succeeded:
            attempts.append(
                (AttemptStatus.SUCCEEDED.value, outcome.gateway_ref, None, at, item.key)
            )
            paid.append((at, item.invoice_id))
            renewed.append(
                (db.to_db(item.period.start), db.to_db(item.period.end), item.subscription_id)
            )
            summary.charged += 1
        else:
            attempts.append(
                (AttemptStatus.DECLINED.value, outcome.gateway_ref, outcome.decline_reason, at,
                 item.key)
            )  # fmt: skip
            declined.append(
                (item.attempt_no, db.to_db(now + timedelta(days=3)), item.subscription_id)
            )
            summary.declined += 1
    db.begin_write()
    db.executemany(
        "UPDATE payment_attempts SET status = ?, gateway_ref = ?, decline_reason = ?, "
        "settled_at = ? WHERE idempotency_key = ? AND status IN ('sending', 'unknown')",
        attempts,
    )
    db.executemany(
        "UPDATE payment_attempts SET status = 'unknown', settled_at = NULL "
        "WHERE idempotency_key = ? AND status = 'sending'",
        [(key,) for _at, key in unknown],
    )
    db.executemany("UPDATE invoices SET status = 'paid', paid_at = ? WHERE id = ?", paid)
    db.executemany(
        "UPDATE subscriptions SET "
        "status = CASE WHEN status = 'canceled' THEN status ELSE 'active' END, "
        "period_start = ?, period_end = ?, failed_attempts = 0, next_retry_at = NULL, "
        "claimed_until = NULL, version = version + 1 WHERE id = ?",
        renewed,
    )
    db.executemany(
        "UPDATE subscriptions SET status = 'past_due', failed_attempts = ?, next_retry_at = ?, "
        "claimed_until = NULL, version = version + 1 WHERE id = ?",
        declined,
    )
    db.executemany("UPDATE subscriptions SET claimed_until = NULL WHERE id = ?", released)
    db.commit()
    return summary


def baseline_renew(
    url: str,
    gateway: SandboxGateway,
    clock: SystemClock,
    *,
    batch: int,
    in_flight: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[BaselineSummary, int]:
    """The plain-SQL two-phase loop. Returns its summary and how many statements it sent."""
    db = PlainSql(url)
    total = BaselineSummary()
    pool = ThreadPoolExecutor(max_workers=in_flight) if in_flight > 1 else None
    try:
        db.begin_write()
        db.execute(
            "INSERT INTO invoice_counter (id, last_number) VALUES (1, 0) "
            "ON CONFLICT (id) DO NOTHING"
        )
        db.commit()
        while True:
            work, skipped = _baseline_claim(db, clock.now(), batch)
            total.skipped += skipped
            if not work and not skipped:
                break
            if pool is None:
                outcomes = [_gateway_charge(gateway, item) for item in work]
            else:
                outcomes = list(pool.map(lambda item: _gateway_charge(gateway, item), work))
            done = _baseline_record(db, clock.now(), work, outcomes)
            for name in ("charged", "declined", "unknown"):
                setattr(total, name, getattr(total, name) + getattr(done, name))
            if progress:
                progress(len(work) + skipped)
    finally:
        if pool is not None:
            pool.shutdown()
        db.close()
    return total, db.statements


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class Job:
    kind: str  # "fairsub", "baseline" or "gateway"
    label: str
    url: str  # the fairsub database ("" for "gateway")
    data_dir: str
    ledger: str  # this run's own copy of the sandbox ledger
    token: str
    n: int  # due subscriptions (or charges, for "gateway")
    latency: float = 0.0
    in_flight: int = 1
    batch: int = 200
    pg_pid: int | None = None
    profile_path: str | None = None  # cProfile the run (and count SQL statements)
    workers: int = 1  # processes renewing the same database at once


@dataclass
class Result:
    label: str
    kind: str
    n: int
    in_flight: int
    latency: float
    seconds: float
    cpu_self: float
    cpu_pg: float
    cpu_machine: float
    rss_start_kib: int
    hwm_kib: int
    done: int
    summary: dict[str, int]
    check: dict[str, int]
    statements: int | None = None
    profile_path: str | None = None

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_each(self) -> float:
        """CPU of this process and PostgreSQL per renewal (or charge): what one costs,
        however busy the machine was."""
        return 1000 * (self.cpu_self + self.cpu_pg) / self.done if self.done else 0.0

    @property
    def growth_mib(self) -> float:
        return max(0, self.hwm_kib - self.rss_start_kib) / 1024

    def cpu_percent(self, which: str) -> float:
        if self.seconds <= 0:
            return 0.0
        if which == "self":
            return 100 * self.cpu_self / self.seconds
        if which == "pg":
            return 100 * self.cpu_pg / self.seconds
        other = self.cpu_machine - self.cpu_self - self.cpu_pg
        return max(0.0, 100 * other / self.seconds)

    @property
    def renewed_once(self) -> bool | None:
        if self.kind == "gateway":
            return None
        wanted = {self.n}
        return set(self.check.values()) == wanted


def _progress_printer(label: str, total: int) -> Callable[[int], None]:
    state = {"done": 0, "shown": time.perf_counter(), "start": time.perf_counter()}

    def progress(count: int) -> None:
        state["done"] += count
        now = time.perf_counter()
        if now - state["shown"] >= 15:
            state["shown"] = now
            rate = state["done"] / (now - state["start"])
            print(
                f"      {label}: {int(state['done']):,}/{total:,} ({rate:,.0f}/s, load "
                f"{load_average()})",
                file=sys.stderr,
                flush=True,
            )

    return progress


def _charge_straight(gateway: SandboxGateway, job: Job) -> int:
    amount = Money(499, "USD")

    def one(i: int) -> bool:
        return gateway.charge(f"bench-{i}", amount, job.token, "Bench charge").succeeded

    if job.in_flight <= 1:
        return sum(one(i) for i in range(job.n))
    with ThreadPoolExecutor(max_workers=job.in_flight) as pool:
        return sum(pool.map(one, range(job.n)))


def _count_statements(engine: Engine) -> dict[str, int]:
    counted = {"statements": 0}

    @event.listens_for(engine, "before_cursor_execute")
    def count(*_args: Any) -> None:
        counted["statements"] += 1

    return counted


def run_job(job: Job, start: Any = None) -> dict[str, Any]:
    """One measured run, in its own (spawned) process. With `start` (a barrier shared by
    several workers) it waits for the others before measuring, and leaves the check of the
    result to the parent, which runs it once all have finished."""
    clock = SystemClock()
    gateway = SandboxGateway(Path(job.ledger), clock, latency=job.latency)
    container: Container | None = None
    if job.kind == "fairsub":
        container = bootstrap(_settings(job.url, Path(job.data_dir)), clock=clock, gateway=gateway)
    # A listener call per statement: well under 1% of what a statement costs.
    counted = _count_statements(container.engine) if container else None
    progress = _progress_printer(job.label, job.n)
    profiler = cProfile.Profile() if job.profile_path else None
    started_at = clock.now()
    summary: dict[str, int] = {}
    statements: int | None = None
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    rss_start = _proc_status_kib("VmRSS")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    machine0 = machine_busy_seconds()
    pg0 = cpu_seconds(job.pg_pid, children=True) if job.pg_pid else 0.0
    if start is not None:
        start.wait()
    began = time.perf_counter()
    if profiler:
        profiler.enable()
    if job.kind == "fairsub":
        assert container is not None
        result = billing.renew_due(
            container.uows,
            gateway,
            clock,
            batch=job.batch,
            in_flight=job.in_flight,
            progress=progress,
        )
        summary = {
            "charged": result.charged,
            "declined": result.declined,
            "unknown": result.unknown,
            "skipped": result.skipped,
        }
        done = result.charged + result.declined + result.unknown + result.skipped
    elif job.kind == "baseline":
        plain, statements = baseline_renew(
            job.url, gateway, clock, batch=job.batch, in_flight=job.in_flight, progress=progress
        )
        summary = asdict(plain)
        done = plain.charged + plain.declined + plain.unknown + plain.skipped
    else:
        done = job.n
        summary = {"charged": _charge_straight(gateway, job)}
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_self = usage.ru_utime + usage.ru_stime - cpu0
    cpu_machine = machine_busy_seconds() - machine0
    cpu_pg = (cpu_seconds(job.pg_pid, children=True) - pg0) if job.pg_pid else 0.0
    hwm = _proc_status_kib("VmHWM")
    if profiler and job.profile_path:
        profiler.dump_stats(job.profile_path)
    if counted is not None:
        statements = counted["statements"]
    check = _verify(job, started_at) if start is None else {}
    if container is not None:
        container.close()
    gateway.close()
    return asdict(
        Result(
            label=job.label,
            kind=job.kind,
            n=job.n,
            in_flight=job.in_flight,
            latency=job.latency,
            seconds=seconds,
            cpu_self=cpu_self,
            cpu_pg=cpu_pg,
            cpu_machine=cpu_machine,
            rss_start_kib=rss_start,
            hwm_kib=hwm,
            done=done,
            summary=summary,
            check=check,
            statements=statements,
            profile_path=job.profile_path,
        )
    )


def _verify(job: Job, started_at: datetime) -> dict[str, int]:
    """Every due subscription renewed exactly once? Counted, not asserted."""
    ledger = sqlite3.connect(job.ledger)
    try:
        charges = int(ledger.execute("SELECT count(*) FROM charges WHERE succeeded").fetchone()[0])
    finally:
        ledger.close()
    if job.kind == "gateway":
        return {"sandbox charges": charges}
    engine = make_engine(job.url)
    inv, pa, s = t.invoices, t.payment_attempts, t.subscriptions
    try:
        with engine.connect() as c:
            paid = inv.c.status == InvoiceStatus.PAID.value
            count = func.count()
            return {
                "paid invoices": int(c.scalar(select(count).where(paid)) or 0),
                "subscriptions paid": int(
                    c.scalar(select(func.count(distinct(inv.c.subscription_id))).where(paid)) or 0
                ),
                "succeeded attempts": int(
                    c.scalar(select(count).where(pa.c.status == AttemptStatus.SUCCEEDED.value)) or 0
                ),
                "attempts": int(c.scalar(select(count).select_from(pa)) or 0),
                "renewed": int(c.scalar(select(count).where(s.c.period_end > started_at)) or 0),
                "sandbox charges": charges,
            }
    finally:
        engine.dispose()


def in_child(job: Job) -> Result:
    if job.workers > 1:
        return in_children(job)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return Result(**pool.submit(run_job, job).result())


def _worker_main(job: Job, start: Any, results: Any) -> None:
    results.put(run_job(job, start))


def in_children(job: Job) -> Result:
    """`job.workers` processes renewing one database at once, started together: the
    figures are for all of them (renewals summed over the longest wall time; CPU summed,
    PostgreSQL's counted once)."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(job.workers)
    results = context.Queue()
    started_at = datetime.now(UTC)
    processes = [
        context.Process(target=_worker_main, args=(job, start, results)) for _ in range(job.workers)
    ]
    for process in processes:
        process.start()
    parts = [Result(**results.get()) for _ in processes]
    for process in processes:
        process.join()
    summary: dict[str, int] = {}
    for part in parts:
        for name, value in part.summary.items():
            summary[name] = summary.get(name, 0) + value
    return Result(
        label=job.label,
        kind=job.kind,
        n=job.n,
        in_flight=job.in_flight,
        latency=job.latency,
        seconds=max(p.seconds for p in parts),
        cpu_self=sum(p.cpu_self for p in parts),
        cpu_pg=max(p.cpu_pg for p in parts),
        cpu_machine=max(p.cpu_machine for p in parts),
        rss_start_kib=min(p.rss_start_kib for p in parts),
        hwm_kib=max(p.hwm_kib for p in parts),
        done=sum(p.done for p in parts),
        summary=summary,
        check=_verify(job, started_at),
        statements=sum(p.statements or 0 for p in parts) or None,
    )


# --------------------------------------------------------------------------- one database


@dataclass
class Report:
    name: str
    results: dict[str, Result] = field(default_factory=dict)
    setup_seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load: list[str] = field(default_factory=list)


def run_database(
    db: Database, args: argparse.Namespace, ledger_template: Path, token: str
) -> Report:
    began = time.perf_counter()
    report = Report(db.name)
    report.load.append(load_average())
    small = max(1, args.n // 10)
    datasets = {"small": small, "large": args.n, "latency": args.latency_n}
    for name, size in datasets.items():
        console.print(f"  {db.name}: seeding {size:,} due subscriptions ({name}) ...")
        url = db.template_url(name)
        report.setup_seconds[name] = seed(url, db.data_dir, size, token, args.seed)
    latency = args.latency_ms / 1000
    tag = db.name.lower()

    def measure(key: str, job_kind: str, dataset: str, label: str, **extra: Any) -> None:
        ledger = db.data_dir / f"ledger_{key}.db"
        copy_sqlite(ledger_template, ledger)
        try:
            size = datasets.get(dataset, small)
            console.print(f"  {db.name}: {label} ({size:,}) ... [dim]load {load_average()}[/dim]")
            if job_kind == "gateway":
                job = Job("gateway", label, "", str(db.data_dir), str(ledger), token, size, **extra)
                report.results[key] = in_child(job)
                return
            with db.fresh_copy(dataset, f"{tag}_{key}") as url:
                job = Job(
                    job_kind,
                    label,
                    url,
                    str(db.data_dir),
                    str(ledger),
                    token,
                    size,
                    batch=args.batch,
                    pg_pid=db.pg_pid,
                    **extra,
                )
                report.results[key] = in_child(job)
        finally:
            remove_sqlite(ledger)

    measure("gateway", "gateway", "small", "sandbox alone (charges/s)")
    measure("baseline", "baseline", "large", "baseline: plain SQL")
    measure("fairsub-small", "fairsub", "small", "fairsub renew_due, N/10")
    measure("fairsub", "fairsub", "large", "fairsub renew_due")
    if db.postgres is not None and args.workers > 1:
        measure(
            "fairsub-workers",
            "fairsub",
            "large",
            f"fairsub renew_due, {args.workers} workers",
            workers=args.workers,
        )
    measure(
        "baseline-latency",
        "baseline",
        "latency",
        f"baseline, {args.latency_ms:g} ms x {args.in_flight} in flight",
        latency=latency,
        in_flight=args.in_flight,
    )
    measure(
        "fairsub-latency",
        "fairsub",
        "latency",
        f"fairsub, {args.latency_ms:g} ms x {args.in_flight} in flight",
        latency=latency,
        in_flight=args.in_flight,
    )
    if args.profile:
        path = Path(args.profile_dir) / f"billing_run-{tag}.prof"
        measure(
            "profile",
            "fairsub",
            "small",
            "fairsub renew_due, N/10, under cProfile",
            profile_path=str(path),
        )
    counts = [
        f"{r.label} {r.statements / r.done:.2f}"
        for r in report.results.values()
        if r.statements and r.done
    ]
    if counts:
        report.notes.append(
            "SQL statements per renewal (an executemany counts once): " + "; ".join(counts)
        )
    for db_name in list(db.templates):
        if db.postgres is not None:
            db.postgres.drop_database(db.templates[db_name])
        else:
            remove_sqlite(Path(db.templates[db_name]))
    report.load.append(load_average())
    report.seconds = time.perf_counter() - began
    return report


# --------------------------------------------------------------------------- report


def targets(report: Report, args: argparse.Namespace) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met?) for each target of the issue."""
    r = report.results
    found: list[tuple[str, str, bool | None]] = []
    fairsub, base = r.get("fairsub"), r.get("baseline")
    if fairsub:
        goal = TARGET_RATE[report.name]
        found.append(
            (
                f"fairsub ≥ {goal:,.0f} renewals/s (zero latency)",
                f"{fairsub.rate:,.0f}/s",
                fairsub.rate >= goal,
            )
        )
    if fairsub and base and base.rate > 0:
        ratio = fairsub.rate / base.rate
        found.append(
            (
                f"fairsub ≥ {TARGET_RATIO:.0%} of plain-SQL baseline",
                f"{ratio:.0%} ({fairsub.rate:,.0f} / {base.rate:,.0f})",
                ratio >= TARGET_RATIO,
            )
        )
    latency = r.get("fairsub-latency")
    if latency and args.latency_ms > 0:
        ceiling = args.in_flight / (args.latency_ms / 1000)
        share = latency.rate / ceiling
        found.append(
            (
                f"≥ {TARGET_LATENCY_SHARE:.0%} of C/L = {args.in_flight}/"
                f"{args.latency_ms:g} ms = {ceiling:,.0f}/s",
                f"{share:.0%} ({latency.rate:,.0f}/s)",
                share >= TARGET_LATENCY_SHARE,
            )
        )
    small = r.get("fairsub-small")
    if fairsub and small:
        extra = fairsub.growth_mib - small.growth_mib
        slope = extra * 1024 * 1024 / max(1, fairsub.done - small.done)
        found.append(
            (
                f"memory flat: RSS growth at N ≤ at N/10 + {FLAT_SLACK_MIB:g} MiB",
                f"{small.growth_mib:.1f} → {fairsub.growth_mib:.1f} MiB ({slope:+.0f} B/renewal)",
                extra <= FLAT_SLACK_MIB,
            )
        )
    workers = r.get("fairsub-workers")
    if fairsub and workers and fairsub.rate > 0:
        found.append(
            (
                f"{args.workers} workers faster than one",
                f"{workers.rate / fairsub.rate:.2f}x ({workers.rate:,.0f}/s)",
                workers.rate > fairsub.rate,
            )
        )
    keys = ("fairsub-small", "fairsub", "fairsub-workers", "fairsub-latency", "baseline")
    for key in (*keys, "baseline-latency"):
        result = r.get(key)
        if result is not None:
            found.append(
                (
                    f"{result.label}: every subscription renewed once",
                    "yes" if result.renewed_once else _check_text(result),
                    result.renewed_once,
                )
            )
    return found


def _check_text(result: Result) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in result.check.items()) + f" (want {result.n:,})"


def _mark(met: bool | None) -> str:
    return "" if met is None else ("[green]PASS[/green]" if met else "[red]MISS[/red]")


def _other(result: Result) -> str:
    other = result.cpu_percent("other")
    return f"[yellow]{other:.0f}[/yellow]" if other >= OTHER_WARN else f"{other:.0f}"


def print_report(report: Report, args: argparse.Namespace) -> None:
    table = Table(title=f"{report.name}: batch {args.batch}, N = {args.n:,}", title_justify="left")
    for heading in (
        "Scenario",
        "N",
        "latency ms x in flight",
        "seconds",
        "per s",
        "vs baseline",
        "CPU % self" + (" / pg" if report.name == "PostgreSQL" else ""),
        "other CPU %",
        "CPU ms each" + (" (self+pg)" if report.name == "PostgreSQL" else ""),
        "peak RSS growth MiB",
        "renewed once",
    ):
        table.add_column(heading, justify="left" if heading == "Scenario" else "right")
    baselines = {
        "fairsub": "baseline",
        "fairsub-small": "baseline",
        "fairsub-workers": "baseline",
        "fairsub-latency": "baseline-latency",
    }
    for key, result in report.results.items():
        base = report.results.get(baselines.get(key, ""))
        versus = f"{result.rate / base.rate:.0%}" if base and base.rate else "-"
        cpu = f"{result.cpu_percent('self'):.0f}"
        if report.name == "PostgreSQL":
            cpu += f" / {result.cpu_percent('pg'):.0f}"
        once = result.renewed_once
        table.add_row(
            result.label,
            f"{result.n:,}",
            f"{result.latency * 1000:g} x {result.in_flight}",
            f"{result.seconds:.1f}",
            f"{result.rate:,.0f}",
            versus,
            cpu,
            _other(result),
            f"{result.cpu_ms_each:.2f}",
            f"{result.growth_mib:.1f}",
            "-" if once is None else ("yes" if once else "[red]NO[/red]"),
        )
    console.print(table)
    verdicts = Table(title=f"{report.name}: targets (informational)", title_justify="left")
    for heading in ("Target", "Measured", ""):
        verdicts.add_column(heading)
    for target, measured, met in targets(report, args):
        verdicts.add_row(target, measured, _mark(met))
    console.print(verdicts)
    setup = ", ".join(f"{k} {v:.1f} s" for k, v in report.setup_seconds.items())
    console.print(f"  set-up (not counted): {setup}")
    for result in report.results.values():
        if result.renewed_once is False:
            console.print(f"  [red]{result.label}: {_check_text(result)}[/red]")
    busy = [r.label for r in report.results.values() if r.cpu_percent("other") >= OTHER_WARN]
    if busy:
        console.print(
            f"  [yellow]other processes used ≥ {OTHER_WARN:.0f}% of a core during: "
            f"{', '.join(busy)}; those figures are low. Run again on a quiet machine.[/yellow]"
        )
    for note in report.notes:
        console.print(f"  {note}")
    console.print(
        f"  [dim]{report.name} took {report.seconds:.0f} s; load average "
        f"{' → '.join(report.load)}[/dim]\n"
    )


def print_profile(path: Path, lines: int) -> None:
    for order in ("tottime", "cumulative"):
        buffer = io.StringIO()
        pstats.Stats(str(path), stream=buffer).sort_stats(order).print_stats(lines)
        text_out = buffer.getvalue()
        start = text_out.find("   ncalls")
        console.print(f"[bold]{path.name}: top {lines} by {order}[/bold]")
        console.print(text_out[start:] if start >= 0 else text_out, markup=False)


def markdown(reports: list[Report], args: argparse.Namespace) -> str:
    lines = [
        "| Database | Scenario | N | per s | vs baseline | CPU ms each | peak RSS growth MiB "
        "| other CPU % |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    pairs = {
        "fairsub": "baseline",
        "fairsub-small": "baseline",
        "fairsub-latency": "baseline-latency",
    }
    for report in reports:
        for key, result in report.results.items():
            base = report.results.get(pairs.get(key, ""))
            versus = f"{result.rate / base.rate:.0%}" if base and base.rate else "-"
            lines.append(
                f"| {report.name} | {result.label} | {result.n:,} | {result.rate:,.0f} | "
                f"{versus} | {result.cpu_ms_each:.2f} | {result.growth_mib:.1f} | "
                f"{result.cpu_percent('other'):.0f} |"
            )
    lines += ["", "| Database | Target | Measured | Met |", "| --- | --- | --- | --- |"]
    for report in reports:
        for target, measured, met in targets(report, args):
            shown = "" if met is None else ("yes" if met else "no")
            lines.append(f"| {report.name} | {target} | {measured} | {shown} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Billing-run benchmark: services.billing.renew_due over N due "
        "subscriptions beside a plain-SQL two-phase loop, on SQLite and PostgreSQL, with the "
        "sandbox gateway at zero latency and at a simulated latency. Figures are printed, "
        "not asserted.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=100_000, help="due subscriptions")
    parser.add_argument("--million", action="store_true", help="N = 1,000,000")
    parser.add_argument("--quick", action="store_true", help="smoke run: N = 5,000")
    parser.add_argument("--batch", type=int, default=200, help="renew_due(batch=)")
    parser.add_argument(
        "--latency-ms", type=float, default=50.0, help="simulated gateway latency L"
    )
    parser.add_argument(
        "--in-flight", type=int, default=16, help="charges in flight C with latency"
    )
    parser.add_argument(
        "--latency-n", type=int, default=None, help="due subscriptions in the latency run "
        "(default 2,000; 640 with --quick)"
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes in the PostgreSQL multi-worker run"
    )
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--pg-bin", default=None, help="PostgreSQL bin directory (default: newest found)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run fairsub on N/10 under cProfile and print the hot spots",
    )
    parser.add_argument("--profile-dir", default=tempfile.gettempdir(), help="where .prof files go")
    parser.add_argument("--profile-lines", type=int, default=30, help="rows of profile shown")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the data")
    args = parser.parse_args(argv)
    if args.million:
        args.n = 1_000_000
    if args.quick:
        args.n = 5_000
    if args.latency_n is None:
        args.latency_n = 640 if args.quick else 2_000
    if args.n < 10 or args.batch < 1 or args.in_flight < 1 or args.latency_n < 1:
        parser.error("--n must be at least 10; --batch, --in-flight, --latency-n positive")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    begun = time.perf_counter()
    postgres: Postgres | None = None
    reports: list[Report] = []
    base = Path(tempfile.mkdtemp(prefix="fairsub-bench-billing-"))
    try:
        pg_version = None
        if not args.skip_postgres:
            pg_bin = Postgres.find(args.pg_bin)
            if pg_bin is None:
                console.print(
                    "[yellow]PostgreSQL binaries not found (Debian package postgresql, or "
                    "--pg-bin): running SQLite only.[/yellow]"
                )
            else:
                postgres = Postgres(
                    pg_bin, ["max_connections=100"], prefix="fairsub-bench-billing-pg-"
                )
                postgres.start()
                pg_version = postgres.version()
        console.print("[bold]fairsub billing-run benchmark[/bold]")
        for key, value in machine_info(pg_version).items():
            console.print(f"  {key}: {value}")
        console.print(
            f"  run: N = {args.n:,} (and N/10 = {max(1, args.n // 10):,} for memory), batch "
            f"{args.batch}, zero-latency runs with in_flight 1; latency run "
            f"{args.latency_n:,} with L = {args.latency_ms:g} ms, C = {args.in_flight}\n"
        )
        ledger_template = base / "sandbox-template.db"
        token = make_ledger_template(ledger_template)
        if not args.skip_sqlite:
            data_dir = base / "sqlite"
            data_dir.mkdir()
            reports.append(run_database(Database("SQLite", data_dir), args, ledger_template, token))
            print_report(reports[-1], args)
        if postgres is not None:
            data_dir = base / "postgresql"
            data_dir.mkdir()
            database = Database("PostgreSQL", data_dir, postgres)
            reports.append(run_database(database, args, ledger_template, token))
            print_report(reports[-1], args)
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(base, ignore_errors=True)
    if args.profile:
        for report in reports:
            profiled = report.results.get("profile")
            if profiled and profiled.profile_path:
                print_profile(Path(profiled.profile_path), args.profile_lines)
    if reports:
        console.print("[bold]Summary (markdown)[/bold]")
        console.print(markdown(reports, args), markup=False)
    console.print(
        f"\n[dim]Whole run: {time.perf_counter() - begun:.0f} s; load average now "
        f"{load_average()}. Targets are informational; the exit code does not depend on "
        "them.[/dim]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
