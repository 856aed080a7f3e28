"""The refund policy: the demo rules at their edges, the statutory floor, properties that
must hold for any policy, the TOML format's errors, and the explain service on fakes."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any, Self
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairsub.adapters.catalog_file import load_catalog
from fairsub.adapters.policy_file import load_policy, parse_text
from fairsub.domain.billing import (
    AttemptStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    PaymentAttempt,
)
from fairsub.domain.catalog import parse_catalog
from fairsub.domain.errors import InvalidInput, NotFound
from fairsub.domain.money import Money
from fairsub.domain.offers import REFUND_DAYS, WITHDRAWAL_REGIONS
from fairsub.domain.periods import Period, Term, add_months
from fairsub.domain.refund_rules import parse_policy
from fairsub.domain.refunding import ArrivalWindow
from fairsub.domain.refunds import (
    ANY,
    ChargeKind,
    RefundDecision,
    RefundKind,
    RefundPolicy,
    Rule,
    decide,
)
from fairsub.domain.subscriptions import (
    PaymentMethod,
    PaymentMethodKind,
    Reseller,
    Status,
    Subscription,
)
from fairsub.services import refund_policy

DEMO_TEXT = (files("fairsub") / "data" / "demo-catalog.toml").read_text(encoding="utf-8")
DEMO = parse_policy(tomllib.loads(DEMO_TEXT))
T0 = datetime(2027, 11, 7, 10, 0, tzinfo=UTC)
FIRST, RENEWAL = ChargeKind.FIRST_PURCHASE, ChargeKind.RENEWAL


def ask(
    policy: RefundPolicy = DEMO,
    *,
    region: str = "GB",
    term: Term = Term.YEAR,
    kind: ChargeKind = RENEWAL,
    charged: int = 7999,
    currency: str = "GBP",
    at: datetime = T0,
    after: timedelta = timedelta(0),
    refunded: int = 0,
    waived: bool = False,
) -> RefundDecision:
    """The decision for a charge made `at` (its period starting then), asked `after` it."""
    return decide(
        policy,
        region=region,
        term=term,
        kind=kind,
        charged=Money(charged, currency),
        charged_at=at,
        period=Period.first(at, term),
        already_refunded=Money(refunded, currency),
        now=at + after,
        eu_or_uk=policy.withdrawal_applies(region),
        waived_withdrawal=waived,
    )


# --- the demo policy, at its edges ---------------------------------------------------------------


def test_c28_uk_annual_renewal_is_refunded_in_full_up_to_the_exact_moment_60_days_on() -> None:
    at_deadline = ask(after=timedelta(days=60))

    assert at_deadline.kind is RefundKind.FULL
    assert at_deadline.amount == Money(7999, "GBP")
    assert at_deadline.deadline == T0 + timedelta(days=60)
    assert at_deadline.reason == (
        "Full refund: you are within 60 days of your renewal on 2027-11-07."
    )
    assert at_deadline.rule == "rule 1 (uk-annual-renewal-full)"
    assert not at_deadline.statutory


def test_c28_uk_annual_renewal_is_pro_rata_one_second_after_the_60_days() -> None:
    after = ask(after=timedelta(days=60, seconds=1))

    # 2027-11-07 + 60 days is in January: two months begun, ten whole months unused.
    assert after.kind is RefundKind.PRO_RATA
    assert after.amount == Money(7999 * 10 // 12, "GBP")
    assert after.deadline == add_months(T0, 2)  # the amount holds until the 3rd month begins
    assert "10 of the 12 months" in after.reason
    assert after.rule == "rule 2 (uk-annual-renewal-pro-rata)"


def test_c28_pro_rata_counts_unused_whole_months_and_rounds_down() -> None:
    # Four months and three days used: five months begun, seven whole months unused.
    used = add_months(T0, 4) + timedelta(days=3) - T0
    decision = ask(after=used)

    assert decision.amount == Money(4666, "GBP")  # 7999 * 7 / 12 = 4666.08
    assert decision.deadline == add_months(T0, 5)


def test_c28_a_month_counts_as_unused_up_to_its_first_moment() -> None:
    at_month_start = ask(after=add_months(T0, 4) - T0)
    just_after = ask(after=add_months(T0, 4) - T0 + timedelta(seconds=1))

    assert at_month_start.amount == Money(7999 * 8 // 12, "GBP")
    assert at_month_start.deadline == add_months(T0, 4)
    assert just_after.amount == Money(7999 * 7 // 12, "GBP")


def test_pro_rata_gives_nothing_once_no_whole_month_is_left() -> None:
    decision = ask(after=add_months(T0, 11) + timedelta(seconds=1) - T0)

    assert decision.kind is RefundKind.NONE
    assert decision.amount == Money(0, "GBP")
    assert "no whole month" in decision.reason
    assert decision.deadline is None


def test_annual_renewal_outside_the_uk_ends_with_the_60_day_window() -> None:
    inside = ask(region="DE", currency="EUR", after=timedelta(days=60))
    outside = ask(region="DE", currency="EUR", after=timedelta(days=60, seconds=1))

    assert inside.kind is RefundKind.FULL
    assert inside.rule == "rule 3 (annual-full-60-days)"
    assert outside.kind is RefundKind.NONE
    assert outside.reason == (
        "No refund: the 60-day refund window after your renewal on 2027-11-07 closed on 2028-01-06."
    )


@pytest.mark.parametrize("region", ["US", "JP", "DE", "GB"])
def test_monthly_first_purchase_is_refunded_in_full_for_14_days_everywhere(region: str) -> None:
    on_day_14 = ask(region=region, term=Term.MONTH, kind=FIRST, after=timedelta(days=14))
    after = ask(region=region, term=Term.MONTH, kind=FIRST, after=timedelta(days=14, seconds=1))

    assert on_day_14.kind is RefundKind.FULL
    assert on_day_14.deadline == T0 + timedelta(days=14)
    assert after.kind is RefundKind.NONE
    assert "14-day refund window after your purchase on 2027-11-07" in after.reason


def test_monthly_renewal_gets_no_refund_even_on_its_first_day() -> None:
    decision = ask(region="GB", term=Term.MONTH, kind=RENEWAL, after=timedelta(hours=1))

    assert decision.kind is RefundKind.NONE
    assert decision.reason == (
        "No refund: the refund policy gives none for the renewal of a monthly plan "
        "(your renewal on 2027-11-07)."
    )


def test_demo_policy_matches_what_the_checkout_discloses() -> None:
    """The offer says 'in full within 60 days of buying or of any renewal' (annual) and
    '14 days of buying' (monthly); the policy must give at least that, everywhere."""
    for region in ("US", "DE", "GB", "JP"):
        for term, days in REFUND_DAYS.items():
            kinds = (FIRST, RENEWAL) if term is Term.YEAR else (FIRST,)
            for kind in kinds:
                decision = ask(region=region, term=term, kind=kind, after=timedelta(days=days))
                assert decision.kind is RefundKind.FULL, (region, term, kind)
    assert DEMO.withdrawal_regions == WITHDRAWAL_REGIONS


# --- leap years and time zones -------------------------------------------------------------------


def test_the_60_day_window_counts_february_29() -> None:
    in_leap_year = ask(region="US", currency="USD", at=datetime(2028, 1, 15, 9, tzinfo=UTC))
    in_common_year = ask(region="US", currency="USD", at=datetime(2027, 1, 15, 9, tzinfo=UTC))

    assert in_leap_year.deadline == datetime(2028, 3, 15, 9, tzinfo=UTC)
    assert in_common_year.deadline == datetime(2027, 3, 16, 9, tzinfo=UTC)


def test_pro_rata_over_february_29_uses_calendar_months() -> None:
    renewed = datetime(2027, 3, 1, 12, tzinfo=UTC)  # the period holds 2028-02-29

    on_leap_day = ask(at=renewed, after=datetime(2028, 2, 29, 12, tzinfo=UTC) - renewed)
    january = ask(at=renewed, after=datetime(2028, 1, 31, 12, tzinfo=UTC) - renewed)

    assert on_leap_day.kind is RefundKind.NONE  # February, the last month, has begun
    assert january.amount == Money(7999 // 12, "GBP")  # February still whole
    assert january.deadline == datetime(2028, 2, 1, 12, tzinfo=UTC)


def test_a_renewal_on_february_29_has_twelve_months_ending_february_28() -> None:
    leap = datetime(2028, 2, 29, 8, tzinfo=UTC)

    decision = ask(at=leap, after=timedelta(days=61))  # 2028-04-30: three months begun

    assert decision.amount == Money(7999 * 9 // 12, "GBP")
    assert decision.deadline == datetime(2028, 5, 29, 8, tzinfo=UTC)


def test_a_charge_at_2330_utc_closes_its_window_at_2330_utc_not_at_local_midnight() -> None:
    late = datetime(2027, 11, 7, 23, 30, tzinfo=UTC)  # already 8 November in Berlin and Tokyo

    before = ask(at=late, region="DE", currency="EUR", after=timedelta(days=60, minutes=-1))
    after = ask(at=late, region="DE", currency="EUR", after=timedelta(days=60, minutes=15))

    assert before.kind is RefundKind.FULL
    assert before.deadline == datetime(2028, 1, 6, 23, 30, tzinfo=UTC)
    assert "your renewal on 2027-11-07" in before.reason  # the UTC date; the portal localises
    assert after.kind is RefundKind.NONE


def test_times_must_be_utc() -> None:
    berlin = datetime(2027, 11, 8, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    with pytest.raises(InvalidInput, match="UTC"):
        ask(at=berlin)


def test_a_refund_cannot_be_decided_before_the_charge() -> None:
    with pytest.raises(InvalidInput, match="before the charge"):
        ask(after=timedelta(seconds=-1))


# --- the statutory floor: C24, C26, C27 ----------------------------------------------------------

ANNUAL_ONLY = RefundPolicy(
    (Rule(ANY, frozenset({Term.YEAR}), frozenset(ChargeKind), RefundKind.FULL, 60),)
)


def test_c24_c26_eu_first_purchase_is_refunded_in_full_for_14_days_whatever_the_rules() -> None:
    decision = ask(
        ANNUAL_ONLY, region="DE", currency="EUR", term=Term.MONTH, kind=FIRST,
        charged=999, after=timedelta(days=14),
    )  # fmt: skip

    assert decision.kind is RefundKind.FULL
    assert decision.amount == Money(999, "EUR")
    assert decision.statutory
    assert decision.deadline == T0 + timedelta(days=14)
    assert decision.reason == (
        "Full refund: you are within the 14-day right of withdrawal after your purchase on "
        "2027-11-07."
    )
    assert decision.rule is None


def test_c24_the_withdrawal_right_ends_after_14_days_and_never_covers_renewals() -> None:
    def monthly(kind: ChargeKind, after: timedelta) -> RefundDecision:
        return ask(
            ANNUAL_ONLY, region="DE", currency="EUR", term=Term.MONTH, charged=999, kind=kind,
            after=after,
        )  # fmt: skip

    late = monthly(FIRST, timedelta(days=14, seconds=1))
    renewal = monthly(RENEWAL, timedelta(days=1))

    assert late.kind is RefundKind.NONE
    assert renewal.kind is RefundKind.NONE
    assert not late.statutory and not renewal.statutory


def test_c24_no_withdrawal_floor_outside_the_withdrawal_regions() -> None:
    decision = ask(
        ANNUAL_ONLY, region="US", currency="USD", term=Term.MONTH, kind=FIRST, charged=999,
        after=timedelta(days=1),
    )  # fmt: skip

    assert decision.kind is RefundKind.NONE


def test_c26_the_longer_rule_window_wins_and_the_law_is_still_named() -> None:
    decision = ask(region="DE", currency="EUR", kind=FIRST, after=timedelta(days=3))

    assert decision.kind is RefundKind.FULL
    assert decision.deadline == T0 + timedelta(days=60)
    assert decision.statutory
    assert decision.reason.endswith("It is also your legal right of withdrawal until 2027-11-21.")


def test_c27_a_waived_withdrawal_refunds_the_days_not_used() -> None:
    decision = ask(
        ANNUAL_ONLY, region="DE", currency="EUR", term=Term.MONTH, kind=FIRST, charged=999,
        after=timedelta(days=9, hours=2), waived=True,
    )  # fmt: skip

    # November has 30 days; 10 days begun, 20 left: 999 * 20 / 30.
    assert decision.kind is RefundKind.PRO_RATA
    assert decision.amount == Money(666, "EUR")
    assert decision.statutory
    assert decision.deadline == T0 + timedelta(days=10)
    assert "10 of 30 days used" in decision.reason


def test_c27_a_waiver_never_takes_away_what_the_rules_give() -> None:
    decision = ask(region="DE", currency="EUR", kind=FIRST, after=timedelta(days=9), waived=True)

    assert decision.kind is RefundKind.FULL
    assert decision.amount == Money(7999, "EUR")
    assert not decision.statutory


# --- refunded already ----------------------------------------------------------------------------


def test_a_fully_refunded_charge_gets_nothing_more_and_says_why() -> None:
    decision = ask(refunded=7999, after=timedelta(days=1))

    assert decision.kind is RefundKind.NONE
    assert decision.amount == Money(0, "GBP")
    assert decision.reason == (
        "No refund: the GBP 79.99 charged on 2027-11-07 has already been refunded in full."
    )


def test_a_pro_rata_refund_is_not_paid_twice() -> None:
    later = timedelta(days=100)
    first = ask(after=later)
    again = ask(after=later + timedelta(days=1), refunded=first.amount.amount_minor)

    assert first.kind is RefundKind.PRO_RATA
    assert again.kind is RefundKind.NONE
    assert "as much as the policy gives now" in again.reason


def test_what_is_left_of_a_full_refund_is_still_owed() -> None:
    decision = ask(refunded=1000, after=timedelta(days=1))

    assert decision.kind is RefundKind.FULL
    assert decision.amount == Money(6999, "GBP")
    assert decision.reason.endswith("GBP 10.00 of it was refunded already.")


def test_refunds_in_another_currency_are_refused() -> None:
    with pytest.raises(InvalidInput, match="Cannot mix"):
        decide(
            DEMO, region="GB", term=Term.YEAR, kind=RENEWAL, charged=Money(7999, "GBP"),
            charged_at=T0, period=Period.first(T0, Term.YEAR),
            already_refunded=Money(1, "EUR"), now=T0, eu_or_uk=True,
        )  # fmt: skip


# --- properties ----------------------------------------------------------------------------------

REGIONS = ["GB", "DE", "US", "JP"]
moments = st.datetimes(
    min_value=datetime(2024, 1, 1),  # noqa: DTZ001 - Hypothesis wants naive bounds
    max_value=datetime(2031, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
spans = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800))
rules = st.builds(
    Rule,
    regions=st.one_of(st.just(ANY), st.frozensets(st.sampled_from(REGIONS), min_size=1)),
    terms=st.frozensets(st.sampled_from(list(Term)), min_size=1),
    kinds=st.frozensets(st.sampled_from(list(ChargeKind)), min_size=1),
    outcome=st.sampled_from(list(RefundKind)),
    within_days=st.one_of(st.none(), st.integers(min_value=1, max_value=400)),
)
policies = st.builds(
    RefundPolicy,
    rules=st.lists(rules, min_size=1, max_size=5).map(tuple),
    withdrawal_regions=st.frozensets(st.sampled_from(REGIONS)),
)


@st.composite
def requests(draw: st.DrawFn, policy: st.SearchStrategy[RefundPolicy] = policies) -> dict[str, Any]:
    charged = draw(st.integers(min_value=0, max_value=10**7))
    return {
        "policy": draw(policy),
        "region": draw(st.sampled_from(REGIONS)),
        "term": draw(st.sampled_from(list(Term))),
        "kind": draw(st.sampled_from(list(ChargeKind))),
        "charged": charged,
        "currency": "GBP",
        "at": draw(moments),
        "refunded": draw(st.integers(min_value=0, max_value=charged)),
        "waived": draw(st.booleans()),
    }


@given(requests(), spans)
def test_never_more_than_paid_minus_refunded_and_never_negative(
    request: dict[str, Any], after: timedelta
) -> None:
    decision = ask(after=after, **request)

    assert 0 <= decision.amount.amount_minor <= request["charged"] - request["refunded"]
    assert decision.amount.currency == "GBP"
    assert (decision.kind is RefundKind.NONE) == (decision.amount.amount_minor == 0)
    assert decision.reason


@given(requests(), spans, spans)
def test_a_refund_paid_once_is_never_paid_again(
    request: dict[str, Any], first_after: timedelta, later: timedelta
) -> None:
    request["refunded"] = 0
    first = ask(after=first_after, **request)
    again = ask(after=first_after, **{**request, "refunded": first.amount.amount_minor})
    second = ask(after=first_after + later, **{**request, "refunded": first.amount.amount_minor})

    assert again.kind is RefundKind.NONE
    assert first.amount.amount_minor + second.amount.amount_minor <= request["charged"]


PRO_RATA_ONLY = RefundPolicy(
    (Rule(ANY, frozenset(Term), frozenset(ChargeKind), RefundKind.PRO_RATA),)
)


@given(requests(st.just(PRO_RATA_ONLY)), spans, spans)
def test_pro_rata_never_grows_as_time_passes(
    request: dict[str, Any], first: timedelta, more: timedelta
) -> None:
    sooner, later = ask(after=first, **request), ask(after=first + more, **request)

    assert later.amount.amount_minor <= sooner.amount.amount_minor


@given(requests(st.just(DEMO)), spans, spans)
def test_the_demo_policy_never_gives_more_for_asking_later(
    request: dict[str, Any], first: timedelta, more: timedelta
) -> None:
    sooner, later = ask(after=first, **request), ask(after=first + more, **request)

    assert later.amount.amount_minor <= sooner.amount.amount_minor


@given(requests(st.just(DEMO)), spans)
def test_a_decision_still_holds_at_its_deadline(request: dict[str, Any], after: timedelta) -> None:
    decision = ask(after=after, **request)
    if decision.deadline is None:
        return
    at_deadline = ask(after=decision.deadline - request["at"], **request)

    assert (at_deadline.kind, at_deadline.amount) == (decision.kind, decision.amount)


@given(requests(st.just(DEMO)), spans)
def test_a_fully_refunded_charge_always_yields_none_with_a_reason(
    request: dict[str, Any], after: timedelta
) -> None:
    request["refunded"] = request["charged"]
    decision = ask(after=after, **request)

    assert decision.kind is RefundKind.NONE
    assert decision.reason.startswith("No refund:")


# --- the TOML format -----------------------------------------------------------------------------


def test_the_demo_catalog_with_its_refunds_section_is_still_a_valid_catalog() -> None:
    data = tomllib.loads(DEMO_TEXT)
    assert "refunds" in data

    catalog = parse_catalog(data)

    assert len(catalog.plans) == 6
    assert load_catalog(None).plans.keys() == catalog.plans.keys()
    assert load_policy(None) == DEMO


POLICY = """
[regions.GB]
name = "United Kingdom"

[[refunds.rules]]
name = "first"
regions = ["GB"]
terms = "*"
kinds = "*"
within_days = 30
outcome = "full"

[[refunds.rules]]
regions = "*"
terms = ["year"]
kinds = ["renewal"]
outcome = "pro_rata"
"""


def test_a_policy_file_parses_in_order_with_wildcards_and_the_default_withdrawal_regions() -> None:
    policy = parse_text(POLICY)

    first, second = policy.rules
    assert first == Rule(
        frozenset({"GB"}), frozenset(Term), frozenset(ChargeKind), RefundKind.FULL, 30, "first"
    )
    assert second.regions == ANY and second.within_days is None
    assert policy.withdrawal_regions == WITHDRAWAL_REGIONS
    assert policy.label(1) == "rule 2"


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("change", "needle", "message"),
    [
        (('outcome = "pro_rata"', 'outcome = "half"'), 'outcome = "half"',
         "refunds.rules[2].outcome: expected one of full, pro_rata, none"),
        (("within_days = 30", "within_day = 30"), "within_day = 30",
         "refunds.rules[1].within_day: unknown key (expected one of name, regions, terms"),
        (("within_days = 30", "within_days = 0"), "within_days = 0",
         "refunds.rules[1].within_days: expected a whole number of days, 1 to 3660"),
        (("within_days = 30", "within_days = true"), "within_days = true",
         "refunds.rules[1].within_days: expected a whole number of days"),
        (('regions = ["GB"]', 'regions = ["UK"]'), 'regions = ["UK"]',
         "refunds.rules[1].regions: no region 'UK' in the catalog"),
        (('regions = ["GB"]', "regions = []"), "regions = []",
         'refunds.rules[1].regions: expected "*" or a non-empty list of strings'),
        (('terms = ["year"]', 'terms = ["week"]'), 'terms = ["week"]',
         'refunds.rules[2].terms: expected "*" or a list of month, year'),
        (('kinds = ["renewal"]', 'kinds = ["upgrade"]'), 'kinds = ["upgrade"]',
         'refunds.rules[2].kinds: expected "*" or a list of first_purchase, renewal'),
        (('name = "first"', "name = 3"), "name = 3", "refunds.rules[1].name: expected a string"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_reported_with_its_line_and_path(
    change: tuple[str, str], needle: str, message: str
) -> None:
    text = POLICY.replace(*change, 1)

    with pytest.raises(InvalidInput) as caught:
        parse_text(text, "operator.toml")

    assert caught.value.message.startswith(f"operator.toml:{_line(text, needle)}: {message}")


def test_two_rules_with_one_name_are_refused_at_the_second() -> None:
    renamed = 'name = "First"'
    text = POLICY.replace('regions = "*"', f'{renamed}\nregions = "*"', 1)

    with pytest.raises(InvalidInput) as caught:
        parse_text(text, "operator.toml")

    assert caught.value.message == (
        f"operator.toml:{_line(text, renamed)}: refunds.rules[2].name: "
        "'First' is already the name of rule 1"
    )


def test_statutory_regions_are_read_and_checked() -> None:
    good = POLICY + '\n[refunds.statutory]\nwithdrawal_regions = ["GB", "IE"]\n'
    bad = POLICY + '\n[refunds.statutory]\nwithdrawal_regions = "GB"\n'
    typo = POLICY + '\n[refunds.statutory]\nregions = ["GB"]\n'

    assert parse_text(good).withdrawal_regions == {"GB", "IE"}
    with pytest.raises(InvalidInput, match=r"^p:\d+: refunds\.statutory\.withdrawal_regions: "):
        parse_text(bad, "p")
    with pytest.raises(InvalidInput, match=r"^p:\d+: refunds\.statutory\.regions: unknown key"):
        parse_text(typo, "p")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('vendor = "x"\n', "p: refunds: expected a [refunds] section"),
        ("[refunds]\nrules = []\n", "p:2: refunds.rules: expected at least one"),
        ("[refunds]\nrule = 1\n", "p:2: refunds.rule: unknown key"),
        ("[refunds]\nrules = [1]\n", "p:2: refunds.rules[1]: expected a table"),
        ("[[refunds.rules]\n", "p:1: not valid TOML"),
    ],
)
def test_a_bad_policy_section_is_reported_with_its_path(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_text(text, "p")

    assert caught.value.message.startswith(message)


# --- explaining a subscription's refund (services.refund_policy, on fakes) -----------------------

NOW = datetime(2027, 11, 27, 12, tzinfo=UTC)


@dataclass
class FakeLedger:
    subscriptions: dict[int, Subscription] = field(default_factory=dict)
    invoices: list[tuple[Invoice, list[PaymentAttempt]]] = field(default_factory=list)

    def by_id(self, subscription_id: int) -> Subscription | None:
        return self.subscriptions.get(subscription_id)

    refunded: dict[int, int] = field(default_factory=dict)  # by charge attempt id

    def statement(self, account_id: int) -> list[tuple[Invoice, list[PaymentAttempt]]]:
        return [(i, a) for i, a in self.invoices if i.account_id == account_id]

    def refunded_amount(self, charge_attempt_id: int, currency: str) -> Money:
        return Money(self.refunded.get(charge_attempt_id, 0), currency)


@dataclass
class FakePaymentMethods:
    methods: list[tuple[int, PaymentMethod, str]] = field(default_factory=list)

    def for_account(self, account_id: int) -> list[tuple[int, PaymentMethod, str]]:
        return self.methods


class FakeReadUow:
    """Just enough of a unit of work for a read-only service."""

    def __init__(self, ledger: FakeLedger, methods: FakePaymentMethods | None = None) -> None:
        self.subscriptions = self.billing = self.refunds = ledger
        self.payment_methods = methods or FakePaymentMethods()

    def read(self) -> Self:
        return self

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        return None


def subscription(**changes: Any) -> Subscription:
    started = changes.pop("started_at", NOW - timedelta(days=20))
    term = changes.pop("term", Term.YEAR)
    values: dict[str, Any] = {
        "id": 7, "account_id": 3, "product_name": "Larkspur 360", "plan_name": "360 Annual",
        "term": term, "region": "GB", "price": Money(7999, "GBP"), "status": Status.ACTIVE,
        "auto_renew": True, "period": Period.first(started, term), "started_at": started,
    }  # fmt: skip
    return Subscription(**{**values, **changes})


def paid(number: int, kind: InvoiceKind, start: datetime, amount: int = 7999) -> Any:
    invoice = Invoice(
        id=number, number=number, account_id=3, subscription_id=7, kind=kind,
        period_start=start, period_end=add_months(start, 12), amount=Money(amount, "GBP"),
        status=InvoiceStatus.PAID, created_at=start, paid_at=start + timedelta(minutes=1),
    )  # fmt: skip
    attempt = PaymentAttempt(
        id=number, account_id=3, invoice_id=number, subscription_id=7, attempt_no=1,
        idempotency_key=f"k{number}", amount=Money(amount, "GBP"), payment_token="tok",
        status=AttemptStatus.SUCCEEDED, created_at=start,
    )  # fmt: skip
    return invoice, [attempt] if amount else []


Explain = Callable[..., refund_policy.Explanation]


@pytest.fixture
def explain() -> Explain:
    def run(
        sub: Subscription,
        *invoices: Any,
        at: datetime = NOW,
        refunded: int = 0,
        methods: FakePaymentMethods | None = None,
    ) -> refund_policy.Explanation:
        attempts = {a.id: refunded for _, paid_attempts in invoices for a in paid_attempts}
        uow = FakeReadUow(FakeLedger({sub.id: sub}, list(invoices), attempts), methods)
        return refund_policy.explain(uow, DEMO, sub.id, at)  # type: ignore[arg-type]

    return run


def test_explain_decides_on_the_latest_paid_invoice_a_renewal(explain: Explain) -> None:
    bought = NOW - timedelta(days=400)
    renewed = add_months(bought, 12)
    sub = subscription(started_at=bought, period=Period(renewed, add_months(renewed, 12)))

    found = explain(
        sub, paid(1, InvoiceKind.PURCHASE, bought), paid(2, InvoiceKind.RENEWAL, renewed)
    )

    assert found.charge is not None and found.charge.invoice_number == 2
    assert found.charge.kind is RENEWAL
    assert found.charge.at == renewed + timedelta(minutes=1)  # from the payment, not the period
    assert found.decision.kind is RefundKind.FULL
    assert found.decision.rule == "rule 1 (uk-annual-renewal-full)"


def test_explain_at_an_earlier_moment_uses_the_charge_made_by_then(explain: Explain) -> None:
    bought = NOW - timedelta(days=400)
    renewed = add_months(bought, 12)
    sub = subscription(started_at=bought, period=Period(renewed, add_months(renewed, 12)))

    found = explain(
        sub, paid(1, InvoiceKind.PURCHASE, bought), paid(2, InvoiceKind.RENEWAL, renewed),
        at=bought + timedelta(days=5),
    )  # fmt: skip

    assert found.charge is not None and found.charge.kind is FIRST
    assert found.decision.statutory  # GB, within 14 days of the first purchase


def test_explain_assumes_the_price_was_paid_when_there_is_no_ledger(explain: Explain) -> None:
    found = explain(subscription())  # like the seeded demo: no invoices at all

    assert found.charge is not None and found.charge.invoice_number is None
    assert found.charge.kind is FIRST
    assert found.decision.kind is RefundKind.FULL
    assert found.decision.deadline == NOW + timedelta(days=40)


def test_explain_skips_a_trials_zero_invoice(explain: Explain) -> None:
    start = NOW - timedelta(days=3)
    sub = subscription(
        started_at=start, status=Status.TRIALING, trial_ends_at=start + timedelta(days=30)
    )

    found = explain(sub, paid(1, InvoiceKind.PURCHASE, start, amount=0))

    assert found.charge is None
    assert found.decision.kind is RefundKind.NONE
    assert "nothing had been charged" in found.decision.reason


def test_explain_sends_a_resellers_customer_to_the_reseller(explain: Explain) -> None:
    sub = subscription(reseller=Reseller("Bluebird Software Store", "BB-1", "https://x.example"))

    found = explain(sub)

    assert found.decision.kind is RefundKind.NONE
    assert "bought through Bluebird Software Store" in found.decision.reason


def test_explain_takes_off_what_was_refunded_from_the_charge(explain: Explain) -> None:
    bought = NOW - timedelta(days=20)
    sub = subscription(started_at=bought)

    part = explain(sub, paid(1, InvoiceKind.PURCHASE, bought), refunded=2000)
    whole = explain(sub, paid(1, InvoiceKind.PURCHASE, bought), refunded=7999)

    assert part.charge is not None and part.charge.already_refunded == Money(2000, "GBP")
    assert part.decision.amount == Money(5999, "GBP")
    assert whole.decision.kind is RefundKind.NONE
    assert "already been refunded in full" in whole.decision.reason


def test_explain_says_how_long_a_refund_to_the_method_that_paid_takes(explain: Explain) -> None:
    bought = NOW - timedelta(days=20)
    invoice, (attempt,) = paid(1, InvoiceKind.PURCHASE, bought)
    debit = PaymentMethod("Direct debit", "3000", PaymentMethodKind.SEPA_DEBIT)

    found = explain(
        subscription(started_at=bought),
        (invoice, [replace(attempt, payment_method_id=9)]),
        methods=FakePaymentMethods([(9, debit, "")]),
    )
    assumed = explain(subscription())  # no ledger, no payment method on record

    assert found.arrival == ArrivalWindow(2, 5)  # the demo policy's window for SEPA debits
    assert assumed.arrival == ArrivalWindow(5, 10)  # the card's


def test_explain_counts_a_refunded_subscription_as_refunded(explain: Explain) -> None:
    found = explain(subscription(status=Status.REFUNDED))

    assert found.decision.kind is RefundKind.NONE
    assert "already been refunded in full" in found.decision.reason


def test_explain_an_unknown_subscription_is_not_found() -> None:
    uow = FakeReadUow(FakeLedger())
    with pytest.raises(NotFound):
        refund_policy.explain(uow, DEMO, 404, NOW)  # type: ignore[arg-type]


def test_a_pro_rata_share_that_rounds_to_nothing_is_no_refund_and_says_why() -> None:
    """One unused month of twelve of a 5-yen charge is less than one yen."""
    decision = ask(PRO_RATA_ONLY, charged=5, currency="JPY", region="JP", after=timedelta(days=300))

    assert (decision.kind, decision.amount) == (RefundKind.NONE, Money(0, "JPY"))
    assert "smallest unit" in decision.reason
    refunded_nothing = ask(PRO_RATA_ONLY, charged=5, currency="JPY", region="JP", refunded=0)
    assert refunded_nothing.amount == Money(5, "JPY")  # asked at once: every month unused
