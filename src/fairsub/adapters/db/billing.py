"""The billing ledger: invoices and payment attempts (the renewal queue is billing_queue).

The billing run writes a batch at a time: each batch method is one statement over many
rows (adapters.db.bulk), built once at import, because building and compiling a statement
costs more than running it on a small row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from fairsub.adapters.db.billing_queue import RenewalQueue
from fairsub.adapters.db.bulk import inserting, updating
from fairsub.adapters.db.tables import (
    IN_FLIGHT,
    invoice_counter,
    invoices,
    payment_attempts,
    subscriptions,
)
from fairsub.domain.billing import (
    AttemptStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    PaymentAttempt,
)
from fairsub.domain.money import Money
from fairsub.domain.periods import Period
from fairsub.services.ports import AttemptAnswer

inv, pa, s = invoices, payment_attempts, subscriptions


def _columns_but(table: Table, *left_out: str) -> tuple[str, ...]:
    return tuple(c.name for c in table.c if c.name not in left_out)


# A new row has every column but its id and those filled in when the charge is answered.
# Its id comes back matched by a column unique in the batch rather than in parameter order:
# asking SQLAlchemy for the order makes it insert row by row on SQLite.
_ANSWERED = ("gateway_ref", "decline_reason", "settled_at")
_ADD_INVOICES = inserting(
    inv,
    _columns_but(inv, "id", "paid_at"),
    returning=(inv.c.id, inv.c.subscription_id, inv.c.period_start),
)
_ADD_ATTEMPTS = inserting(
    pa,
    _columns_but(pa, "id", *_ANSWERED),
    returning=(pa.c.id, pa.c.idempotency_key),
)
_SETTLE = updating(pa, "id", ("status", *_ANSWERED))
_INVOICE_PAID = updating(inv, "id", ("status", "paid_at"))
_INVOICE_STATUS = updating(inv, "id", ("status",))
# Every turn-off asks this: is a renewal's charge out right now?
_IN_FLIGHT = (
    select(pa)
    .where(
        pa.c.subscription_id == bindparam("b_subscription"),
        IN_FLIGHT,
    )
    .limit(1)
)


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


class SqlBilling(RenewalQueue):
    # -- invoices ---------------------------------------------------------------------

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
        return self.invoices_for({subscription_id: period_start}).get(subscription_id)

    def invoices_for(self, period_starts: Mapping[int, datetime]) -> dict[int, Invoice]:
        if not period_starts:
            return {}
        rows = self._c.execute(
            select(inv).where(
                inv.c.subscription_id.in_(sorted(period_starts)),
                inv.c.period_start >= min(period_starts.values()),
            )
        )
        found = (_invoice(row) for row in rows)
        return {
            i.subscription_id: i
            for i in found
            if period_starts[i.subscription_id] == i.period_start
        }

    def get_invoice(self, invoice_id: int) -> Invoice | None:
        return self.get_invoices([invoice_id]).get(invoice_id)

    def get_invoices(self, invoice_ids: Iterable[int]) -> dict[int, Invoice]:
        ids = sorted(set(invoice_ids))
        if not ids:
            return {}
        return {
            row.id: _invoice(row) for row in self._c.execute(select(inv).where(inv.c.id.in_(ids)))
        }

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
        draft = Invoice(
            0,
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
        return self.add_invoices([draft])[0]

    def add_invoices(self, drafts: Sequence[Invoice]) -> list[Invoice]:
        if not drafts:
            return []
        rows = [
            {
                "number": d.number,
                "account_id": d.account_id,
                "subscription_id": d.subscription_id,
                "kind": d.kind.value,
                "period_start": d.period_start,
                "period_end": d.period_end,
                "amount_minor": d.amount.amount_minor,
                "currency": d.amount.currency,
                "status": d.status.value,
                "created_at": d.created_at,
            }
            for d in drafts
        ]
        added = _ADD_INVOICES.execute(self._c, rows)
        ids = {(r.subscription_id, r.period_start): r.id for r in added}
        return [replace(d, id=int(ids[d.subscription_id, d.period_start])) for d in drafts]

    def set_invoice_status(
        self, invoice_id: int, status: InvoiceStatus, at: datetime | None = None
    ) -> None:
        if status is InvoiceStatus.PAID and at is None:
            raise ValueError("a paid invoice needs the time it was paid")
        self.set_invoice_statuses([(invoice_id, status)], at)

    def set_invoice_statuses(
        self, changes: Sequence[tuple[int, InvoiceStatus]], at: datetime | None
    ) -> None:
        """Paid invoices get `at` as their paid time; others keep theirs."""
        paid = [
            {"id": i, "status": s.value, "paid_at": at}
            for i, s in changes
            if s is InvoiceStatus.PAID
        ]
        other = [{"id": i, "status": s.value} for i, s in changes if s is not InvoiceStatus.PAID]
        if paid:
            _INVOICE_PAID.execute(self._c, paid)
        if other:
            _INVOICE_STATUS.execute(self._c, other)

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

    # -- payment attempts -------------------------------------------------------------

    def attempt_counts(self, invoice_ids: Iterable[int]) -> dict[int, int]:
        ids = sorted(set(invoice_ids))
        if not ids:
            return {}
        query = (
            select(pa.c.invoice_id, func.count())
            .where(pa.c.invoice_id.in_(ids))
            .group_by(pa.c.invoice_id)
        )
        return {int(invoice_id): int(n) for invoice_id, n in self._c.execute(query)}

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
        draft = PaymentAttempt(
            0,
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
        return self.add_attempts([draft])[0]

    def add_attempts(self, drafts: Sequence[PaymentAttempt]) -> list[PaymentAttempt]:
        if not drafts:
            return []
        rows = [
            {
                "account_id": d.account_id,
                "invoice_id": d.invoice_id,
                "subscription_id": d.subscription_id,
                "attempt_no": d.attempt_no,
                "idempotency_key": d.idempotency_key,
                "amount_minor": d.amount.amount_minor,
                "currency": d.amount.currency,
                "payment_method_id": d.payment_method_id,
                "payment_token": d.payment_token,
                "status": d.status.value,
                "created_at": d.created_at,
            }
            for d in drafts
        ]
        ids = {r.idempotency_key: r.id for r in _ADD_ATTEMPTS.execute(self._c, rows)}
        return [replace(d, id=int(ids[d.idempotency_key])) for d in drafts]

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
        answer = AttemptAnswer(attempt_id, status, gateway_ref, decline_reason)
        return bool(self.settle_attempts([answer], at))

    def settle_attempts(self, answers: Sequence[AttemptAnswer], at: datetime) -> set[int]:
        """The attempts still unsettled are locked first (FOR UPDATE on PostgreSQL; the
        write transaction is exclusive on SQLite), so of two callers recording the same
        answer only the first writes it and is told so."""
        if not answers:
            return set()
        query = select(pa.c.id).where(pa.c.id.in_(sorted(a.attempt_id for a in answers)), IN_FLIGHT)
        if self._postgres:
            query = query.with_for_update()
        open_ids = set(self._c.execute(query).scalars())
        rows = [
            {
                "id": a.attempt_id,
                "status": a.status.value,
                "gateway_ref": a.gateway_ref,
                "decline_reason": a.decline_reason,
                "settled_at": at if a.status is not AttemptStatus.UNKNOWN else None,
            }
            for a in answers
            if a.attempt_id in open_ids
        ]
        if rows:
            _SETTLE.execute(self._c, rows)
        return open_ids

    def in_flight(self, subscription_id: int) -> PaymentAttempt | None:
        row = self._c.execute(_IN_FLIGHT, {"b_subscription": subscription_id}).first()
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

    # -- reading ----------------------------------------------------------------------

    def statement(self, account_id: int) -> list[tuple[Invoice, list[PaymentAttempt]]]:
        # Through the account's subscriptions, by indexes renewals write anyway.
        theirs = select(s.c.id).where(s.c.account_id == account_id).scalar_subquery()
        invoice_rows = self._c.execute(
            select(inv)
            .where(inv.c.subscription_id.in_(theirs))
            .order_by(inv.c.created_at.desc(), inv.c.number.desc())
        ).all()
        attempts: dict[int, list[PaymentAttempt]] = {}
        for row in self._c.execute(
            select(pa)
            .join(inv, inv.c.id == pa.c.invoice_id)
            .where(inv.c.subscription_id.in_(theirs))
            .order_by(pa.c.id)
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
