"""`fairsub cases …` as real processes: the support queue, alerts, and decisions.

Customers open cases in the portal; here the test sets up the data and opens the cases
in-process, wired from the same data directory (database, sandbox gateway, test clock) as
the commands it then runs. Few processes: each one starts the whole CLI."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from fairsub.adapters.db import migrate
from fairsub.bootstrap import Container, bootstrap
from fairsub.config import Settings
from fairsub.domain.charge_cases import CaseStatus, ChargeCase
from fairsub.services import billing, cases, refunds
from tests.builders import Demo, seeded, turn_off
from tests.e2e.test_cli_billing import ok, run
from tests.integration.test_charge_cases import only, rogue_charge

WIDE = {"COLUMNS": "220"}  # so rich draws each row of the table on one line


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    """The demo data in tmp_path/var, wired in-process exactly as the CLI wires it."""
    for name in [n for n in os.environ if n.startswith("FAIRSUB_")]:
        monkeypatch.delenv(name)
    container = bootstrap(Settings(data_dir=tmp_path / "var", clock="test"))  # type: ignore[arg-type]
    migrate.upgrade(container.engine)
    yield container
    container.close()


def queued_case(container: Container, data: Demo) -> ChargeCase:
    """Alex's monthly plan renewed by the billing run, then questioned."""
    only(container, data.monthly)
    container.clock.set(data.monthly.period.end + timedelta(minutes=1))  # type: ignore[attr-defined]
    assert billing.run(container.uows, container.gateway, container.clock).charged == 1
    with container.uows().read() as uow:
        (charge, *_) = refunds.paid_charges(uow, data.alex.id, data.monthly.id)
    return cases.open_case(
        container.uows,
        container.gateway,
        container.clock,
        account_id=data.alex.id,
        charge_attempt_id=charge.attempt.id,
        reason="unknown_charge",
        note="Not mine [bold]at all[/bold]",  # shown as typed, never read as markup
        arrival=container.refund_policy().arrival,
    )


def alert_case(container: Container, data: Demo) -> ChargeCase:
    """A charge made after Alex turned the monthly plan off, bypassing the billing run."""
    turn_off(container, data.alex, data.monthly)
    charge = rogue_charge(container, container.clock, data)  # type: ignore[arg-type]
    return cases.open_case(
        container.uows,
        container.gateway,
        container.clock,
        account_id=data.alex.id,
        charge_attempt_id=charge.id,
        reason="other",
        arrival=container.refund_policy().arrival,
    )


def one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    return str(line)


def test_support_sees_the_queue_and_the_alerts_and_refunds_a_case_once_to_its_card(
    tmp_path: Path, world: Container
) -> None:
    data = seeded(world)
    queued = queued_case(world, data)
    alerted = alert_case(world, data)

    queue = ok(run(tmp_path, "cases", "list", **WIDE))
    assert re.search(rf"\b{queued.id}\b.*{queued.reference}.*demo@example\.com", queue)
    assert "GBP 4.49" in queue and "unknown_charge: Not mine [bold]at all[/bold]" in queue
    assert alerted.reference not in queue  # refunded already: not waiting for anyone
    alerts = ok(run(tmp_path, "cases", "list", "--alerts", **WIDE))
    assert re.search(rf"{alerted.reference}.*refunded.*ALERT", alerts)
    assert queued.reference not in alerts

    done = ok(run(tmp_path, "cases", "resolve", str(queued.id), "--refund", "--note", "Dup"))
    again = run(tmp_path, "cases", "resolve", str(queued.id), "--reject", "--note", "No")

    assert f"Case {queued.id} ({queued.reference}) refunded to the original card" in done
    assert "is already refunded" in one_line_error(again)
    assert cases.list_cases(world.uows(), status=CaseStatus.OPEN) == []
    # Both refunds reached the sandbox gateway against the charges they return.
    assert "Ledgers agree" in ok(run(tmp_path, "billing", "reconcile"))


def test_resolve_needs_exactly_one_decision_and_a_case_that_exists(
    tmp_path: Path, world: Container
) -> None:
    both = run(tmp_path, "cases", "resolve", "1", "--refund", "--reject", "--note", "x")
    neither = run(tmp_path, "cases", "resolve", "1", "--note", "x")
    missing = run(tmp_path, "cases", "resolve", "99999", "--reject", "--note", "x")

    assert one_line_error(both) == "fairsub: give exactly one of --refund or --reject"
    assert one_line_error(neither) == "fairsub: give exactly one of --refund or --reject"
    assert one_line_error(missing) == "fairsub: There is no case 99999."
