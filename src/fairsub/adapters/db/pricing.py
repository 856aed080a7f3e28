"""Price changes, and who has been told of them (the outbox rows of their notices)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, String, and_, cast, exists, insert, literal, select

from fairsub.adapters.db.subscriptions import SUBSCRIPTION_VIEW, subscription_from
from fairsub.adapters.db.tables import outbox, price_changes, prices, subscriptions
from fairsub.adapters.db.types import new_id
from fairsub.domain.money import Money
from fairsub.domain.pricing import NoticedChange, PriceChange, notice_key, notice_key_prefix
from fairsub.domain.subscriptions import Subscription

s, pc = subscriptions, price_changes

RENEWING = ("active", "trialing")


def _change(row: Row[Any]) -> PriceChange:
    return PriceChange(
        id=row.id,
        plan_code=row.plan_code,
        region=row.region,
        new_price=Money(row.new_amount_minor, row.currency),
        effective_from=row.effective_from,
        announced_at=row.announced_at,
    )


class SqlPricing:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def list_price(self, plan_code: str, region: str) -> Money | None:
        row = self._c.execute(
            select(prices.c.amount_minor, prices.c.currency).where(
                prices.c.plan_code == plan_code, prices.c.region == region
            )
        ).first()
        return Money(row.amount_minor, row.currency) if row else None

    def change_at(
        self, plan_code: str, region: str, effective_from: datetime
    ) -> PriceChange | None:
        row = self._c.execute(
            select(pc).where(
                pc.c.plan_code == plan_code,
                pc.c.region == region,
                pc.c.effective_from == effective_from,
            )
        ).first()
        return _change(row) if row else None

    def add_change(
        self,
        *,
        plan_code: str,
        region: str,
        new_price: Money,
        effective_from: datetime,
        announced_at: datetime,
    ) -> PriceChange:
        result = self._c.execute(
            insert(pc).values(
                plan_code=plan_code,
                region=region,
                new_amount_minor=new_price.amount_minor,
                currency=new_price.currency,
                effective_from=effective_from,
                announced_at=announced_at,
            )
        )
        return PriceChange(
            new_id(result), plan_code, region, new_price, effective_from, announced_at
        )

    def changes_effective_by(self, moment: datetime) -> list[PriceChange]:
        query = (
            select(pc).where(pc.c.effective_from <= moment).order_by(pc.c.effective_from, pc.c.id)
        )
        return [_change(row) for row in self._c.execute(query)]

    def notice_candidates(
        self, change: PriceChange, renewals: tuple[datetime, datetime], *, after_id: int, limit: int
    ) -> list[Subscription]:
        key = literal(notice_key_prefix(change.id)) + cast(s.c.id, String)
        noticed = exists().where(outbox.c.dedupe_key == key)
        query = (
            SUBSCRIPTION_VIEW.where(
                s.c.plan_code == change.plan_code,
                s.c.region == change.region,
                s.c.auto_renew.is_(True),
                s.c.reseller_name.is_(None),
                s.c.status.in_(RENEWING),
                s.c.period_end.between(*renewals),
                s.c.period_end >= change.effective_from,
                s.c.currency == change.new_price.currency,
                s.c.price_minor < change.new_price.amount_minor,
                s.c.id > after_id,
                ~noticed,
            )
            .order_by(s.c.id)
            .limit(limit)
        )
        return [subscription_from(row) for row in self._c.execute(query)]

    def changes_for(self, subscription_ids: Sequence[int]) -> dict[int, list[NoticedChange]]:
        if not subscription_ids:
            return {}
        rows = self._c.execute(
            select(s.c.id.label("subscription_id"), pc)
            .join(pc, and_(pc.c.plan_code == s.c.plan_code, pc.c.region == s.c.region))
            .where(s.c.id.in_(list(subscription_ids)))
            .order_by(pc.c.effective_from, pc.c.id)
        ).all()
        if not rows:
            return {}
        keys = {notice_key(row.id, row.subscription_id) for row in rows}
        query = select(outbox.c.dedupe_key, outbox.c.created_at).where(
            outbox.c.dedupe_key.in_(keys)
        )
        sent = {row.dedupe_key: row.created_at for row in self._c.execute(query)}
        found: dict[int, list[NoticedChange]] = {}
        for row in rows:
            at = sent.get(notice_key(row.id, row.subscription_id))
            found.setdefault(row.subscription_id, []).append(NoticedChange(_change(row), at))
        return found
