"""Settings pick the adapters: the gateway, the clock, the database pool."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fairsub.adapters.clock import OffsetFileClock, SystemClock
from fairsub.adapters.payments.sandbox import SandboxGateway
from fairsub.adapters.payments.stripe import StripeGateway
from fairsub.bootstrap import make_clock, make_gateway
from fairsub.config import Settings
from fairsub.domain.errors import InvalidInput
from tests.conftest import make_container
from tests.fakes import FakeClock


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


def start_up_refusal(sqlite_url: str, tmp_path: Path, **files: Path) -> str:
    """What checking the operator's files at start-up says, with these files named."""
    container = make_container(sqlite_url, tmp_path, FakeClock(), **files)
    try:
        with pytest.raises(InvalidInput) as refused:
            container.check_operator_files()
    finally:
        container.close()
    return refused.value.message


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


def test_the_refund_policy_is_read_once_and_again_when_the_operator_edits_it(
    tmp_path: Path, sqlite_url: str
) -> None:
    from fairsub.domain.refunding import ArrivalWindow
    from fairsub.domain.subscriptions import PaymentMethodKind

    demo = Path(__file__).resolve().parents[2] / "src/fairsub/data/demo-catalog.toml"
    policy = tmp_path / "policy.toml"
    policy.write_text(demo.read_text("utf-8"))
    container = make_container(sqlite_url, tmp_path, FakeClock(), refund_policy_file=policy)
    try:
        first = container.refund_policy()
        assert container.refund_policy() is first  # not parsed again per request
        card = "card = { earliest = 5, latest = 10 }"
        policy.write_text(
            policy.read_text("utf-8").replace(card, "card = { earliest = 3, latest = 4 }")
        )

        edited = container.refund_policy()

        assert edited is not first
        assert edited.arrival.for_kind(PaymentMethodKind.CARD) == ArrivalWindow(3, 4)
    finally:
        container.close()


def test_the_database_pool_is_sized_by_settings(tmp_path: Path) -> None:
    from fairsub.bootstrap import bootstrap

    container = bootstrap(settings(tmp_path, db_pool_size=3))
    try:
        assert container.engine.pool.size() == 3  # type: ignore[attr-defined]
    finally:
        container.close()
    with pytest.raises(ValidationError, match="db_pool_size"):
        settings(tmp_path, db_pool_size=0)


def demo_text() -> str:
    return (Path(__file__).resolve().parents[2] / "src/fairsub/data/demo-catalog.toml").read_text(
        "utf-8"
    )


def test_a_broken_refund_policy_is_reported_at_start_up_with_its_line(
    tmp_path: Path, sqlite_url: str
) -> None:

    catalog = tmp_path / "catalog.toml"
    catalog.write_text(demo_text().replace('outcome = "pro_rata"', 'outcome = "half"'), "utf-8")
    line = next(n for n, t in enumerate(catalog.read_text("utf-8").splitlines(), 1) if "half" in t)
    assert start_up_refusal(sqlite_url, tmp_path, catalog_file=catalog) == (
        f"{catalog}:{line}: refunds.rules[2].outcome: expected one of full, pro_rata, none"
    )


def test_a_catalog_file_without_a_refund_policy_stops_start_up_unless_one_is_named(
    tmp_path: Path, sqlite_url: str
) -> None:

    text = demo_text()
    catalog, policy = tmp_path / "catalog.toml", tmp_path / "policy.toml"
    catalog.write_text(text[: text.index("[refunds.statutory]")], "utf-8")
    policy.write_text(text[text.index("[refunds.statutory]") :], "utf-8")

    assert start_up_refusal(sqlite_url, tmp_path, catalog_file=catalog) == (
        f"{catalog}: no refund policy: FAIRSUB_CATALOG_FILE has no [refunds] section and "
        "FAIRSUB_REFUND_POLICY_FILE is not set"
    )

    paired = make_container(
        sqlite_url, tmp_path, FakeClock(), catalog_file=catalog, refund_policy_file=policy
    )
    try:
        paired.check_operator_files()
        assert len(paired.refund_policy().rules) == 4
    finally:
        paired.close()


def test_an_edit_that_breaks_the_running_policy_is_logged_once_and_the_last_good_one_kept(
    tmp_path: Path, sqlite_url: str
) -> None:
    from structlog.testing import capture_logs

    policy = tmp_path / "policy.toml"
    policy.write_text(demo_text(), "utf-8")
    container = make_container(sqlite_url, tmp_path, FakeClock(), refund_policy_file=policy)
    try:
        running = container.refund_policy()
        policy.write_text(demo_text().replace('outcome = "pro_rata"', 'outcome = "half"'), "utf-8")

        with capture_logs() as logs:
            assert container.refund_policy() is running  # customers' pages carry on
            assert container.refund_policy() is running
    finally:
        container.close()

    (logged,) = [entry for entry in logs if entry["event"] == "operator_file_invalid"]
    assert logged["log_level"] == "error"
    assert logged["error"].startswith(f"{policy}:")
    assert "refunds.rules[2].outcome" in logged["error"]


def test_settings_take_what_the_readme_documents_tidied(tmp_path: Path) -> None:
    tidy = settings(
        tmp_path,
        base_url="https://billing.example.com/",
        log_level="WARNING",
        vendor_name=" Larkspur Security ",
        mail_from="Larkspur Billing <billing@larkspur.example>",
        database_url="postgresql://fairsub@db.example/fairsub",
    )
    assert tidy.base_url == "https://billing.example.com"  # links add their own "/"
    assert tidy.log_level == "warning"
    assert tidy.vendor_name == "Larkspur Security"
    assert settings(tmp_path, database_url="").resolved_database_url.startswith("sqlite:///")


def test_the_data_dir_is_made_only_when_something_is_kept_there(tmp_path: Path) -> None:
    from fairsub.bootstrap import prepare_data_dir

    elsewhere = settings(
        tmp_path / "unused",
        database_url="postgresql+psycopg://fairsub@db.example/fairsub",
        secret_key="k" * 40,
        mail_backend="smtp",
        payment_gateway="stripe",
        stripe_api_key="sk_test_x",
    )
    prepare_data_dir(elsewhere)
    assert not (tmp_path / "unused").exists()
    prepare_data_dir(settings(tmp_path / "var"))
    assert (tmp_path / "var").is_dir()
