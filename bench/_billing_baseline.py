"""The plain-SQL two-phase renewal loop the billing benchmark compares fairsub with."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from _billing_common import LEASE
from fairsub.adapters.clock import SystemClock
from fairsub.adapters.payments.sandbox import SandboxGateway
from fairsub.domain.billing import AttemptStatus, InvoiceKind, InvoiceStatus, idempotency_key
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, Term, following
from fairsub.services.ports import ChargeResult, GatewayTimeout, GatewayUnavailable

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
