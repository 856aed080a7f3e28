"""Repository for refunds: money going back to the card it came from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, or_, select, update

from fairsub.adapters.db.tables import refunds
from fairsub.adapters.db.types import new_id
from fairsub.domain.money import Money
from fairsub.domain.refunding import COUNTS, Refund, RefundKind, RefundStatus

r = refunds


def _refund(row: Row[Any]) -> Refund:
    return Refund(
        id=row.id,
        account_id=row.account_id,
        subscription_id=row.subscription_id,
        invoice_id=row.invoice_id,
        charge_attempt_id=row.charge_attempt_id,
        idempotency_key=row.idempotency_key,
        amount=Money(row.amount_minor, row.currency),
        kind=RefundKind(row.kind),
        reason=row.reason,
        status=RefundStatus(row.status),
        requested_at=row.requested_at,
        reference=row.reference,
        sent_at=row.sent_at,
        settled_at=row.settled_at,
        arrives_from=row.arrives_from,
        arrives_by=row.arrives_by,
        gateway_ref=row.gateway_ref,
        failure_reason=row.failure_reason,
    )


class SqlRefunds:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(
        self,
        *,
        account_id: int,
        subscription_id: int,
        invoice_id: int,
        charge_attempt_id: int,
        key: str,
        amount: Money,
        kind: RefundKind,
        reason: str,
        reference: str | None,
        at: datetime,
    ) -> Refund:
        result = self._c.execute(
            insert(r).values(
                account_id=account_id,
                subscription_id=subscription_id,
                invoice_id=invoice_id,
                charge_attempt_id=charge_attempt_id,
                idempotency_key=key,
                amount_minor=amount.amount_minor,
                currency=amount.currency,
                kind=kind.value,
                reason=reason,
                reference=reference,
                status=RefundStatus.REQUESTED.value,
                requested_at=at,
            )
        )
        return Refund(
            new_id(result),
            account_id,
            subscription_id,
            invoice_id,
            charge_attempt_id,
            key,
            amount,
            kind,
            reason,
            RefundStatus.REQUESTED,
            at,
            reference,
        )

    def get(self, refund_id: int) -> Refund | None:
        row = self._c.execute(select(r).where(r.c.id == refund_id)).first()
        return _refund(row) if row else None

    def for_charge(self, charge_attempt_id: int) -> list[Refund]:
        rows = self._c.execute(
            select(r).where(r.c.charge_attempt_id == charge_attempt_id).order_by(r.c.id)
        )
        return [_refund(row) for row in rows]

    def refunded_amount(self, charge_attempt_id: int, currency: str) -> Money:
        total = self._c.execute(
            select(func.coalesce(func.sum(r.c.amount_minor), 0)).where(
                r.c.charge_attempt_id == charge_attempt_id,
                r.c.status.in_([s.value for s in COUNTS]),
            )
        ).scalar_one()
        return Money(int(total), currency)

    def for_account(self, account_id: int) -> list[Refund]:
        rows = self._c.execute(
            select(r).where(r.c.account_id == account_id).order_by(r.c.requested_at.desc())
        )
        return [_refund(row) for row in rows]

    def record_sent(
        self,
        refund_id: int,
        at: datetime,
        gateway_ref: str | None,
        arrives_from: datetime,
        arrives_by: datetime,
    ) -> bool:
        result = self._c.execute(
            update(r)
            .where(r.c.id == refund_id, r.c.status.in_(("requested", "unknown")))
            .values(
                status=RefundStatus.SENT.value,
                sent_at=at,
                gateway_ref=gateway_ref,
                arrives_from=arrives_from,
                arrives_by=arrives_by,
            )
        )
        return result.rowcount == 1

    def record_failed(self, refund_id: int, reason: str) -> bool:
        result = self._c.execute(
            update(r)
            .where(r.c.id == refund_id, r.c.status.in_(("requested", "unknown")))
            .values(status=RefundStatus.FAILED.value, failure_reason=reason[:200])
        )
        return result.rowcount == 1

    def record_unknown(self, refund_id: int) -> None:
        self._c.execute(
            update(r)
            .where(r.c.id == refund_id, r.c.status == "requested")
            .values(status=RefundStatus.UNKNOWN.value)
        )

    def unsettled(self, older_than: datetime, limit: int) -> list[Refund]:
        """Refunds with no answer: lost answers, and requests left by a crash."""
        rows = self._c.execute(
            select(r)
            .where(
                or_(
                    r.c.status == "unknown",
                    (r.c.status == "requested") & (r.c.requested_at <= older_than),
                )
            )
            .order_by(r.c.id)
            .limit(limit)
        )
        return [_refund(row) for row in rows]

    def mark_arrived(self, now: datetime) -> int:
        result = self._c.execute(
            update(r)
            .where(r.c.status == "sent", r.c.arrives_by <= now)
            .values(status=RefundStatus.SETTLED.value, settled_at=now)
        )
        return result.rowcount
