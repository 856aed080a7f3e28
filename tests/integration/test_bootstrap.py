"""Settings pick the adapters: the gateway and the clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fairsub.adapters.clock import OffsetFileClock, SystemClock
from fairsub.adapters.payments.sandbox import SandboxGateway
from fairsub.adapters.payments.stripe import StripeGateway
from fairsub.bootstrap import make_clock, make_gateway
from fairsub.config import Settings


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_the_sandbox_is_the_default_gateway_with_its_own_ledger_file(tmp_path: Path) -> None:
    gateway = make_gateway(settings(tmp_path), SystemClock())
    assert isinstance(gateway, SandboxGateway)
    assert list(gateway.ledger()) == []
    gateway.close()
    assert (tmp_path / "sandbox-gateway.db").exists()


def test_stripe_is_chosen_by_settings_and_needs_a_key(tmp_path: Path) -> None:
    gateway = make_gateway(
        settings(tmp_path, payment_gateway="stripe", stripe_api_key="sk_test_x"), SystemClock()
    )
    assert isinstance(gateway, StripeGateway)
    with pytest.raises(ValidationError, match="FAIRSUB_STRIPE_API_KEY"):
        settings(tmp_path, payment_gateway="stripe")


def test_the_test_clock_is_shared_through_a_file(tmp_path: Path) -> None:
    from datetime import timedelta

    clock = make_clock(settings(tmp_path, clock="test"))
    assert isinstance(clock, OffsetFileClock)
    before = clock.now()
    clock.advance(timedelta(days=30))
    other_process_view = OffsetFileClock(tmp_path / "test-clock.json")
    assert other_process_view.now() - before >= timedelta(days=30)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.set(before)
    assert isinstance(make_clock(settings(tmp_path)), SystemClock)


def test_production_refuses_the_test_clock(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="FAIRSUB_CLOCK=test"):
        settings(tmp_path, env="production", secret_key="s" * 40, mail_backend="smtp", clock="test")
