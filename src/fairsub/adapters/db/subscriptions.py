"""Repositories for subscriptions, cancellations, the catalog and payment methods."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, Insert, Row, Table, and_, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from fairsub.adapters.db.bulk import updating
from fairsub.adapters.db.tables import (
    cancellations,
    payment_methods,
    plans,
    prices,
    products,
    regions,
    subscriptions,
)
from fairsub.adapters.db.types import new_id
from fairsub.domain.cancellations import Cancellation
from fairsub.domain.catalog import Catalog
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, Term
from fairsub.domain.subscriptions import (
    PaymentMethod,
    PaymentMethodKind,
    Reseller,
    Status,
    Subscription,
)
from fairsub.services.ports import NewSubscription, StoredCard

s, p, pr, pm = subscriptions, plans, products, payment_methods

SUBSCRIPTION_VIEW = (
    select(
        s,
        p.c.name.label("plan_name"),
        p.c.term,
        pr.c.name.label("product_name"),
        pm.c.brand,
        pm.c.last4,
        pm.c.kind.label("payment_method_kind"),
    )
    .join(p, p.c.code == s.c.plan_code)
    .join(pr, pr.c.code == p.c.product_code)
    .outerjoin(pm, pm.c.id == s.c.payment_method_id)
)

# The portal's statements, built once: building and compiling a statement's cache key costs
# more CPU than SQLite takes to run it. The dashboard's one query: every subscription with
# its plan, product and card.
_FOR_ACCOUNT = SUBSCRIPTION_VIEW.where(s.c.account_id == bindparam("account_id")).order_by(
    s.c.started_at.desc(), s.c.id
)
_ONE = SUBSCRIPTION_VIEW.where(
    s.c.id == bindparam("subscription_id"), s.c.account_id == bindparam("account_id")
)
_ONE_LOCKED = _ONE.with_for_update(of=s)
# A new cancellation, unless its reference is taken: then nothing, and no row returned.
_ADD_CANCELLATION = {
    dialect: insert_(cancellations)
    .on_conflict_do_nothing(index_elements=["reference"])
    .returning(cancellations.c.reference)
    for dialect, insert_ in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def _add_unless_taken(connection: Connection) -> Insert:
    return _ADD_CANCELLATION[connection.dialect.name]


_OPEN_CANCELLATION = (
    select(cancellations)
    .where(
        cancellations.c.subscription_id == bindparam("subscription_id"),
        cancellations.c.reversed_at.is_(None),
    )
    .order_by(cancellations.c.received_at.desc())
    .limit(1)
)
_REFERENCE_TAKEN = select(cancellations.c.reference).where(
    cancellations.c.reference == bindparam("reference")
)


# What saving a subscription writes; every save moves its version on.
SAVED = ("status", "auto_renew", "period_start", "period_end", "price_minor", "currency")
_SAVE = updating(s, "id", SAVED, also={"version": s.c.version + 1})


def saved(sub: Subscription) -> dict[str, object]:
    """The row a save writes (the SAVED columns, by id)."""
    return {
        "id": sub.id,
        "status": sub.status.value,
        "auto_renew": sub.auto_renew,
        "period_start": sub.period.start,
        "period_end": sub.period.end,
        "price_minor": sub.price.amount_minor,
        "currency": sub.price.currency,
    }


def subscription_from(row: Row) -> Subscription:  # type: ignore[type-arg]
    """A row of SUBSCRIPTION_VIEW (or of a query selecting its columns) as the aggregate."""
    return Subscription(
        id=row.id,
        account_id=row.account_id,
        product_name=row.product_name,
        plan_name=row.plan_name,
        term=Term(row.term),
        region=row.region,
        price=Money(row.price_minor, row.currency),
        status=Status(row.status),
        auto_renew=row.auto_renew,
        period=Period(row.period_start, row.period_end),
        started_at=row.started_at,
        trial_ends_at=row.trial_ends_at,
        payment_method=(
            PaymentMethod(row.brand, row.last4, PaymentMethodKind(row.payment_method_kind))
            if row.brand
            else None
        ),
        reseller=(
            Reseller(row.reseller_name, row.reseller_order, row.reseller_cancel_url)
            if row.reseller_name
            else None
        ),
    )


class SqlSubscriptions:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def for_account(self, account_id: int) -> list[Subscription]:
        rows = self._c.execute(_FOR_ACCOUNT, {"account_id": account_id})
        return [subscription_from(row) for row in rows]

    def get(
        self, account_id: int, subscription_id: int, *, lock: bool = False
    ) -> Subscription | None:
        row = self._c.execute(
            _ONE_LOCKED if lock else _ONE,
            {"subscription_id": subscription_id, "account_id": account_id},
        ).first()
        return subscription_from(row) if row else None

    def by_id(self, subscription_id: int) -> Subscription | None:
        row = self._c.execute(SUBSCRIPTION_VIEW.where(s.c.id == subscription_id)).first()
        return subscription_from(row) if row else None

    def lock_many(self, subscription_ids: Iterable[int]) -> dict[int, Subscription]:
        ids = sorted(set(subscription_ids))
        if not ids:
            return {}
        query = SUBSCRIPTION_VIEW.where(s.c.id.in_(ids)).order_by(s.c.id).with_for_update(of=s)
        return {row.id: subscription_from(row) for row in self._c.execute(query)}

    def lock_versions(self, subscription_ids: Iterable[int]) -> dict[int, int]:
        ids = sorted(set(subscription_ids))
        if not ids:
            return {}
        query = select(s.c.id, s.c.version).where(s.c.id.in_(ids)).order_by(s.c.id)
        return {row.id: row.version for row in self._c.execute(query.with_for_update())}

    def save(self, subscription: Subscription) -> None:
        self.save_many([subscription])

    def save_many(self, subscriptions: Sequence[Subscription]) -> None:
        if subscriptions:
            _SAVE.execute(self._c, [saved(sub) for sub in subscriptions])

    def add(self, new: NewSubscription) -> int:
        reseller = new.reseller
        result = self._c.execute(
            insert(s).values(
                account_id=new.account_id,
                plan_code=new.plan_code,
                region=new.region,
                status=new.status,
                auto_renew=new.auto_renew,
                price_minor=new.price_minor,
                currency=new.currency,
                started_at=new.started_at,
                period_start=new.period_start,
                period_end=new.period_end,
                payment_method_id=new.payment_method_id,
                reseller_name=reseller.name if reseller else None,
                reseller_order=reseller.order_number if reseller else None,
                reseller_cancel_url=reseller.cancel_url if reseller else None,
                trial_ends_at=new.trial_ends_at,
                version=1,
            )
        )
        return new_id(result)


def _cancellation(row: Row) -> Cancellation:  # type: ignore[type-arg]
    return Cancellation(
        reference=row.reference,
        account_id=row.account_id,
        subscription_id=row.subscription_id,
        received_at=row.received_at,
        ends_at=row.ends_at,
        channel=row.channel,
        actor=row.actor,
        declaration=row.declaration,
        reversed_at=row.reversed_at,
    )


class SqlCancellations:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, cancellation: Cancellation) -> bool:
        c = cancellation
        result = self._c.execute(
            _add_unless_taken(self._c),
            {
                "reference": c.reference,
                "account_id": c.account_id,
                "subscription_id": c.subscription_id,
                "received_at": c.received_at,
                "ends_at": c.ends_at,
                "channel": c.channel,
                "actor": c.actor,
                "declaration": c.declaration,
                "reversed_at": c.reversed_at,
            },
        )
        return result.first() is not None

    def open_for(self, subscription_id: int) -> Cancellation | None:
        row = self._c.execute(_OPEN_CANCELLATION, {"subscription_id": subscription_id}).first()
        return _cancellation(row) if row else None

    def by_reference(self, account_id: int, reference: str) -> Cancellation | None:
        t = cancellations
        row = self._c.execute(
            select(t).where(t.c.reference == reference, t.c.account_id == account_id)
        ).first()
        return _cancellation(row) if row else None

    def taken(self, reference: str) -> bool:
        return self._c.execute(_REFERENCE_TAKEN, {"reference": reference}).first() is not None

    def reverse(self, reference: str, at: datetime) -> None:
        t = cancellations
        self._c.execute(update(t).where(t.c.reference == reference).values(reversed_at=at))

    def correct_end(self, reference: str, ends_at: datetime) -> None:
        t = cancellations
        self._c.execute(update(t).where(t.c.reference == reference).values(ends_at=ends_at))


class SqlCatalog:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def _upsert(self, table: Table, key: dict[str, object], values: dict[str, object]) -> None:
        where = and_(*(table.c[k] == v for k, v in key.items()))
        if self._c.execute(select(table).where(where)).first() is None:
            self._c.execute(insert(table).values(**key, **values))
        else:
            self._c.execute(update(table).where(where).values(**values))

    def store(self, catalog: Catalog) -> None:
        for region in catalog.regions.values():
            self._upsert(
                regions,
                {"code": region.code},
                {
                    "name": region.name,
                    "currency": region.currency,
                    "locale": region.locale,
                    "timezone": region.timezone,
                },
            )
        for product in catalog.products.values():
            self._upsert(
                products,
                {"code": product.code},
                {"name": product.name, "description": product.description},
            )
        for plan in catalog.plans.values():
            self._upsert(
                plans,
                {"code": plan.code},
                {
                    "product_code": plan.product_code,
                    "name": plan.name,
                    "term": plan.term.value,
                    "seats": plan.seats,
                    "trial_days": plan.trial_days,
                },
            )
            for region_code, price in plan.prices.items():
                self._upsert(
                    prices,
                    {"plan_code": plan.code, "region": region_code},
                    {"currency": price.currency, "amount_minor": price.amount_minor},
                )


class SqlPaymentMethods:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, account_id: int, card: StoredCard, gateway: str, created_at: datetime) -> int:
        result = self._c.execute(
            insert(payment_methods).values(
                account_id=account_id,
                brand=card.brand,
                last4=card.last4,
                expires=card.expires,
                token=card.token,
                gateway=gateway,
                created_at=created_at,
                kind=PaymentMethodKind.CARD.value,  # what a gateway stores is a card
            )
        )
        return new_id(result)

    def for_account(self, account_id: int) -> list[tuple[int, PaymentMethod, str]]:
        t = payment_methods
        rows = self._c.execute(
            select(t).where(t.c.account_id == account_id).order_by(t.c.id.desc())
        )
        return [
            (row.id, PaymentMethod(row.brand, row.last4, PaymentMethodKind(row.kind)), row.expires)
            for row in rows
        ]

    def paying(self, account_id: int) -> set[int]:
        query = select(s.c.payment_method_id).where(
            s.c.account_id == account_id,
            s.c.payment_method_id.is_not(None),
            s.c.status.not_in(("expired", "refunded")),
        )
        return {int(found) for found in self._c.execute(query).scalars()}

    def use_for_subscriptions(self, account_id: int, payment_method_id: int) -> list[int]:
        query = select(s.c.id).where(s.c.account_id == account_id, s.c.reseller_name.is_(None))
        ids = list(self._c.execute(query).scalars())
        if ids:
            self._c.execute(
                update(s).where(s.c.id.in_(ids)).values(payment_method_id=payment_method_id)
            )
        return ids

    def token_of(self, account_id: int, payment_method_id: int) -> str | None:
        t = payment_methods
        token: str | None = self._c.execute(
            select(t.c.token).where(t.c.id == payment_method_id, t.c.account_id == account_id)
        ).scalar_one_or_none()
        return token
