"""The renewal queue: claiming due subscriptions, leases, dunning state and expiry.

Claiming is the one place where several workers meet. On PostgreSQL the due rows are
locked with FOR UPDATE SKIP LOCKED, so workers take disjoint batches; on SQLite the
write transaction itself is exclusive (BEGIN IMMEDIATE). Either way a claimed row gets
a lease (claimed_until), so a crashed worker's rows come back after the lease runs out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, exists, func, or_, select, update

from fairsub.adapters.db.tables import payment_attempts, payment_methods, plans, subscriptions
from fairsub.domain.billing import AttemptStatus
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, Term
from fairsub.services.ports import DueRenewal, Dunning

s, pa, pm, p = subscriptions, payment_attempts, payment_methods, plans

UNSETTLED = (AttemptStatus.SENDING.value, AttemptStatus.UNKNOWN.value)

_SET_DUNNING = (
    update(s)
    .where(s.c.id == bindparam("b_id"))
    .values(
        failed_attempts=bindparam("b_failed"),
        next_retry_at=bindparam("b_retry_at"),
        claimed_until=None,
    )
)


class RenewalQueue:
    """The subscriptions side of the billing repository (SqlBilling)."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._postgres = connection.dialect.name == "postgresql"

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
        self.release_many([subscription_id])

    def release_many(self, subscription_ids: Iterable[int]) -> None:
        ids = sorted(set(subscription_ids))
        if ids:
            self._c.execute(update(s).where(s.c.id.in_(ids)).values(claimed_until=None))

    def set_dunning(
        self, subscription_id: int, failed_attempts: int, next_retry_at: datetime | None
    ) -> None:
        self.set_dunning_many([Dunning(subscription_id, failed_attempts, next_retry_at)])

    def set_dunning_many(self, states: Sequence[Dunning]) -> None:
        if states:
            self._c.execute(
                _SET_DUNNING,
                [
                    {
                        "b_id": d.subscription_id,
                        "b_failed": d.failed_attempts,
                        "b_retry_at": d.next_retry_at,
                    }
                    for d in states
                ],
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
