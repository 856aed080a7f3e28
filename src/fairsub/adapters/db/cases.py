"""Repository for charge cases: customers' questions about charges, and their outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from fairsub.adapters.db.subscriptions import _cancellation
from fairsub.adapters.db.tables import (
    accounts,
    cancellations,
    charge_cases,
    invoices,
    payment_attempts,
    plans,
    products,
    subscriptions,
)
from fairsub.adapters.db.types import new_id
from fairsub.domain.cancellations import Cancellation
from fairsub.domain.charge_cases import CaseReason, CaseStatus, CaseSummary, ChargeCase
from fairsub.domain.money import Money

cc, pa, inv = charge_cases, payment_attempts, invoices

_SUMMARY = (
    select(
        cc,
        accounts.c.email.label("customer_email"),
        pa.c.amount_minor.label("charge_minor"),
        pa.c.currency.label("charge_currency"),
        pa.c.created_at.label("charged_at"),
        pa.c.subscription_id,
        inv.c.number.label("invoice_number"),
        plans.c.name.label("plan_name"),
        products.c.name.label("product_name"),
    )
    .join(accounts, accounts.c.id == cc.c.account_id)
    .join(pa, pa.c.id == cc.c.charge_attempt_id)
    .join(inv, inv.c.id == pa.c.invoice_id)
    .join(subscriptions, subscriptions.c.id == pa.c.subscription_id)
    .join(plans, plans.c.code == subscriptions.c.plan_code)
    .join(products, products.c.code == plans.c.product_code)
)


def _case(row: Row[Any]) -> ChargeCase:
    return ChargeCase(
        id=row.id,
        reference=row.reference,
        account_id=row.account_id,
        charge_attempt_id=row.charge_attempt_id,
        reason=CaseReason(row.reason),
        note=row.note,
        status=CaseStatus(row.status),
        alert=bool(row.alert),
        opened_at=row.opened_at,
        refund_id=row.refund_id,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution_note=row.resolution_note,
    )


def _summary(row: Row[Any]) -> CaseSummary:
    return CaseSummary(
        case=_case(row),
        customer_email=row.customer_email,
        product=row.product_name,
        plan=row.plan_name,
        invoice_number=row.invoice_number,
        subscription_id=row.subscription_id,
        charged_at=row.charged_at,
        amount=Money(row.charge_minor, row.charge_currency),
    )


class SqlCases:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(
        self,
        *,
        reference: str,
        account_id: int,
        charge_attempt_id: int,
        reason: CaseReason,
        note: str,
        opened_at: datetime,
    ) -> ChargeCase:
        result = self._c.execute(
            insert(cc).values(
                reference=reference,
                account_id=account_id,
                charge_attempt_id=charge_attempt_id,
                reason=reason.value,
                note=note,
                status=CaseStatus.OPEN.value,
                alert=False,
                opened_at=opened_at,
            )
        )
        return ChargeCase(
            id=new_id(result),
            reference=reference,
            account_id=account_id,
            charge_attempt_id=charge_attempt_id,
            reason=reason,
            note=note,
            status=CaseStatus.OPEN,
            alert=False,
            opened_at=opened_at,
        )

    def get(self, case_id: int) -> ChargeCase | None:
        row = self._c.execute(select(cc).where(cc.c.id == case_id)).first()
        return _case(row) if row else None

    def by_reference(self, account_id: int, reference: str) -> ChargeCase | None:
        row = self._c.execute(
            select(cc).where(cc.c.reference == reference, cc.c.account_id == account_id)
        ).first()
        return _case(row) if row else None

    def for_charge(self, charge_attempt_id: int) -> list[ChargeCase]:
        rows = self._c.execute(
            select(cc).where(cc.c.charge_attempt_id == charge_attempt_id).order_by(cc.c.id)
        )
        return [_case(row) for row in rows]

    def taken(self, reference: str) -> bool:
        found = self._c.execute(select(cc.c.id).where(cc.c.reference == reference)).first()
        return found is not None

    def resolve(
        self,
        case_id: int,
        *,
        status: CaseStatus,
        at: datetime,
        by: str,
        note: str,
        refund_id: int | None = None,
        alert: bool = False,
    ) -> bool:
        # Conditional on 'open': on PostgreSQL a second resolver waits for the first's row
        # lock, then matches nothing; SQLite's single writer gives the same answer.
        result = self._c.execute(
            update(cc)
            .where(cc.c.id == case_id, cc.c.status == CaseStatus.OPEN.value)
            .values(
                status=status.value,
                resolved_at=at,
                resolved_by=by[:100],
                resolution_note=note,
                refund_id=refund_id,
                alert=alert,
            )
        )
        return result.rowcount == 1

    def summaries(
        self,
        *,
        account_id: int | None = None,
        status: CaseStatus | None = None,
        alerts_only: bool = False,
        reference: str | None = None,
    ) -> list[CaseSummary]:
        query = _SUMMARY
        if account_id is not None:
            query = query.where(cc.c.account_id == account_id)
        if status is not None:
            query = query.where(cc.c.status == status.value)
        if alerts_only:
            query = query.where(cc.c.alert.is_(True))
        if reference is not None:
            query = query.where(cc.c.reference == reference)
        rows = self._c.execute(query.order_by(cc.c.opened_at.desc(), cc.c.id.desc()))
        return [_summary(row) for row in rows]

    def turn_offs(self, subscription_id: int) -> list[Cancellation]:
        # All of them, reversed too: a charge made while a turn-off was in force breaks it
        # even if auto-renew was turned back on afterwards.
        t = cancellations
        rows = self._c.execute(
            select(t).where(t.c.subscription_id == subscription_id).order_by(t.c.received_at)
        )
        return [_cancellation(row) for row in rows]
