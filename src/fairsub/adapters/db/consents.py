"""Consent records from checkout (C17): append-only, never updated or deleted here."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from fairsub.adapters.db.tables import consents
from fairsub.adapters.db.types import new_id
from fairsub.domain.money import Money
from fairsub.services.ports import ConsentRecord

c = consents


class SqlConsents:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, consent: ConsentRecord) -> int:
        result = self._c.execute(
            insert(c).values(
                account_id=consent.account_id,
                subscription_id=consent.subscription_id,
                at=consent.at,
                address=consent.address[:64],
                user_agent=consent.user_agent[:300],
                terms_version=consent.terms_version,
                price_minor=consent.price.amount_minor,
                currency=consent.price.currency,
                auto_renew=consent.auto_renew,
                disclosure=consent.disclosure,
                immediate_start=consent.immediate_start,
                withdrawal_right_waived=consent.withdrawal_right_waived,
            )
        )
        return new_id(result)

    def for_subscription(self, account_id: int, subscription_id: int) -> ConsentRecord | None:
        row = self._c.execute(
            select(c)
            .where(c.c.account_id == account_id, c.c.subscription_id == subscription_id)
            .order_by(c.c.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return ConsentRecord(
            account_id=row.account_id,
            subscription_id=row.subscription_id,
            at=row.at,
            address=row.address,
            user_agent=row.user_agent,
            terms_version=row.terms_version,
            price=Money(row.price_minor, row.currency),
            auto_renew=row.auto_renew,
            disclosure=row.disclosure,
            immediate_start=row.immediate_start,
            withdrawal_right_waived=row.withdrawal_right_waived,
        )
