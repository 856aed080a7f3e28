"""How PostgreSQL runs the renewal queue's queries: each candidate subscription is checked
for a charge in flight through the partial index, never by comparing every candidate
with every charge in flight.

Between billing runs no charge is in flight, so that is what the statistics say; left
to itself the planner turns NOT EXISTS into an anti-join that scans all charges in
flight once and compares each candidate with each of them. Mid-run, with hundreds out
at the gateway, that made a 200-row claim take 15-60 ms instead of 1-2 ms (see
bench/billing_run.py). The plan's shape is asserted here, not its speed: over this
small table the probe may be a sequential scan; over a real one it is the partial index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update

from fairsub.adapters.db.tables import subscriptions
from fairsub.bootstrap import Container
from fairsub.services.ports import UnitOfWork
from tests.builders import seeded
from tests.conftest import make_container
from tests.fakes import FakeClock

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_container(pg_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[Container]:
    built = make_container(pg_url, tmp_path, clock)
    seeded(built)
    with built.engine.begin() as connection:
        connection.execute(update(subscriptions).values(period_end=clock.now() - timedelta(days=1)))
        connection.exec_driver_sql("ANALYZE")  # statistics that see no charge in flight
    yield built
    built.close()


def explained(container: Container, use: Callable[[UnitOfWork], object]) -> list[dict[str, Any]]:
    """The plans of the statements `use` runs that read payment_attempts."""
    seen: list[tuple[str, Any]] = []

    def capture(_c: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        if "payment_attempts" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(container.engine, "before_cursor_execute", capture)
    try:
        with container.uows().write() as uow:
            use(uow)  # rolled back: never committed
    finally:
        event.remove(container.engine, "before_cursor_execute", capture)
    assert seen, "the query under test did not run"
    plans = []
    with container.engine.connect() as connection:
        for statement, parameters in seen:
            result = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
            plans.append(result.scalar_one()[0]["Plan"])
    return plans


def nodes(plan: dict[str, Any], in_subplan: bool = False) -> Iterator[tuple[dict[str, Any], bool]]:
    """Every node of a plan, and whether it runs inside a subplan."""
    inside = in_subplan or plan.get("Parent Relationship") == "SubPlan"
    yield plan, inside
    for child in plan.get("Plans", []):
        yield from nodes(child, inside)


def assert_probed_per_candidate(plan: dict[str, Any]) -> None:
    every = list(nodes(plan))
    assert not [n for n, _ in every if n.get("Join Type") in ("Anti", "Right Anti")], (
        "the check for a charge in flight became an anti-join"
    )
    scans = [(n, inside) for n, inside in every if n.get("Relation Name") == "payment_attempts"]
    assert scans, "payment_attempts is not read"
    for scan, inside in scans:
        assert inside, f"payment_attempts is scanned outside a per-row subplan: {scan['Node Type']}"


def test_claiming_checks_each_due_subscription_for_a_charge_in_flight(
    pg_container: Container, clock: FakeClock
) -> None:
    now = clock.now()
    (plan,) = explained(pg_container, lambda uow: uow.billing.claim_due(now, 200, now))
    assert_probed_per_candidate(plan)


def test_finding_subscriptions_to_end_checks_each_for_a_charge_in_flight(
    pg_container: Container, clock: FakeClock
) -> None:
    now = clock.now()
    with pg_container.engine.begin() as connection:
        connection.execute(update(subscriptions).values(status="canceled", auto_renew=False))
    (plan,) = explained(pg_container, lambda uow: uow.billing.ending(now, now, 200))
    assert_probed_per_candidate(plan)
