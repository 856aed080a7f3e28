"""Real concurrency: turn-offs from another process while a billing run charges
(invariant 1), and two worker processes over one due set on PostgreSQL (invariant 2).

The race is decided by the subscription's row lock (PostgreSQL) or the write lock
(SQLite): a turn-off that commits before the claim wins and nothing is charged; one that
commits after it loses cleanly, says the charge had already started, and the customer
keeps exactly the period charged. A charge created after the turn-off committed is the
one outcome that must never happen.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, update

from fairsub.adapters.clock import OffsetFileClock
from fairsub.adapters.db.engine import make_engine
from fairsub.adapters.db.tables import (
    audit_events,
    audit_head,
    cancellations,
    invoice_counter,
    invoices,
    outbox,
    payment_attempts,
    subscriptions,
)
from fairsub.adapters.payments.sandbox import SandboxGateway
from fairsub.adapters.payments.sandbox_ledger import charges as sandbox_charges
from fairsub.bootstrap import Container
from fairsub.domain.periods import Term, add_months
from fairsub.services import billing, reconcile
from fairsub.services import catalog as catalog_service
from fairsub.services.notifications import AUTO_RENEW_OFF
from fairsub.services.ports import CardDetails
from tests.conftest import make_container
from tests.integration.billing_world import (
    OK_CARD,
    Due,
    add_due_subscriptions,
    bill,
    count,
    periods_charged_twice,
    process_env,
    reap_children,
    start_turn_offs,
    unsettled,
)

PATIENCE = 120.0


@dataclass
class World:
    container: Container
    gateway: SandboxGateway
    clock: OffsetFileClock
    due: list[Due]


WorldFactory = Callable[..., World]


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test() -> Iterator[None]:
    yield
    reap_children()


@pytest.fixture
def world_factory(tmp_path: Path) -> Iterator[WorldFactory]:
    built: list[World] = []

    def build(url: str, accounts: int, per_account: int, latency: float = 0.0) -> World:
        clock = OffsetFileClock(tmp_path / "test-clock.json")
        gateway = SandboxGateway(tmp_path / "sandbox-gateway.db", clock, latency=latency)
        container = make_container(url, tmp_path, clock, gateway=gateway)
        catalog_service.store(container.uows(), clock, container.catalog())
        tokens = [
            gateway.store_card(CardDetails(OK_CARD, 12, 2040, "123")).token for _ in range(accounts)
        ]
        due = add_due_subscriptions(
            container.engine,
            tokens,
            per_account=per_account,
            due_by=clock.now() - timedelta(hours=1),
        )
        built.append(World(container, gateway, clock, due))
        return built[-1]

    yield build
    for world in built:
        world.gateway.close()
        world.container.close()


def test_invariant_1_turn_offs_from_another_process_win_or_lose_cleanly_against_a_billing_run(
    db_url: str, tmp_path: Path, world_factory: WorldFactory
) -> None:
    world = world_factory(db_url, accounts=30, per_account=10, latency=0.003)
    engine = world.container.engine
    rng = random.Random()
    chosen = rng.sample(world.due, len(world.due) // 2)
    plan = tmp_path / "turn-offs.json"
    plan.write_text(json.dumps([[d.account_id, d.subscription_id] for d in chosen]))
    turning_off = start_turn_offs(process_env(tmp_path, db_url), plan)
    assert turning_off.stdin is not None

    turning_off.stdin.write("go\n")
    turning_off.stdin.flush()
    summary = billing.run(world.container.uows, world.gateway, world.clock, batch=20)
    out, err = turning_off.communicate(timeout=PATIENCE)

    assert turning_off.returncode == 0, err
    assert json.loads(out.splitlines()[-1]) == {"turned_off": len(chosen)}  # none had ended
    billing.run(world.container.uows, world.gateway, world.clock)  # settle and expire
    outcomes = race_outcomes(engine, world.due, {d.subscription_id for d in chosen})
    print(f"billing run: {summary.charged} charged; turn-offs: {dict(outcomes)}")
    assert sum(outcomes.values()) == len(chosen)
    assert outcomes["won"] > 0  # some turn-offs came before the run reached them
    assert reconcile.reconcile(world.container.uows, world.gateway)[1] == []
    assert periods_charged_twice(engine, world.gateway) == []
    assert unsettled(engine) == 0


def race_outcomes(engine: Engine, due: list[Due], turned_off: set[int]) -> Counter[str]:
    """Check how each turn-off came out against the renewal of the period after
    `due.period_end`, and count: won, lost (cleanly), after (the renewal was done)."""
    with engine.connect() as connection:
        subs = {r.id: r for r in connection.execute(select(subscriptions))}
        bills = {r.subscription_id: r for r in connection.execute(select(invoices))}
        tries: dict[int, list[Any]] = {}
        for row in connection.execute(select(payment_attempts)):
            tries.setdefault(row.subscription_id, []).append(row)
        offs = {
            r.subscription_id: r
            for r in connection.execute(
                select(cancellations).where(cancellations.c.reversed_at.is_(None))
            )
        }
        told = {
            r.payload["reference"]: r.payload
            for r in connection.execute(select(outbox).where(outbox.c.kind == AUTO_RENEW_OFF))
        }
    outcomes: Counter[str] = Counter()
    for item in due:
        sub, invoice, attempts = (
            subs[item.subscription_id],
            bills.get(item.subscription_id),
            tries.get(item.subscription_id, []),
        )
        next_end = add_months(item.period_end, Term.MONTH.months)
        if item.subscription_id not in turned_off:
            assert (sub.period_start, sub.period_end, sub.status) == (
                item.period_end,
                next_end,
                "active",
            )
            continue
        off = offs[item.subscription_id]
        email = told[off.reference]
        if invoice is None:
            # Won: nothing was ever charged, and it ends where it said.
            assert attempts == []
            assert "had already started" not in off.declaration
            assert off.ends_at == item.period_end == sub.period_end
            assert email["charge_in_flight"] is None
            assert sub.status == "expired"
            outcomes["won"] += 1
            continue
        (attempt,) = attempts
        # The charge was created before the turn-off was received, never after it.
        assert attempt.created_at <= off.received_at, (attempt, off)
        assert attempt.status == "succeeded"
        assert (invoice.period_start, invoice.period_end) == (item.period_end, next_end)
        assert off.ends_at == invoice.period_end == sub.period_end  # the period paid is theirs
        assert sub.status == "canceled" and not sub.auto_renew
        if "had already started" in off.declaration:
            assert email["charge_in_flight"] is not None  # and the email says so too
            outcomes["lost"] += 1
        else:
            # The renewal had been recorded, and so shown, before the turn-off came.
            assert invoice.paid_at <= off.received_at
            assert email["charge_in_flight"] is None
            outcomes["after"] += 1
    return outcomes


def test_turn_offs_from_another_process_racing_expiry_neither_fail_nor_block_it(
    db_url: str, tmp_path: Path, world_factory: WorldFactory
) -> None:
    """Past due, every retry spent, grace over: the billing run ends them in batches while
    their customers turn auto-renew off. Each turn-off either comes first (and the
    subscription still ends, as it was owed) or finds it already ended."""
    world = world_factory(db_url, accounts=30, per_account=10)
    engine = world.container.engine
    with engine.begin() as connection:
        connection.execute(
            update(subscriptions).values(
                status="past_due",
                failed_attempts=4,
                next_retry_at=None,
                period_end=world.clock.now() - timedelta(days=15),
            )
        )
    chosen = random.Random().sample(world.due, len(world.due) // 2)
    plan = tmp_path / "turn-offs.json"
    plan.write_text(json.dumps([[d.account_id, d.subscription_id] for d in chosen]))
    turning_off = start_turn_offs(process_env(tmp_path, db_url), plan)
    assert turning_off.stdin is not None

    turning_off.stdin.write("go\n")
    turning_off.stdin.flush()
    expired = billing.expire_ended(world.container.uows, world.clock, batch=100)
    out, err = turning_off.communicate(timeout=PATIENCE)

    assert turning_off.returncode == 0, err
    done = json.loads(out.splitlines()[-1])
    print(f"expired {expired}; turn-offs: {done}")
    assert sum(done.values()) == len(chosen)
    billing.expire_ended(world.container.uows, world.clock)  # those turned off first
    with engine.connect() as connection:
        statuses = Counter(connection.execute(select(subscriptions.c.status)).scalars())
        offs = int(connection.execute(select(func.count()).select_from(cancellations)).scalar_one())
    assert statuses == {"expired": len(world.due)}
    assert offs == done.get("turned_off", 0)


def reset_renewals(engine: Engine, due: list[Due]) -> None:
    """Undo a billing pass: the same subscriptions due again, the ledger empty."""
    with engine.begin() as connection:
        for table in (
            payment_attempts,
            invoices,
            invoice_counter,
            outbox,
            audit_events,
            audit_head,
        ):
            connection.execute(delete(table))
        for item in due:
            connection.execute(
                update(subscriptions)
                .where(subscriptions.c.id == item.subscription_id)
                .values(
                    status="active",
                    period_start=add_months(item.period_end, -1),
                    period_end=item.period_end,
                    claimed_until=None,
                )
            )


def timed_pass(env: dict[str, str], workers: int) -> tuple[float, list[dict[str, int]]]:
    started = time.monotonic()
    running = [bill(env, 25, 1) for _ in range(workers)]
    summaries = []
    for process in running:
        out, err = process.communicate(timeout=PATIENCE)
        assert process.returncode == 0, err
        summaries.append(json.loads(out.splitlines()[-1]))
    return time.monotonic() - started, summaries


@pytest.mark.postgres
def test_invariant_2_two_worker_processes_on_postgresql_charge_each_period_once(
    pg_url: str, tmp_path: Path, world_factory: WorldFactory
) -> None:
    world = world_factory(pg_url, accounts=20, per_account=10)
    env = process_env(tmp_path, pg_url, latency_ms=10)
    engine, n = world.container.engine, len(world.due)

    two, summaries = timed_pass(env, workers=2)

    assert [s["charged"] > 0 for s in summaries] == [True, True]  # both really worked
    assert sum(s["charged"] for s in summaries) == n
    assert periods_charged_twice(engine, world.gateway) == []
    assert count(engine, select(func.count()).select_from(payment_attempts)) == n
    assert reconcile.reconcile(world.container.uows, world.gateway)[1] == []

    reset_renewals(engine, world.due)
    with make_engine(f"sqlite:///{tmp_path / 'sandbox-gateway.db'}").begin() as ledger:
        ledger.execute(delete(sandbox_charges))
    one, _ = timed_pass(env, workers=1)
    print(
        f"{n} renewals, 10 ms gateway latency, wall time incl. process start: "
        f"1 worker {one:.1f} s, 2 workers {two:.1f} s"
    )
