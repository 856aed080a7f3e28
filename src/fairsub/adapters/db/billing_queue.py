"""The renewal queue: claiming due subscriptions, leases, dunning state and expiry.

Claiming is the one place where several workers meet. On PostgreSQL the due rows are
locked with FOR UPDATE SKIP LOCKED, so workers take disjoint batches; on SQLite the
write transaction itself is exclusive (BEGIN IMMEDIATE). Either way a claimed row gets
a lease (claimed_until), so a crashed worker's rows come back after the lease runs out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, bindparam, func, or_, select, update

from fairsub.adapters.db.bulk import updating
from fairsub.adapters.db.subscriptions import (
    SAVED,
    SUBSCRIPTION_VIEW,
    saved,
    subscription_from,
)
from fairsub.adapters.db.tables import (
    IN_FLIGHT,
    accounts,
    payment_attempts,
    payment_methods,
    subscriptions,
)
from fairsub.domain.accounts import Account
from fairsub.domain.subscriptions import Subscription
from fairsub.services.ports import DueRenewal, Dunning

s, pa, pm, a = subscriptions, payment_attempts, payment_methods, accounts

# A subscription with its dunning state, and the worker's lease ended: one statement.
_SAVE_WITH_DUNNING = updating(
    s,
    "id",
    (*SAVED, "failed_attempts", "next_retry_at"),
    also={"version": s.c.version + 1, "claimed_until": None},
)

# A claimed subscription with everything charging it and recording the answer need: the
# subscription as the domain sees it, its version, its customer and its card's token.
_CLAIMABLE = SUBSCRIPTION_VIEW.add_columns(
    pm.c.token,
    a.c.email.label("account_email"),
    a.c.name.label("account_name"),
    a.c.region.label("account_region"),
    a.c.locale.label("account_locale"),
    a.c.timezone.label("account_timezone"),
).join(a, a.c.id == s.c.account_id)


def _no_charge_in_flight() -> ColumnElement[bool]:
    """The subscription has no charge in flight (an attempt sending, or with its answer
    unknown): checked per candidate row through the partial index, after the cheap
    filters. OFFSET 0 keeps PostgreSQL from turning NOT EXISTS into an anti-join: its
    statistics see almost no attempt in flight (there are none between runs), so it
    plans to scan all of them once and compare each candidate with each, which costs
    (candidates x charges in flight) and grew a 200-row claim to 15-60 ms mid-run; each
    probe of the index is a few microseconds."""
    in_flight = select(pa.c.id).where(pa.c.subscription_id == s.c.id, IN_FLIGHT).offset(0)
    return ~in_flight.exists()


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
        renewal = and_(s.c.status.in_(("active", "trialing")), s.c.period_end <= now)
        retry = and_(s.c.status == "past_due", s.c.next_retry_at <= now)
        query = (
            _CLAIMABLE.where(
                s.c.auto_renew.is_(True),
                s.c.reseller_name.is_(None),
                or_(renewal, retry),
                or_(s.c.claimed_until.is_(None), s.c.claimed_until <= now),
                _no_charge_in_flight(),
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
                subscription=subscription_from(r),
                version=r.version,
                account=Account(
                    r.account_id,
                    r.account_email,
                    r.account_name,
                    r.account_region,
                    r.account_locale,
                    r.account_timezone,
                ),
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
        self._c.execute(
            _SET_DUNNING,
            {"b_id": subscription_id, "b_failed": failed_attempts, "b_retry_at": next_retry_at},
        )

    def save_with_dunning(self, changes: Sequence[tuple[Subscription, Dunning]]) -> None:
        if changes:
            rows = [
                {
                    **saved(sub),
                    "failed_attempts": dunning.failed_attempts,
                    "next_retry_at": dunning.next_retry_at,
                }
                for sub, dunning in changes
            ]
            _SAVE_WITH_DUNNING.execute(self._c, rows)

    def ending(self, now: datetime, grace_cutoff: datetime, limit: int) -> list[tuple[int, int]]:
        """Subscriptions to expire: turned off and past their period, or past due with no
        retry left and out of grace. None with a charge still in flight."""
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
                _no_charge_in_flight(),
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
