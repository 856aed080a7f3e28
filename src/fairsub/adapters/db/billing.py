"""The billing ledger: invoices and payment attempts, and claiming due renewals.

Claiming is the one place where several workers meet. On PostgreSQL the due rows are
locked with FOR UPDATE SKIP LOCKED, so workers take disjoint batches; on SQLite the
write transaction itself is exclusive (BEGIN IMMEDIATE). Either way a claimed row gets
a lease (claimed_until), so a crashed worker's rows come back after the lease runs out.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, exists, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from fairsub.adapters.db.tables import (
    invoice_counter,
    invoices,
    payment_attempts,
    payment_methods,
    plans,
    subscriptions,
)
from fairsub.adapters.db.types import new_id
from fairsub.domain.billing import (
    AttemptStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    PaymentAttempt,
)
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, Term
from fairsub.services.ports import DueRenewal

s, inv, pa, pm, p = subscriptions, invoices, payment_attempts, payment_methods, plans

UNSETTLED = (AttemptStatus.SENDING.value, AttemptStatus.UNKNOWN.value)


def _invoice(row: Row[Any]) -> Invoice:
    return Invoice(
        id=row.id,
        number=row.number,
        account_id=row.account_id,
        subscription_id=row.subscription_id,
        kind=InvoiceKind(row.kind),
        period_start=row.period_start,
        period_end=row.period_end,
        amount=Money(row.amount_minor, row.currency),
        status=InvoiceStatus(row.status),
        created_at=row.created_at,
        paid_at=row.paid_at,
    )


def _attempt(row: Row[Any]) -> PaymentAttempt:
    return PaymentAttempt(
        id=row.id,
        account_id=row.account_id,
        invoice_id=row.invoice_id,
        subscription_id=row.subscription_id,
        attempt_no=row.attempt_no,
        idempotency_key=row.idempotency_key,
        amount=Money(row.amount_minor, row.currency),
        payment_token=row.payment_token,
        status=AttemptStatus(row.status),
        created_at=row.created_at,
        gateway_ref=row.gateway_ref,
        decline_reason=row.decline_reason,
        payment_method_id=row.payment_method_id,
    )


class SqlBilling:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._postgres = connection.dialect.name == "postgresql"

    # -- claiming ---------------------------------------------------------------------

    def claim_due(self, now: datetime, limit: int, lease_until: datetime) -> list[DueRenewal]:
        """Subscriptions whose period is over and that should be charged now: renewals
        (auto-renew on) and dunning retries (past due, retry time reached). Each comes
        back leased to the caller, with no charge for it in flight."""
        in_flight = exists().where(pa.c.subscription_id == s.c.id, pa.c.status.in_(UNSETTLED))
        renewal = and_(s.c.status.in_(("active", "trialing")), s.c.period_end <= now)
        retry = and_(s.c.status == "past_due", s.c.next_retry_at <= now)
        query = (
            select(
                s.c.id,
                s.c.account_id,
                s.c.status,
                s.c.started_at,
                s.c.trial_ends_at,
                s.c.period_start,
                s.c.period_end,
                s.c.price_minor,
                s.c.currency,
                s.c.failed_attempts,
                s.c.payment_method_id,
                pm.c.token,
                p.c.term,
            )
            .join(p, p.c.code == s.c.plan_code)
            .outerjoin(pm, pm.c.id == s.c.payment_method_id)
            .where(
                s.c.auto_renew.is_(True),
                s.c.reseller_name.is_(None),
                or_(renewal, retry),
                or_(s.c.claimed_until.is_(None), s.c.claimed_until <= now),
                ~in_flight,
            )
            .order_by(s.c.period_end)
            .limit(limit)
        )
        if self._postgres:
            query = query.with_for_update(of=s, skip_locked=True)
        rows = self._c.execute(query).all()
        if rows:
            self._c.execute(
                update(s).where(s.c.id.in_([r.id for r in rows])).values(claimed_until=lease_until)
            )
        return [
            DueRenewal(
                subscription_id=r.id,
                account_id=r.account_id,
                status=r.status,
                anchor=r.trial_ends_at or r.started_at,
                period=Period(r.period_start, r.period_end),
                term=Term(r.term),
                price=Money(r.price_minor, r.currency),
                failed_attempts=r.failed_attempts,
                payment_method_id=r.payment_method_id,
                payment_token=r.token,
            )
            for r in rows
        ]

    def release(self, subscription_id: int) -> None:
        self._c.execute(update(s).where(s.c.id == subscription_id).values(claimed_until=None))

    # -- invoices and attempts --------------------------------------------------------

    def take_invoice_numbers(self, count: int) -> int:
        """Reserve `count` consecutive invoice numbers; returns the first. The counter row
        is locked until commit, so numbers are sequential without gaps."""
        locked = select(invoice_counter.c.last_number).where(invoice_counter.c.id == 1)
        row = self._c.execute(locked.with_for_update()).first()
        if row is None:
            # The very first number. Two first callers must not both insert the row: on
            # PostgreSQL the second waits here for the first to commit, then finds it.
            dialect_insert = pg_insert if self._postgres else sqlite_insert
            self._c.execute(
                dialect_insert(invoice_counter)
                .values(id=1, last_number=0)
                .on_conflict_do_nothing(index_elements=["id"])
            )
            row = self._c.execute(locked.with_for_update()).first()
        last = 0 if row is None else int(row.last_number)
        counter = update(invoice_counter).where(invoice_counter.c.id == 1)
        self._c.execute(counter.values(last_number=last + count))
        return last + 1

    def invoice_for(self, subscription_id: int, period_start: datetime) -> Invoice | None:
        row = self._c.execute(
            select(inv).where(
                inv.c.subscription_id == subscription_id, inv.c.period_start == period_start
            )
        ).first()
        return _invoice(row) if row else None

    def get_invoice(self, invoice_id: int) -> Invoice | None:
        row = self._c.execute(select(inv).where(inv.c.id == invoice_id)).first()
        return _invoice(row) if row else None

    def add_invoice(
        self,
        *,
        number: int,
        account_id: int,
        subscription_id: int,
        kind: InvoiceKind,
        period: Period,
        amount: Money,
        at: datetime,
    ) -> Invoice:
        result = self._c.execute(
            insert(inv).values(
                number=number,
                account_id=account_id,
                subscription_id=subscription_id,
                kind=kind.value,
                period_start=period.start,
                period_end=period.end,
                amount_minor=amount.amount_minor,
                currency=amount.currency,
                status=InvoiceStatus.OPEN.value,
                created_at=at,
            )
        )
        return Invoice(
            new_id(result),
            number,
            account_id,
            subscription_id,
            kind,
            period.start,
            period.end,
            amount,
            InvoiceStatus.OPEN,
            at,
        )

    def set_invoice_status(
        self, invoice_id: int, status: InvoiceStatus, at: datetime | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status.value}
        if status is InvoiceStatus.PAID:
            values["paid_at"] = at
        self._c.execute(update(inv).where(inv.c.id == invoice_id).values(**values))

    def open_invoice_for(self, subscription_id: int) -> Invoice | None:
        row = self._c.execute(
            select(inv)
            .where(
                inv.c.subscription_id == subscription_id, inv.c.status == InvoiceStatus.OPEN.value
            )
            .order_by(inv.c.period_start.desc())
            .limit(1)
        ).first()
        return _invoice(row) if row else None

    def attempts_made(self, invoice_id: int) -> int:
        return int(
            self._c.execute(
                select(func.count()).select_from(pa).where(pa.c.invoice_id == invoice_id)
            ).scalar_one()
        )

    def add_attempt(
        self,
        *,
        invoice: Invoice,
        attempt_no: int,
        key: str,
        payment_method_id: int | None,
        payment_token: str,
        at: datetime,
    ) -> PaymentAttempt:
        result = self._c.execute(
            insert(pa).values(
                account_id=invoice.account_id,
                invoice_id=invoice.id,
                subscription_id=invoice.subscription_id,
                attempt_no=attempt_no,
                idempotency_key=key,
                amount_minor=invoice.amount.amount_minor,
                currency=invoice.amount.currency,
                payment_method_id=payment_method_id,
                payment_token=payment_token,
                status=AttemptStatus.SENDING.value,
                created_at=at,
            )
        )
        return PaymentAttempt(
            new_id(result),
            invoice.account_id,
            invoice.id,
            invoice.subscription_id,
            attempt_no,
            key,
            invoice.amount,
            payment_token,
            AttemptStatus.SENDING,
            at,
            payment_method_id=payment_method_id,
        )

    def settle_attempt(
        self,
        attempt_id: int,
        status: AttemptStatus,
        at: datetime,
        *,
        gateway_ref: str | None = None,
        decline_reason: str | None = None,
    ) -> bool:
        """Record the gateway's answer once. False if it was already settled."""
        result = self._c.execute(
            update(pa)
            .where(pa.c.id == attempt_id, pa.c.status.in_(UNSETTLED))
            .values(
                status=status.value,
                gateway_ref=gateway_ref,
                decline_reason=decline_reason,
                settled_at=at if status is not AttemptStatus.UNKNOWN else None,
            )
        )
        return result.rowcount == 1

    def in_flight(self, subscription_id: int) -> PaymentAttempt | None:
        row = self._c.execute(
            select(pa)
            .where(pa.c.subscription_id == subscription_id, pa.c.status.in_(UNSETTLED))
            .limit(1)
        ).first()
        return _attempt(row) if row else None

    def unsettled(self, now: datetime, limit: int) -> list[PaymentAttempt]:
        """Attempts whose answer we do not have: lost answers (unknown), and charges whose
        worker's lease ran out before it recorded them (sending)."""
        stale_sending = and_(
            pa.c.status == AttemptStatus.SENDING.value,
            exists().where(
                s.c.id == pa.c.subscription_id,
                or_(s.c.claimed_until.is_(None), s.c.claimed_until <= now),
            ),
        )
        query = (
            select(pa)
            .where(or_(pa.c.status == AttemptStatus.UNKNOWN.value, stale_sending))
            .order_by(pa.c.id)
            .limit(limit)
        )
        if self._postgres:
            query = query.with_for_update(of=pa, skip_locked=True)
        return [_attempt(row) for row in self._c.execute(query)]

    def get_attempt(self, attempt_id: int) -> PaymentAttempt | None:
        row = self._c.execute(select(pa).where(pa.c.id == attempt_id)).first()
        return _attempt(row) if row else None

    # -- dunning and expiry -----------------------------------------------------------

    def set_dunning(
        self, subscription_id: int, failed_attempts: int, next_retry_at: datetime | None
    ) -> None:
        self._c.execute(
            update(s)
            .where(s.c.id == subscription_id)
            .values(
                failed_attempts=failed_attempts,
                next_retry_at=next_retry_at,
                claimed_until=None,
            )
        )

    def ending(self, now: datetime, grace_cutoff: datetime, limit: int) -> list[tuple[int, int]]:
        """Subscriptions to expire: turned off and past their period, or past due with no
        retry left and out of grace. None with a charge still in flight."""
        in_flight = exists().where(pa.c.subscription_id == s.c.id, pa.c.status.in_(UNSETTLED))
        query = (
            select(s.c.id, s.c.account_id)
            .where(
                or_(
                    and_(s.c.status == "canceled", s.c.period_end <= now),
                    and_(
                        s.c.status == "past_due",
                        s.c.next_retry_at.is_(None),
                        s.c.period_end <= grace_cutoff,
                    ),
                    and_(s.c.status == "incomplete", s.c.period_end <= now),
                ),
                ~in_flight,
            )
            .limit(limit)
        )
        if self._postgres:
            # Locked now, before the caller's first audit entry locks the audit head: a
            # turn-off locks its subscription and then the head, so locking rows one by
            # one after it deadlocks. One being turned off right now is left for next time.
            query = query.with_for_update(of=s, skip_locked=True)
        return [(row.id, row.account_id) for row in self._c.execute(query)]

    def lease(self, subscription_id: int, until: datetime) -> None:
        self._c.execute(update(s).where(s.c.id == subscription_id).values(claimed_until=until))

    def retry_past_due_now(self, account_id: int, now: datetime) -> list[int]:
        """A new card: every past-due direct subscription is due for a retry at once."""
        ids = list(
            self._c.execute(
                select(s.c.id).where(
                    s.c.account_id == account_id,
                    s.c.status == "past_due",
                    s.c.auto_renew.is_(True),
                    s.c.reseller_name.is_(None),
                )
            ).scalars()
        )
        if ids:
            self._c.execute(update(s).where(s.c.id.in_(ids)).values(next_retry_at=now))
        return ids

    def due_count(self, now: datetime) -> int:
        """Roughly how many renewals are due now, for a progress bar."""
        query = (
            select(func.count())
            .select_from(s)
            .where(
                s.c.auto_renew.is_(True),
                s.c.reseller_name.is_(None),
                or_(
                    and_(s.c.status.in_(("active", "trialing")), s.c.period_end <= now),
                    and_(s.c.status == "past_due", s.c.next_retry_at <= now),
                ),
            )
        )
        return int(self._c.execute(query).scalar_one())

    # -- reading ----------------------------------------------------------------------

    def statement(self, account_id: int) -> list[tuple[Invoice, list[PaymentAttempt]]]:
        invoice_rows = self._c.execute(
            select(inv)
            .where(inv.c.account_id == account_id)
            .order_by(inv.c.created_at.desc(), inv.c.number.desc())
        ).all()
        attempts: dict[int, list[PaymentAttempt]] = {}
        for row in self._c.execute(
            select(pa).where(pa.c.account_id == account_id).order_by(pa.c.id)
        ):
            attempts.setdefault(row.invoice_id, []).append(_attempt(row))
        return [(_invoice(row), attempts.get(row.id, [])) for row in invoice_rows]

    def ledger(self, batch: int = 5000) -> Iterator[PaymentAttempt]:
        """Every attempt, in id order, streamed in batches."""
        after = 0
        while True:
            rows = self._c.execute(
                select(pa).where(pa.c.id > after).order_by(pa.c.id).limit(batch)
            ).all()
            if not rows:
                return
            for row in rows:
                yield _attempt(row)
            after = rows[-1].id
