"""The portal benchmark's data: customers, cards and subscriptions in bulk, each customer
signed in with a session and a CSRF seed as a browser has them.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, insert, text

from _support import (
    SECRET_KEY,
)
from fairsub.adapters.db import tables as t
from fairsub.adapters.passwords import Argon2Hasher
from fairsub.bootstrap import Container
from fairsub.domain.periods import Period
from fairsub.entrypoints.web.security import CookiePolicy, csrf_token
from fairsub.services import accounts as account_service

PASSWORD = "bench-password-1"
COOKIES = CookiePolicy(secure=False)
# Sign-in is not what is measured: cheap argon2 keeps signing in thousands of users fast.
CHEAP_HASHER = Argon2Hasher(memory_kib=64, time_cost=1, parallelism=1)


@dataclass(frozen=True, slots=True)
class User:
    account_id: int
    email: str
    cookie: str  # the Cookie header this user's browser sends: session and CSRF seed
    csrf: str  # the token every form on this user's pages carries


@dataclass
class Population:
    users: list[User]
    # (index into users, subscription id) of direct subscriptions with auto-renew still on
    turnable: list[tuple[int, int]]
    subscriptions: int
    seconds_data: float = 0.0
    seconds_sign_in: float = 0.0


def _reset_sequences(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        for table in (t.accounts, t.payment_methods, t.subscriptions):
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT max(id) FROM {table.name}))"
                )
            )


def _chunks(rows: list[dict[str, Any]], size: int = 2000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def seed(container: Container, customers: int, rng: random.Random) -> Population:
    """Catalog, customers, cards and subscriptions by bulk Core inserts; then sign-ins."""
    started = time.perf_counter()
    catalog = container.catalog()
    with container.uows().write() as uow:
        uow.catalog.store(catalog)
        uow.commit()
    now = container.clock.now()
    password_hash = CHEAP_HASHER.hash(PASSWORD)
    regions = [catalog.regions[code] for code in sorted(catalog.regions)]
    plans = list(catalog.plans.values())
    account_rows, card_rows, subscription_rows = [], [], []
    turnable_by_account: dict[int, list[int]] = {}
    subscription_id = 0
    for account_id in range(1, customers + 1):
        region = rng.choice(regions)
        account_rows.append(
            {
                "id": account_id,
                "email": f"bench{account_id:06d}@example.com",
                "name": f"Bench Customer {account_id}",
                "password_hash": password_hash,
                "region": region.code,
                "locale": region.locale,
                "timezone": region.timezone,
                "created_at": now - timedelta(days=800),
            }
        )
        card_rows.append(
            {
                "id": account_id,
                "account_id": account_id,
                "brand": "Visa",
                "last4": f"{account_id % 10000:04d}",
                "expires": "12/2031",
                "created_at": now - timedelta(days=800),
            }
        )
        sold_here = [plan for plan in plans if region.code in plan.prices]
        for plan in rng.sample(sold_here, k=min(len(sold_here), rng.choice((2, 3, 4)))):
            subscription_id += 1
            price = plan.price_in(region.code)
            begun = now - timedelta(days=rng.randint(1, 700), seconds=rng.randint(0, 86399))
            begun = begun.replace(microsecond=0)
            period = Period.containing(begun, plan.term, now)
            resold = rng.random() < 0.1
            auto_renew = resold or rng.random() >= 0.1  # about 1 in 10 already turned off
            subscription_rows.append(
                {
                    "id": subscription_id,
                    "account_id": account_id,
                    "plan_code": plan.code,
                    "region": region.code,
                    "status": "active" if auto_renew else "canceled",
                    "auto_renew": auto_renew,
                    "price_minor": price.amount_minor,
                    "currency": price.currency,
                    "started_at": begun,
                    "trial_ends_at": None,
                    "period_start": period.start,
                    "period_end": period.end,
                    "payment_method_id": None if resold else account_id,
                    "reseller_name": "Bluebird Software Store" if resold else None,
                    "reseller_order": f"BB-2026-{subscription_id:06d}" if resold else None,
                    "reseller_cancel_url": (
                        "https://store.bluebird.example/account/orders" if resold else None
                    ),
                    "version": 1,
                }
            )
            if auto_renew and not resold:
                turnable_by_account.setdefault(account_id, []).append(subscription_id)
    with container.engine.begin() as connection:
        for table, rows in (
            (t.accounts, account_rows),
            (t.payment_methods, card_rows),
            (t.subscriptions, subscription_rows),
        ):
            for chunk in _chunks(rows):
                connection.execute(insert(table), chunk)
    _reset_sequences(container.engine)
    if container.engine.dialect.name == "postgresql":
        with container.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            connection.execute(text("VACUUM ANALYZE"))  # what autovacuum would soon have done
    seconds_data = time.perf_counter() - started

    started = time.perf_counter()
    users: list[User] = []
    index_of: dict[int, int] = {}
    for row in account_rows:
        signed_in = account_service.sign_in(
            container.uows(),
            container.clock,
            CHEAP_HASHER,
            email=row["email"],
            password=PASSWORD,
            address="127.0.0.1",
            user_agent="fairsub-bench",
        )
        seed_value = secrets.token_urlsafe(32)
        index_of[row["id"]] = len(users)
        users.append(
            User(
                account_id=row["id"],
                email=row["email"],
                cookie=(
                    f"{COOKIES.session_name}={signed_in.session_token}; "
                    f"{COOKIES.seed_name}={seed_value}"
                ),
                csrf=csrf_token(SECRET_KEY.encode(), seed_value),
            )
        )
    turnable = [
        (index_of[account_id], sub_id)
        for account_id, sub_ids in turnable_by_account.items()
        for sub_id in sub_ids
    ]
    rng.shuffle(turnable)
    return Population(
        users=users,
        turnable=turnable,
        subscriptions=len(subscription_rows),
        seconds_data=seconds_data,
        seconds_sign_in=time.perf_counter() - started,
    )
