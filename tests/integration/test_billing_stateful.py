"""Invariants 1-3 as a state machine over real SQLite: customers buy, turn auto-renew off
and on, time moves, cards start declining or losing answers, the gateway goes down,
workers crash after claiming or after charging, slow workers finish late, the billing run
and the janitor run - in whatever order Hypothesis finds. After every step:

1. nothing is charged after a committed turn-off, nor after a subscription ended; a
   turn-off that raced a charge says so, and the customer keeps exactly what it says;
2. no (subscription, period) has more than one succeeded charge, ours or the gateway's;
3. the gateway holds no charge we did not ask for, and every answer we recorded is the
   gateway's; once the janitor has settled everything, reconcile finds no difference.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, delete, select, update

from fairsub.adapters.db.tables import (
    cancellations,
    invoices,
    metadata,
    payment_attempts,
    payment_methods,
    subscriptions,
)
from fairsub.domain.accounts import Account
from fairsub.domain.billing import DunningPolicy
from fairsub.domain.errors import InvalidTransition
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, add_months
from fairsub.services import billing, billing_stages, reconcile
from fairsub.services import catalog as catalog_service
from fairsub.services import subscriptions as subs
from fairsub.services.ports import (
    ChargeResult,
    GatewayUnavailable,
    NewSubscription,
    StoredCard,
)
from tests.conftest import make_container
from tests.fakes import FakeClock, FakeGateway
from tests.integration.billing_world import period_of, unsettled

START = datetime.fromisoformat("2026-11-27T12:00:00+00:00")
CATALOG_TABLES = {"regions", "products", "plans", "prices"}
BEHAVIOURS = ("ok", "ok", "ok", "decline", "timeout")  # tokens of the fake gateway
CARDS = st.sampled_from(BEHAVIOURS)
PLANS = st.sampled_from(["antivirus-monthly", "antivirus-annual"])
DUE_NOW = st.integers(-3 * 24, 0)  # hours until the current period ends
ENDS_IN = st.one_of(DUE_NOW, st.integers(1, 45 * 24))
UNSETTLED = ("sending", "unknown")


class FlakyGateway(FakeGateway):
    """The fake gateway, which can also be down as a whole: every call refused, nothing done."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def reset(self) -> None:
        self.charges.clear()
        self.refunds.clear()
        self.calls = 0
        self.down = False

    def charge(
        self, idempotency_key: str, amount: Money, card_token: str, description: str
    ) -> ChargeResult:
        if self.down:
            raise GatewayUnavailable("down")
        return super().charge(idempotency_key, amount, card_token, description)

    def lookup_charge(self, idempotency_key: str) -> ChargeResult | None:
        if self.down:
            raise GatewayUnavailable("down")
        return super().lookup_charge(idempotency_key)


@dataclass(frozen=True)
class Bought:
    account: Account
    subscription_id: int
    payment_method_id: int

    @property
    def account_id(self) -> int:
        return self.account.id


@dataclass(frozen=True)
class Off:
    """What existed when a turn-off committed: nothing may be added to it while it holds."""

    invoices: frozenset[int]
    attempts: frozenset[int]
    declaration: str
    ends_at: datetime
    charging_period_end: datetime | None  # the period of the charge it raced, if any


def wipe(engine: Engine) -> None:
    """Empty every table but the catalog: a fresh world for the next example."""
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            if table.name not in CATALOG_TABLES:
                connection.execute(delete(table))


def ledger_rows(engine: Engine) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    with engine.connect() as connection:
        return (
            list(connection.execute(select(subscriptions))),
            list(connection.execute(select(invoices))),
            list(connection.execute(select(payment_attempts))),
            list(connection.execute(select(cancellations))),
        )


def test_invariants_1_to_3_hold_whatever_customers_workers_and_the_gateway_do(
    sqlite_url: str, tmp_path: Path
) -> None:
    clock = FakeClock(START)
    gateway = FlakyGateway()
    container = make_container(sqlite_url, tmp_path, clock, gateway=gateway)
    catalog = container.catalog()
    catalog_service.store(container.uows(), clock, catalog)
    engine, uows = container.engine, container.uows
    seen: Counter[str] = Counter()  # what the examples got up to, printed at the end

    class Billing(RuleBasedStateMachine):
        bought = Bundle("bought")

        def __init__(self) -> None:
            super().__init__()
            wipe(engine)
            gateway.reset()
            clock.set(START)
            self.customers = 0
            self.off: dict[int, Off] = {}
            self.ended: dict[int, tuple[frozenset[int], frozenset[int]]] = {}
            self.first_period: dict[int, Period] = {}
            self.slow_workers: list[list[billing.Work]] = []
            self.by_id: dict[int, Bought] = {}

        # -- customers ---------------------------------------------------------------------

        @initialize(target=bought, plan=PLANS, ends_in=DUE_NOW, behaviour=CARDS)
        def first_customer(self, plan: str, ends_in: int, behaviour: str) -> Bought:
            return self.new_customer(plan, ends_in, behaviour)

        @initialize(target=bought, plan=PLANS, ends_in=DUE_NOW, behaviour=CARDS)
        def second_customer(self, plan: str, ends_in: int, behaviour: str) -> Bought:
            return self.new_customer(plan, ends_in, behaviour)

        @rule(target=bought, plan=PLANS, ends_in=ENDS_IN, behaviour=CARDS)
        def buy(self, plan: str, ends_in: int, behaviour: str) -> Bought:
            return self.new_customer(plan, ends_in, behaviour)

        def new_customer(self, plan: str, ends_in: int, behaviour: str) -> Bought:
            """A subscription whose current period ends `ends_in` hours from now."""
            self.customers += 1
            now = clock.now()
            chosen = catalog.plan(plan)
            price = chosen.price_in("GB")
            started = add_months(now + timedelta(hours=ends_in), -chosen.term.months)
            period = Period.first(started, chosen.term)
            with uows().write() as uow:
                account = uow.accounts.add(
                    f"c{self.customers}@example.com",
                    f"Customer {self.customers}",
                    "-",
                    "GB",
                    "en_GB",
                    "Europe/London",
                    started,
                )
                card = StoredCard(f"tok_{behaviour}_{self.customers}", "Visa", "4242", "12/2040")
                method = uow.payment_methods.add(account.id, card, "fake", now)
                subscription_id = uow.subscriptions.add(
                    NewSubscription(
                        account_id=account.id,
                        plan_code=plan,
                        region="GB",
                        status="active",
                        auto_renew=True,
                        price_minor=price.amount_minor,
                        currency=price.currency,
                        started_at=started,
                        period_start=period.start,
                        period_end=period.end,
                        payment_method_id=method,
                        reseller=None,
                    )
                )
                uow.commit()
            self.first_period[subscription_id] = period
            self.by_id[subscription_id] = Bought(account, subscription_id, method)
            return self.by_id[subscription_id]

        @rule(which=bought)
        def turn_off(self, which: Bought) -> None:
            try:
                cancellation = subs.turn_off_auto_renew(
                    uows(),
                    clock,
                    account=which.account,
                    subscription_id=which.subscription_id,
                    actor="customer",
                    channel="portal",
                )
            except InvalidTransition:
                return  # already ended, or already off with nothing to show
            if which.subscription_id in self.off:
                return  # a retry: the cancellation already in force
            _, invoice_rows, attempt_rows, _ = ledger_rows(engine)
            mine = which.subscription_id
            in_flight = [
                a for a in attempt_rows if a.subscription_id == mine and a.status in UNSETTLED
            ]
            charging = None
            if in_flight:
                (invoice,) = [i for i in invoice_rows if i.id == in_flight[0].invoice_id]
                charging = invoice.period_end
            seen["turn-off lost the race" if charging else "turn-off won"] += 1
            self.off[mine] = Off(
                frozenset(i.id for i in invoice_rows if i.subscription_id == mine),
                frozenset(a.id for a in attempt_rows if a.subscription_id == mine),
                cancellation.declaration,
                cancellation.ends_at,
                charging,
            )

        @precondition(lambda self: bool(self.slow_workers))
        @rule(data=st.data())
        def turn_off_while_its_renewal_is_charging(self, data: st.DataObject) -> None:
            work = data.draw(st.sampled_from(self.slow_workers))
            item = data.draw(st.sampled_from(work))
            self.turn_off(self.by_id[item.attempt.subscription_id])

        @rule(which=bought)
        def turn_on(self, which: Bought) -> None:
            try:
                subs.turn_on_auto_renew(
                    uows(),
                    clock,
                    account_id=which.account_id,
                    subscription_id=which.subscription_id,
                    actor="customer",
                    channel="portal",
                )
            except InvalidTransition:
                return  # the period is over: too late to undo
            self.off.pop(which.subscription_id, None)

        @rule(which=bought, behaviour=CARDS)
        def card_starts_to(self, which: Bought, behaviour: str) -> None:
            with engine.begin() as connection:
                connection.execute(
                    update(payment_methods)
                    .where(payment_methods.c.id == which.payment_method_id)
                    .values(token=f"tok_{behaviour}_{which.payment_method_id}")
                )

        # -- time and the gateway ----------------------------------------------------------

        @rule(hours=st.integers(1, 40 * 24))
        def time_passes(self, hours: int) -> None:
            clock.advance(hours=hours)

        @rule(minutes=st.integers(1, 30))
        def minutes_pass(self, minutes: int) -> None:
            clock.advance(minutes=minutes)

        @rule(down=st.booleans())
        def gateway_goes(self, down: bool) -> None:
            gateway.down = down

        # -- workers -----------------------------------------------------------------------

        @rule()
        def billing_run(self) -> None:
            summary = billing.run(uows, gateway, clock)
            for name in ("charged", "declined", "unknown", "settled", "expired"):
                if getattr(summary, name):
                    seen[f"billing run: some {name}"] += 1

        @rule()
        def janitor(self) -> None:
            billing.settle_unknown(uows, gateway, clock)

        @rule()
        def worker_dies_after_claiming(self) -> None:
            billing._claim(uows, clock, 50)

        @rule()
        def worker_dies_after_charging(self) -> None:
            work, _ = billing._claim(uows, clock, 50)
            billing_stages.charge_all(gateway, work, 1)

        @rule()
        def slow_worker_claims(self) -> None:
            work, _ = billing._claim(uows, clock, 50)
            if work:
                self.slow_workers.append(work)

        @precondition(lambda self: bool(self.slow_workers))
        @rule()
        def slow_worker_finishes(self) -> None:
            work = self.slow_workers.pop(0)
            outcomes = billing_stages.charge_all(gateway, work, 1)
            billing._record(uows, clock, work, outcomes, DunningPolicy())

        @rule()
        def janitor_settles_everything_then_ledgers_agree(self) -> None:
            gateway.down = False
            clock.advance(minutes=billing.LEASE.total_seconds() / 60 + 1)
            for _ in range(3):  # a resent charge may lose its answer once more
                if billing.settle_unknown(uows, gateway, clock, batch=1000).settled:
                    seen["janitor settled something"] += 1
            assert unsettled(engine) == 0
            assert reconcile.reconcile(uows, gateway)[1] == []

        # -- invariants --------------------------------------------------------------------

        @invariant()
        def no_period_is_charged_twice(self) -> None:
            _, invoice_rows, attempt_rows, _ = ledger_rows(engine)
            succeeded: dict[int, int] = {}
            for attempt in attempt_rows:
                if attempt.status == "succeeded":
                    succeeded[attempt.invoice_id] = succeeded.get(attempt.invoice_id, 0) + 1
            assert all(n == 1 for n in succeeded.values()), succeeded
            charged = [
                period_of(key) for key, result in gateway.charges.items() if result.succeeded
            ]
            assert len(charged) == len(set(charged)), charged
            for invoice in invoice_rows:
                assert (invoice.status == "paid") == (invoice.id in succeeded), invoice

        @invariant()
        def nothing_is_charged_after_a_turn_off_or_an_end(self) -> None:
            sub_rows, invoice_rows, attempt_rows, cancellation_rows = ledger_rows(engine)
            by_id = {row.id: row for row in sub_rows}
            for subscription_id, off in self.off.items():
                row = by_id[subscription_id]
                assert not row.auto_renew
                made = {i.id for i in invoice_rows if i.subscription_id == subscription_id}
                tried = {a.id for a in attempt_rows if a.subscription_id == subscription_id}
                assert made <= off.invoices, "an invoice was made after the turn-off"
                assert tried <= off.attempts, "a charge was attempted after the turn-off"
                if off.charging_period_end is None:
                    # Won: the service ends where it said, and nothing extends it.
                    assert "had already started" not in off.declaration
                    assert off.ends_at == row.period_end
                else:
                    # Lost cleanly: said so, and the charged period is exactly the one kept.
                    assert "had already started" in off.declaration
                    assert off.ends_at == off.charging_period_end
                    assert row.period_end <= off.ends_at
            for row in sub_rows:
                if row.status == "expired":
                    now = (
                        frozenset(i.id for i in invoice_rows if i.subscription_id == row.id),
                        frozenset(a.id for a in attempt_rows if a.subscription_id == row.id),
                    )
                    assert now == self.ended.setdefault(row.id, now), "charged after it ended"
            keys = {a.idempotency_key for a in attempt_rows}
            assert set(gateway.charges) <= keys, "the gateway holds a charge we never asked for"
            assert len(cancellation_rows) >= len(self.off)

        @invariant()
        def every_recorded_answer_is_the_gateways(self) -> None:
            _, _, attempt_rows, _ = ledger_rows(engine)
            for attempt in attempt_rows:
                theirs = gateway.charges.get(attempt.idempotency_key)
                if attempt.status in ("succeeded", "declined"):
                    assert theirs is not None, attempt
                    assert theirs.succeeded == (attempt.status == "succeeded"), attempt
                    assert theirs.amount == Money(attempt.amount_minor, attempt.currency)
                    assert theirs.gateway_ref == attempt.gateway_ref

        @invariant()
        def a_period_moves_on_only_by_paid_invoices(self) -> None:
            sub_rows, invoice_rows, _, _ = ledger_rows(engine)
            for row in sub_rows:
                paid = sorted(
                    (i.period_start, i.period_end)
                    for i in invoice_rows
                    if i.subscription_id == row.id and i.status == "paid"
                )
                first = self.first_period[row.id]
                chain = [(first.start, first.end), *paid]
                for (_, end), (start, _) in pairwise(chain):
                    assert start == end, f"paid periods of {row.id} are not contiguous: {chain}"
                assert (row.period_start, row.period_end) == chain[-1]

    run_state_machine_as_test(
        Billing,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    container.close()
    print(dict(seen))
