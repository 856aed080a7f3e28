"""Finding the subscriptions that may owe a reminder today, without reading them all.

Annual renewals and trial ends are plain range conditions. A monthly plan's reminder is
due before a half-anniversary of its start date, which SQL cannot compute portably; but
that date has the start's day of month (or the month's last day, when the start's day is
later) in a month congruent to the start's modulo six, so those two parts of started_at
narrow the scan to a few days' worth of starts. The domain then decides exactly.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, extract, func, or_

from fairsub.adapters.db.subscriptions import SUBSCRIPTION_VIEW, subscription_from
from fairsub.adapters.db.tables import plans, subscriptions
from fairsub.domain.subscriptions import Subscription

s, p = subscriptions, plans


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


class SqlReminders:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._postgres = connection.dialect.name == "postgresql"

    def _utc_part(self, part: str, column: Any) -> ColumnElement[Any]:
        # PostgreSQL would extract in the session's time zone; started_at is UTC.
        return extract(part, func.timezone("UTC", column) if self._postgres else column)

    def _half_anniversary_in(self, low: datetime, high: datetime) -> ColumnElement[bool]:
        month, day = self._utc_part("month", s.c.started_at), self._utc_part("day", s.c.started_at)
        matches = []
        for d in _days(low.date(), high.date()):
            months = (d.month, (d.month + 5) % 12 + 1)
            last = calendar.monthrange(d.year, d.month)[1]
            same_day = day >= d.day if d.day == last else day == d.day
            matches.append(and_(month.in_(months), same_day))
        return and_(s.c.started_at <= low, or_(*matches))

    def candidates(
        self,
        *,
        renewals: tuple[datetime, datetime],
        trial_ends: tuple[datetime, datetime],
        half_anniversaries: tuple[datetime, datetime],
        after_id: int,
        limit: int,
    ) -> list[Subscription]:
        annual = and_(p.c.term == "year", s.c.status == "active", s.c.period_end.between(*renewals))
        trial = and_(s.c.status == "trialing", s.c.trial_ends_at.between(*trial_ends))
        monthly = and_(
            p.c.term == "month",
            s.c.status == "active",
            self._half_anniversary_in(*half_anniversaries),
        )
        query = (
            SUBSCRIPTION_VIEW.where(
                s.c.auto_renew.is_(True),
                s.c.reseller_name.is_(None),
                s.c.id > after_id,
                or_(annual, trial, monthly),
            )
            .order_by(s.c.id)
            .limit(limit)
        )
        return [subscription_from(row) for row in self._c.execute(query)]
