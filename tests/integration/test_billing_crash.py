"""Invariant 2 under kill -9: `fairsub billing run` processes are killed at random moments
and restarted until a run finishes with nothing left due.

Each kill leaves whatever it was doing half done: a claim committed and its charges not
sent, charges sent and their answers never recorded, a janitor pass cut short. A killed
worker's claims come back only when their lease runs out, so the test clock
(data_dir/test-clock.json, shared with the workers) is moved past the lease after a kill.
Then: every subscription was renewed exactly once, no period was charged twice, and our
ledger and the sandbox gateway's agree.
"""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from fairsub.adapters.clock import OffsetFileClock
from fairsub.adapters.db.tables import invoices, outbox, payment_attempts, subscriptions
from fairsub.adapters.payments.sandbox import SandboxGateway
from fairsub.bootstrap import Container
from fairsub.domain.periods import Period, Term, following
from fairsub.services import audit, billing, reconcile
from fairsub.services import catalog as catalog_service
from fairsub.services.notifications import RENEWAL_CHARGED
from fairsub.services.ports import CardDetails
from tests.conftest import make_container
from tests.integration.billing_world import (
    OK_CARD,
    TIMEOUT_CARD,
    Due,
    add_due_subscriptions,
    billing_run,
    count,
    periods_charged_twice,
    process_env,
    reap_children,
    unsettled,
)

PATIENCE = 120.0  # seconds one worker run may take before the test gives up on it
KILLS_WANTED = 3  # kills that must land mid-run for the test to have tested anything


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test() -> Iterator[None]:
    yield
    reap_children()


@dataclass
class Crashes:
    rounds: int = 0
    killed: int = 0
    left_in_flight: int = 0  # kills that left charges sent (or about to be) and unrecorded
    log: list[str] = field(default_factory=list)


@dataclass
class World:
    container: Container
    gateway: SandboxGateway
    clock: OffsetFileClock
    due: list[Due]


@contextmanager
def built_world(url: str, data_dir: Path, accounts: int, per_account: int) -> Iterator[World]:
    clock = OffsetFileClock(data_dir / "test-clock.json")
    gateway = SandboxGateway(data_dir / "sandbox-gateway.db", clock)
    container = make_container(url, data_dir, clock, gateway=gateway)
    catalog_service.store(container.uows(), clock, container.catalog())
    # One account in 25 pays with the card whose answers get lost after charging.
    tokens = [
        gateway.store_card(
            CardDetails(TIMEOUT_CARD if n % 25 == 7 else OK_CARD, 12, 2040, "123")
        ).token
        for n in range(accounts)
    ]
    due = add_due_subscriptions(
        container.engine,
        tokens,
        per_account=per_account,
        due_by=clock.now() - timedelta(hours=1),
    )
    try:
        yield World(container, gateway, clock, due)
    finally:
        gateway.close()
        container.close()


def progress_mark(world: World) -> tuple[int, int]:
    """Changes whenever a worker commits anything to the ledger."""
    return (
        count(world.container.engine, select(func.count()).select_from(payment_attempts)),
        unsettled(world.container.engine),
    )


def sending(engine: Engine) -> int:
    query = select(func.count()).select_from(payment_attempts)
    return count(engine, query.where(payment_attempts.c.status == "sending"))


def run_until_done(
    world: World, env: dict[str, str], *, workers: int, kill_rounds: int, seed: int
) -> Crashes:
    """Start `workers` billing runs at once. In the first rounds, once they have begun to
    change the ledger, kill each at its own random moment; then restart them, until a
    round in which nothing was killed leaves nothing due and nothing unsettled."""
    rng = random.Random(seed)
    crashes = Crashes(log=[f"seed {seed}"])
    engine = world.container.engine
    while True:
        crashes.rounds += 1
        assert crashes.rounds <= kill_rounds + 5, crashes.log
        began, before = time.monotonic(), progress_mark(world)
        running = [billing_run(env, "--batch", "100", "--in-flight", "2") for _ in range(workers)]
        # The first rounds kill, and so do later ones until enough kills have landed: a run
        # that got faster finished its last rounds' few renewals before their kill times.
        if crashes.rounds <= kill_rounds or crashes.killed < KILLS_WANTED:
            wait_for_progress(world, before, running)
            # Early enough to land mid-run: a batch of 100 takes a few tens of milliseconds,
            # and a whole run of the world about a second.
            kill_at = {p.pid: time.monotonic() + rng.uniform(0.0, 0.3) for p in running}
            for process in sorted(running, key=lambda p: kill_at[p.pid]):
                try:
                    process.wait(timeout=max(0.0, kill_at[process.pid] - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.send_signal(signal.SIGKILL)
        for process in running:
            _, stderr = process.communicate(timeout=PATIENCE)
            if process.returncode != -signal.SIGKILL:
                assert process.returncode == 0, stderr.decode()
        killed = sum(p.returncode == -signal.SIGKILL for p in running)
        left = unsettled(engine)
        crashes.killed += killed
        crashes.log.append(
            f"round {crashes.rounds}: {time.monotonic() - began:.1f} s, killed {killed}, "
            f"left unsettled {left}"
        )
        if killed:
            crashes.left_in_flight += sending(engine) > 0
            # The killed claims come back when their lease runs out.
            world.clock.advance(billing.LEASE + timedelta(minutes=1))
            continue
        with world.container.uows().read() as uow:
            due_now = uow.billing.due_count(world.clock.now())
        if left == 0 and due_now == 0:
            return crashes


def wait_for_progress(
    world: World, before: tuple[int, int], running: list[subprocess.Popen[bytes]]
) -> None:
    """Until a worker has committed something, or all have exited."""
    deadline = time.monotonic() + PATIENCE
    while progress_mark(world) == before and time.monotonic() < deadline:
        if all(p.poll() is not None for p in running):
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            running[0].wait(timeout=0.05)


def assert_renewed_exactly_once(world: World) -> None:
    engine, n = world.container.engine, len(world.due)
    compared, differences = reconcile.reconcile(world.container.uows, world.gateway)
    assert differences == []
    assert compared == n  # the gateway's ledger holds one charge per subscription
    assert all(entry.succeeded for entry in world.gateway.ledger())
    assert periods_charged_twice(engine, world.gateway) == []
    with engine.connect() as connection:
        periods = {
            row.id: row
            for row in connection.execute(
                select(
                    subscriptions.c.id,
                    subscriptions.c.status,
                    subscriptions.c.started_at,
                    subscriptions.c.period_start,
                    subscriptions.c.period_end,
                )
            )
        }
        paid = dict(
            connection.execute(
                select(invoices.c.subscription_id, func.count())
                .where(invoices.c.status == "paid")
                .group_by(invoices.c.subscription_id)
            ).all()
        )
        numbers = sorted(connection.execute(select(invoices.c.number)).scalars())
        attempts = int(
            connection.execute(select(func.count()).select_from(payment_attempts)).scalar_one()
        )
        emails = int(
            connection.execute(
                select(func.count()).select_from(outbox).where(outbox.c.kind == RENEWAL_CHARGED)
            ).scalar_one()
        )
    moved_on = 0
    for due in world.due:
        row = periods[due.subscription_id]
        old = Period(row.started_at, due.period_end)
        expected = following(row.started_at, Term.MONTH, old)
        moved_on += (row.status, row.period_start, row.period_end) == (
            "active",
            expected.start,
            expected.end,
        )
    assert moved_on == n  # each period moved on by exactly one term
    assert paid == {due.subscription_id: 1 for due in world.due}
    assert attempts == n  # a crash is settled under the same key, never a new attempt
    assert numbers == list(range(1, n + 1))  # invoice numbers without gaps or repeats
    assert emails == n  # each customer told once
    assert audit.verify(world.container.uows())[1] is None  # the hash chain survived


def test_invariant_2_billing_runs_killed_at_random_moments_renew_each_subscription_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    with built_world(sqlite_url, tmp_path, accounts=200, per_account=10) as world:
        started = time.monotonic()

        crashes = run_until_done(world, process_env(tmp_path), workers=1, kill_rounds=4, seed=seed)

        print(f"seed {seed}: {len(world.due)} renewals in {time.monotonic() - started:.1f} s")
        print("\n".join(crashes.log))
        assert crashes.killed >= KILLS_WANTED, crashes.log  # the kills landed mid-run...
        assert crashes.left_in_flight >= 1, crashes.log  # ...some with charges half done
        assert_renewed_exactly_once(world)


@pytest.mark.postgres
def test_invariant_2_two_workers_on_postgresql_killed_at_random_stay_disjoint(
    pg_url: str, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    with built_world(pg_url, tmp_path, accounts=100, per_account=10) as world:
        started = time.monotonic()

        crashes = run_until_done(
            world, process_env(tmp_path, pg_url), workers=2, kill_rounds=3, seed=seed
        )

        print(f"seed {seed}: {len(world.due)} renewals in {time.monotonic() - started:.1f} s")
        print("\n".join(crashes.log))
        assert crashes.killed >= KILLS_WANTED, crashes.log
        assert crashes.left_in_flight >= 1, crashes.log
        assert_renewed_exactly_once(world)
