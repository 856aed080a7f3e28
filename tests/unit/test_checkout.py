"""What checkout tells the customer before they agree (C15), and how a purchase's first
payment starts a subscription or never starts it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fairsub.bootstrap import load_catalog
from fairsub.domain.errors import InvalidInput, InvalidTransition
from fairsub.domain.events import PurchaseDeclined, SubscriptionPurchased
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, Term
from fairsub.domain.subscriptions import Status, Subscription
from fairsub.services import checkout

NOW = datetime(2026, 1, 31, 9, 30, 15, 123456, tzinfo=UTC)
CATALOG = load_catalog(None)


def incomplete(auto_renew: bool = True) -> Subscription:
    return Subscription(
        id=9,
        account_id=4,
        product_name="Larkspur Antivirus",
        plan_name="Antivirus Monthly",
        term=Term.MONTH,
        region="US",
        price=Money(499, "USD"),
        status=Status.INCOMPLETE,
        auto_renew=auto_renew,
        period=Period.first(NOW.replace(microsecond=0), Term.MONTH),
        started_at=NOW.replace(microsecond=0),
    )


# --- the offer -------------------------------------------------------------------------


def test_c15_offer_without_a_trial_is_charged_today_and_renews_a_calendar_month_later() -> None:
    shown = checkout.offer(CATALOG, "antivirus-monthly", "US", NOW)

    assert shown.price == Money(499, "USD")
    assert shown.at == NOW.replace(microsecond=0)
    assert shown.trial_ends_at is None and shown.last_free_day is None
    assert shown.first_charge_at == shown.at
    assert shown.renews_at == datetime(2026, 2, 28, 9, 30, 15, tzinfo=UTC)  # Jan 31 + 1 month
    assert shown.one_term_ends_at == shown.renews_at
    assert (shown.refund_days, shown.withdrawal_right) == (14, False)


def test_c15_offer_with_a_trial_names_the_first_charge_and_the_last_free_day() -> None:
    shown = checkout.offer(CATALOG, "identity-monthly", "DE", NOW)

    assert shown.trial_days == 30
    assert shown.trial_ends_at == shown.first_charge_at == shown.at + timedelta(days=30)
    assert shown.last_free_day == shown.first_charge_at - timedelta(days=1)
    assert shown.renews_at == datetime(2026, 4, 2, 9, 30, 15, tzinfo=UTC)
    assert shown.one_term_ends_at == datetime(2026, 2, 28, 9, 30, 15, tzinfo=UTC)  # no trial
    assert shown.price == Money(899, "EUR") and shown.withdrawal_right


def test_c15_the_disclosure_kept_with_the_consent_says_what_was_shown() -> None:
    shown = checkout.offer(CATALOG, "identity-monthly", "GB", NOW)

    renewing = shown.disclosure(auto_renew=True)
    once = shown.disclosure(auto_renew=False)

    assert "Price: GBP 7.99 per month." in renewing
    assert "Free trial: 30 days, until 2026-03-02 09:30 UTC" in renewing
    assert "Renews automatically every month at GBP 7.99 until cancelled" in renewing
    assert "Last day to cancel without charge: 2026-03-01 (UTC)." in renewing
    assert "One month only, charged today: GBP 7.99. It does not renew" in once
    assert "Free trial" not in once
    for text in (renewing, once):
        assert checkout.HOW_TO_CANCEL in text
        assert "Right of withdrawal: 14 days" in text
        assert f"Terms version {checkout.TERMS_VERSION}" in text


def test_annual_plans_promise_a_refund_after_each_renewal_too() -> None:
    shown = checkout.offer(CATALOG, "total360-annual", "JP", NOW)
    assert shown.price == Money(12800, "JPY")
    assert shown.refund_days == 60
    assert "within 60 days of buying or of any renewal" in shown.disclosure(True)


@pytest.mark.parametrize(
    ("plan", "region", "message"),
    [("no-such-plan", "US", "Unknown plan"), ("antivirus-annual", "XX", "do not sell")],
)
def test_an_offer_for_something_not_sold_is_refused(plan: str, region: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        checkout.offer(CATALOG, plan, region, NOW)


def test_the_price_list_groups_plans_under_their_product() -> None:
    listed = checkout.price_list(CATALOG, "US")
    assert [product.code for product, _ in listed] == ["antivirus", "total360", "identity"]
    assert [plan.code for plan in listed[0][1]] == ["antivirus-monthly", "antivirus-annual"]


# --- the first payment -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("auto_renew", "status"), [(True, Status.ACTIVE), (False, Status.CANCELED)]
)
def test_a_paid_purchase_starts_and_one_term_only_is_canceled_from_the_start(
    auto_renew: bool, status: Status
) -> None:
    sub = incomplete(auto_renew)

    sub.first_payment_succeeded(NOW)

    assert (sub.status, sub.auto_renew) == (status, auto_renew)
    assert sub.is_entitled(NOW)
    assert sub.events == [SubscriptionPurchased(9, NOW, sub.period.end)]


def test_a_declined_purchase_never_starts_and_ends_now() -> None:
    sub = incomplete()
    later = NOW + timedelta(hours=2)

    sub.first_payment_failed(later)

    assert (sub.status, sub.auto_renew) == (Status.EXPIRED, False)
    assert sub.ends_at == later and not sub.is_entitled(later)
    assert sub.events == [PurchaseDeclined(9, later)]
    assert sub.never_started  # shown as "Not bought: payment declined", not as expired


def test_a_purchase_paid_and_later_expired_did_start() -> None:
    sub = incomplete(auto_renew=False)
    sub.first_payment_succeeded(NOW)
    sub.expire(sub.period.end)
    assert sub.status is Status.EXPIRED and not sub.never_started


def test_a_decline_in_the_same_second_still_leaves_a_valid_period() -> None:
    sub = incomplete()
    sub.first_payment_failed(sub.started_at)
    assert sub.period.end == sub.started_at + timedelta(seconds=1)


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.INCOMPLETE])
def test_only_an_incomplete_purchase_takes_its_first_payment(status: Status) -> None:
    sub = incomplete()
    sub.status = status
    with pytest.raises(InvalidTransition):
        sub.first_payment_succeeded(NOW)
    with pytest.raises(InvalidTransition):
        sub.first_payment_failed(NOW)
    assert sub.status is status
