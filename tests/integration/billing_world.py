"""A world of due subscriptions for the billing proofs, built fast, and the checks they share.

Also the other processes of the concurrency proofs, wired from FAIRSUB_* settings like
any fairsub process:

    python -m tests.integration.billing_world turn-off PLAN.json
        reads [[account_id, subscription_id], ...], prints "ready", waits for a line on
        stdin, then turns auto-renew off for each in order; prints how many it turned
        off and how many had already ended: {"turned_off": n, "already_ended": m}.
    python -m tests.integration.billing_world bill BATCH IN_FLIGHT
        one billing pass (services.billing.run); prints its summary as JSON.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Select, func, insert
from sqlalchemy import select as select_sql

from fairsub.adapters.db.tables import (
    accounts,
    payment_attempts,
    payment_methods,
    plans,
    prices,
    subscriptions,
)
from fairsub.domain.billing import AttemptStatus
from fairsub.domain.periods import Term, add_months
from fairsub.services.ports import PaymentGateway

REPO = Path(__file__).resolve().parents[2]
MODULE = "tests.integration.billing_world"
OK_CARD = "4242424242424242"
DECLINE_CARD = "4000000000000002"
TIMEOUT_CARD = "4000000000000119"  # charged, then the answer is lost


@dataclass(frozen=True, slots=True)
class Due:
    account_id: int
    subscription_id: int
    period_end: datetime


def add_due_subscriptions(
    engine: Engine,
    tokens: Sequence[str],
    *,
    per_account: int,
    due_by: datetime,
    prefix: str = "bulk",
    plan_code: str = "antivirus-monthly",
    region: str = "GB",
) -> list[Due]:
    """One account per card token, each with `per_account` subscriptions whose period ends
    at or a few seconds before `due_by`. Core executemany: thousands in well under a second.
    The catalog must be stored first."""
    with engine.begin() as connection:
        term = Term(
            connection.execute(
                select_sql(plans.c.term).where(plans.c.code == plan_code)
            ).scalar_one()
        )
        price = connection.execute(
            select_sql(prices.c.amount_minor, prices.c.currency).where(
                prices.c.plan_code == plan_code, prices.c.region == region
            )
        ).one()
        joined = due_by - timedelta(days=400)
        connection.execute(
            insert(accounts),
            [
                {
                    "email": f"{prefix}-{i}@example.com",
                    "name": f"Customer {i}",
                    "password_hash": "-",
                    "region": region,
                    "locale": "en_GB",
                    "timezone": "Europe/London",
                    "created_at": joined,
                }
                for i in range(len(tokens))
            ],
        )
        by_email: dict[str, int] = dict(
            connection.execute(
                select_sql(accounts.c.email, accounts.c.id).where(
                    accounts.c.email.like(f"{prefix}-%@example.com")
                )
            ).all()
        )
        account_ids = [by_email[f"{prefix}-{i}@example.com"] for i in range(len(tokens))]
        connection.execute(
            insert(payment_methods),
            [
                {
                    "account_id": account_id,
                    "brand": "Visa",
                    "last4": "4242",
                    "expires": "12/2040",
                    "created_at": joined,
                    "gateway": "sandbox",
                    "token": token,
                }
                for account_id, token in zip(account_ids, tokens, strict=True)
            ],
        )
        card_of: dict[int, int] = dict(
            connection.execute(
                select_sql(payment_methods.c.account_id, payment_methods.c.id).where(
                    payment_methods.c.account_id.in_(account_ids)
                )
            ).all()
        )
        rows = []
        for n, account_id in enumerate(account_ids):
            for k in range(per_account):
                # Whole seconds, a little apart, so the claim order is the insert order.
                start = add_months(due_by, -term.months).replace(microsecond=0) - timedelta(
                    seconds=n * per_account + k
                )
                rows.append(
                    {
                        "account_id": account_id,
                        "plan_code": plan_code,
                        "region": region,
                        "status": "active",
                        "auto_renew": True,
                        "price_minor": price.amount_minor,
                        "currency": price.currency,
                        "started_at": start,
                        "period_start": start,
                        "period_end": add_months(start, term.months),
                        "payment_method_id": card_of[account_id],
                        "version": 1,
                    }
                )
        connection.execute(insert(subscriptions), rows)
        found = connection.execute(
            select_sql(subscriptions.c.account_id, subscriptions.c.id, subscriptions.c.period_end)
            .where(subscriptions.c.account_id.in_(account_ids))
            .order_by(subscriptions.c.id)
        ).all()
    return [Due(row.account_id, row.id, row.period_end) for row in found]


# -- the checks every proof makes -----------------------------------------------------------


def period_of(idempotency_key: str) -> str:
    """fs-<subscription>-<period start>-<attempt no> -> fs-<subscription>-<period start>."""
    return idempotency_key.rsplit("-", 1)[0]


def periods_charged_twice(engine: Engine, gateway: PaymentGateway) -> list[str]:
    """Every (subscription, period) with more than one succeeded charge, in our ledger or
    in the gateway's. Invariant 2 says: none."""
    with engine.connect() as connection:
        ours = Counter(
            period_of(key)
            for key in connection.execute(
                select_sql(payment_attempts.c.idempotency_key).where(
                    payment_attempts.c.status == AttemptStatus.SUCCEEDED.value
                )
            ).scalars()
        )
    theirs = Counter(
        period_of(entry.idempotency_key)
        for entry in gateway.ledger()
        if entry.kind == "charge" and entry.succeeded
    )
    return sorted(
        {f"ours: {p}" for p, n in ours.items() if n > 1}
        | {f"gateway: {p}" for p, n in theirs.items() if n > 1}
    )


def count(engine: Engine, query: Select[int]) -> int:
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def unsettled(engine: Engine) -> int:
    return count(
        engine,
        select_sql(func.count())
        .select_from(payment_attempts)
        .where(payment_attempts.c.status.in_(("sending", "unknown"))),
    )


# -- other processes --------------------------------------------------------------------------

_children: list[subprocess.Popen[Any]] = []


def reap_children() -> None:
    """Kill and wait for every process started here that is still running (after a test
    that failed half-way), so none outlives its test."""
    while _children:
        child = _children.pop()
        if child.poll() is None:
            child.kill()
        child.communicate()


def _started(child: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    _children.append(child)
    return child


def process_env(
    data_dir: Path, database_url: str | None = None, *, latency_ms: int = 0
) -> dict[str, str]:
    """Settings for a fairsub process working on the test's data: the test clock
    (data_dir/test-clock.json), the sandbox ledger in data_dir, the given database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSUB_")}
    env.update(
        FAIRSUB_DATA_DIR=str(data_dir),
        FAIRSUB_CLOCK="test",
        FAIRSUB_SECRET_KEY="t" * 40,
        FAIRSUB_LOG_LEVEL="warning",
        FAIRSUB_SANDBOX_LATENCY_MS=str(latency_ms),
    )
    if database_url:
        env["FAIRSUB_DATABASE_URL"] = database_url
    return env


def billing_run(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """`fairsub billing run` in its own process (stdout and stderr thrown away)."""
    return _started(
        subprocess.Popen(
            [sys.executable, "-m", "fairsub.entrypoints.cli.main", "billing", "run", *args],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    )


def start_turn_offs(
    env: dict[str, str], plan: Path, *, deadline: float = 60.0
) -> subprocess.Popen[str]:
    """Start the turn-off process and wait (up to `deadline` s) until it is ready."""
    process = _started(
        subprocess.Popen(
            [sys.executable, "-m", MODULE, "turn-off", str(plan)],
            env=env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], deadline)
    line = process.stdout.readline() if ready else ""
    if line.strip() != "ready":
        process.kill()
        _, stderr = process.communicate()
        raise AssertionError(f"turn-off process did not start: {line!r} {stderr}")
    return process


def _turn_off_all(plan: Path) -> None:
    from fairsub.bootstrap import bootstrap
    from fairsub.config import Settings
    from fairsub.domain.errors import InvalidTransition
    from fairsub.services.subscriptions import turn_off_auto_renew

    pairs: Iterable[list[int]] = json.loads(plan.read_text())
    container = bootstrap(Settings())
    print("ready", flush=True)
    sys.stdin.readline()
    done = Counter[str]()
    for account_id, subscription_id in pairs:
        with container.uows().read() as uow:
            account = uow.accounts.get(account_id)  # as a portal request's session read has it
        assert account is not None
        try:
            turn_off_auto_renew(
                container.uows(),
                container.clock,
                account=account,
                subscription_id=subscription_id,
                actor=f"customer:{account_id}",
                channel="portal",
            )
            done["turned_off"] += 1
        except InvalidTransition:
            done["already_ended"] += 1
    container.close()
    print(json.dumps(done), flush=True)


def _bill(batch: int, in_flight: int) -> None:
    from fairsub.bootstrap import bootstrap
    from fairsub.config import Settings
    from fairsub.services import billing

    container = bootstrap(Settings())
    summary = billing.run(
        container.uows, container.gateway, container.clock, batch=batch, in_flight=in_flight
    )
    container.close()
    names = ("charged", "declined", "unknown", "settled", "expired")
    print(json.dumps({name: getattr(summary, name) for name in names}), flush=True)


def bill(env: dict[str, str], batch: int, in_flight: int) -> subprocess.Popen[str]:
    """One billing pass in its own process; its stdout is the summary as JSON."""
    return _started(
        subprocess.Popen(
            [sys.executable, "-m", MODULE, "bill", str(batch), str(in_flight)],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["turn-off"]:
        _turn_off_all(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["bill"]:
        _bill(int(sys.argv[2]), int(sys.argv[3]))
    else:
        raise SystemExit(__doc__)
