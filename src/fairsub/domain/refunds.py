"""The refund policy: what a charge gets back, until when, and why, in plain words.

The operator writes ordered rules (the `[refunds]` section of the catalog TOML, parsed by
`domain.refund_rules`). For a charge, the first rule that matches its region, plan term and
kind (first purchase or renewal) and whose window still holds decides: a full refund, a
pro-rata refund of the unused whole months, or none.

Under every rule lies the statutory right of withdrawal (EU and UK, C24/C26): within 14
days of a first purchase the refund is full whatever the rules say, or proportionate to
the days used if the customer asked for an immediate start and gave the right up (C27).
The customer always gets the better of the rules and the law.

Amounts are entitlements minus what was refunded already, so a refunded charge cannot be
refunded again; they never exceed the charge and are never negative. A window holds up to
and including its deadline (charged_at + within_days, to the second). Dates in reasons are
ISO dates in UTC; the portal turns them into the reader's words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money
from fairsub.domain.offers import WITHDRAWAL_DAYS, WITHDRAWAL_REGIONS
from fairsub.domain.periods import Period, Term, add_months, require_utc
from fairsub.domain.refunding import ArrivalWindows

ANY: Literal["*"] = "*"
DAY = timedelta(days=1)


class RefundKind(StrEnum):
    FULL = "full"
    PRO_RATA = "pro_rata"
    NONE = "none"


class ChargeKind(StrEnum):
    FIRST_PURCHASE = "first_purchase"
    RENEWAL = "renewal"

    @property
    def words(self) -> str:
        return "purchase" if self is ChargeKind.FIRST_PURCHASE else "renewal"


TERM_WORDS = {Term.MONTH: "monthly", Term.YEAR: "annual"}


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of the policy. `within_days` None: the outcome holds at any time."""

    regions: frozenset[str] | Literal["*"]
    terms: frozenset[Term]
    kinds: frozenset[ChargeKind]
    outcome: RefundKind
    within_days: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.within_days is not None and self.within_days < 1:
            raise InvalidInput("A refund window is at least one day.")

    def matches(self, region: str, term: Term, kind: ChargeKind) -> bool:
        in_region = self.regions == ANY or region in self.regions
        return in_region and term in self.terms and kind in self.kinds

    def closes(self, charged_at: datetime) -> datetime | None:
        """The last moment the rule holds for a charge made then; None: it never closes."""
        return None if self.within_days is None else charged_at + self.within_days * DAY


@dataclass(frozen=True, slots=True)
class RefundPolicy:
    """Rules in order (the first that matches and holds decides), where the statutory
    withdrawal right applies, and how long refunded money takes to arrive."""

    rules: tuple[Rule, ...]
    withdrawal_regions: frozenset[str] = field(default=WITHDRAWAL_REGIONS)
    arrival: ArrivalWindows = field(default_factory=ArrivalWindows)

    def withdrawal_applies(self, region: str) -> bool:
        return region in self.withdrawal_regions

    def label(self, index: int) -> str:
        """How a rule is named in explanations: 'rule 3 (uk-renewal-pro-rata)'."""
        name = self.rules[index].name
        return f"rule {index + 1}" + (f" ({name})" if name else "")


@dataclass(frozen=True, slots=True)
class RefundDecision:
    """What the customer gets if they ask now.

    `deadline`: the last moment this decision (kind and amount) holds; None if it holds
    indefinitely. `statutory`: the law (the withdrawal right) requires at least this amount
    now, whatever the operator's rules say. `rule`: the rule that decided, if one did.
    """

    kind: RefundKind
    amount: Money
    reason: str
    deadline: datetime | None
    statutory: bool = False
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class _Charge:
    region: str
    term: Term
    kind: ChargeKind
    amount: Money
    at: datetime
    period: Period

    @property
    def on(self) -> str:
        return f"{self.at:%Y-%m-%d}"

    @property
    def event(self) -> str:
        """'your renewal on 2027-11-07'"""
        return f"your {self.kind.words} on {self.on}"


def decide(
    policy: RefundPolicy,
    *,
    region: str,
    term: Term,
    kind: ChargeKind,
    charged: Money,
    charged_at: datetime,
    period: Period,
    already_refunded: Money,
    now: datetime,
    eu_or_uk: bool,
    waived_withdrawal: bool = False,
) -> RefundDecision:
    """The refund for one charge, asked for at `now`."""
    require_utc(charged_at)
    if require_utc(now) < charged_at:
        raise InvalidInput("A refund cannot be decided before the charge was made.")
    if charged.amount_minor < 0 or already_refunded.amount_minor < 0:
        raise InvalidInput("Charges and refunds are not negative.")
    if already_refunded.currency != charged.currency:
        raise InvalidInput(f"Cannot mix {charged.currency} and {already_refunded.currency}.")
    charge = _Charge(region, term, kind, charged, charged_at, period)
    if charged.amount_minor == 0:
        return RefundDecision(RefundKind.NONE, charged, "No refund: nothing was charged.", None)
    chosen = _by_rules(policy, charge, now)
    withdrawal_closes = charged_at + WITHDRAWAL_DAYS * DAY
    if eu_or_uk and kind is ChargeKind.FIRST_PURCHASE and now <= withdrawal_closes:
        by_law = _withdrawal(charge, now, withdrawal_closes, waived_withdrawal)
        chosen = _better(chosen, by_law, withdrawal_closes)
    return _net(chosen, charge, already_refunded)


def _by_rules(policy: RefundPolicy, charge: _Charge, now: datetime) -> RefundDecision:
    closed: list[tuple[datetime, int]] = []
    for index, rule in enumerate(policy.rules):
        if not rule.matches(charge.region, charge.term, charge.kind):
            continue
        closes = rule.closes(charge.at)
        if closes is not None and now > closes:
            if rule.outcome is not RefundKind.NONE:
                closed.append((closes, index))
            continue
        label = policy.label(index)
        if rule.outcome is RefundKind.FULL:
            return _full(charge, rule, closes, label)
        if rule.outcome is RefundKind.PRO_RATA:
            return _pro_rata(charge, now, closes, label)
        reason = _no_refund_words(policy, charge, closed)
        return RefundDecision(RefundKind.NONE, _zero(charge), reason, None, rule=label)
    reason = _no_refund_words(policy, charge, closed)
    return RefundDecision(RefundKind.NONE, _zero(charge), reason, None)


def _no_refund_words(
    policy: RefundPolicy, charge: _Charge, closed: list[tuple[datetime, int]]
) -> str:
    """Why not: the refund window that closed last, if there was one."""
    if closed:
        last, index = max(closed)
        within = policy.rules[index].within_days
        return (
            f"No refund: the {within}-day refund window after {charge.event} "
            f"closed on {last:%Y-%m-%d}."
        )
    return (
        f"No refund: the refund policy gives none for the {charge.kind.words} "
        f"of a {TERM_WORDS[charge.term]} plan ({charge.event})."
    )


def _full(charge: _Charge, rule: Rule, closes: datetime | None, label: str) -> RefundDecision:
    if rule.within_days is None:
        reason = f"Full refund: {charge.event} is refunded in full at any time."
    else:
        reason = f"Full refund: you are within {rule.within_days} days of {charge.event}."
    return RefundDecision(RefundKind.FULL, charge.amount, reason, closes, rule=label)


def _pro_rata(
    charge: _Charge, now: datetime, closes: datetime | None, label: str | None
) -> RefundDecision:
    """The unused whole calendar months of the period, as a share of the charge, rounded
    down. A month counts as unused while it has not begun (up to its first moment)."""
    months = months_in(charge.period)
    starts = [add_months(charge.period.start, k) for k in range(months)]
    unused = [start for start in starts if start >= now]
    if not unused:
        reason = (
            f"No refund: no whole month of the period paid for by {charge.event} is left unused."
        )
        return RefundDecision(RefundKind.NONE, _zero(charge), reason, None, rule=label)
    amount = Money(charge.amount.amount_minor * len(unused) // months, charge.amount.currency)
    if amount.amount_minor == 0:
        return _rounds_to_nothing(charge, label)
    reason = (
        f"Pro-rata refund: {len(unused)} of the {months} months paid for by {charge.event} "
        f"are unused, so {len(unused)}/{months} of {charge.amount.plain()} comes back."
    )
    deadline = unused[0] if closes is None else min(unused[0], closes)
    return RefundDecision(RefundKind.PRO_RATA, amount, reason, deadline, rule=label)


def _rounds_to_nothing(charge: _Charge, label: str | None) -> RefundDecision:
    """A share of a very small charge, rounded down to the minor unit, can be zero: then
    there is no refund, and it says so (a refund of nothing is not offered)."""
    reason = (
        f"No refund: the unused share of {charge.amount.plain()} paid for by {charge.event} "
        "is less than the smallest unit of the currency."
    )
    return RefundDecision(RefundKind.NONE, _zero(charge), reason, None, rule=label)


def months_in(period: Period) -> int:
    """Whole calendar months from the period's start to its end (at least one)."""
    start, end = period.start, period.end
    months = (end.year - start.year) * 12 + end.month - start.month
    while months > 0 and add_months(start, months) > end:
        months -= 1
    return max(months, 1)


def _withdrawal(charge: _Charge, now: datetime, closes: datetime, waived: bool) -> RefundDecision:
    """The statutory floor within 14 days of a first purchase (C24, C26, C27)."""
    if not waived:
        reason = (
            f"Full refund: you are within the {WITHDRAWAL_DAYS}-day right of withdrawal "
            f"after {charge.event}."
        )
        return RefundDecision(RefundKind.FULL, charge.amount, reason, closes, statutory=True)
    total = max(1, _days_begun(charge.period.end - charge.period.start))
    used = min(total, max(0, _days_begun(now - charge.period.start)))
    amount = Money(charge.amount.amount_minor * (total - used) // total, charge.amount.currency)
    if amount.amount_minor == 0:
        return _rounds_to_nothing(charge, None)
    reason = (
        f"Proportionate refund: you asked for the service to start at once and gave up a "
        f"full refund on withdrawal, so you pay for the {used} of {total} days used since "
        f"{charge.event}."
    )
    holds_until = min(charge.period.start + used * DAY, closes)
    return RefundDecision(RefundKind.PRO_RATA, amount, reason, holds_until, statutory=True)


def _days_begun(span: timedelta) -> int:
    """Days begun: a day and a minute are two days."""
    return -(-span // DAY)


def _later(a: datetime | None, b: datetime | None) -> bool:
    """Whether deadline a is later than b (None: never ends)."""
    return b is not None and (a is None or a > b)


def _better(
    by_rule: RefundDecision, by_law: RefundDecision, withdrawal_closes: datetime
) -> RefundDecision:
    """The customer never gets less than the law gives; on a tie, the longer window."""
    if by_law.amount.amount_minor > by_rule.amount.amount_minor:
        return by_law
    if by_law.amount.amount_minor < by_rule.amount.amount_minor:
        return by_rule
    if not _later(by_rule.deadline, by_law.deadline):
        return by_law
    also = f" It is also your legal right of withdrawal until {withdrawal_closes:%Y-%m-%d}."
    return RefundDecision(
        by_rule.kind,
        by_rule.amount,
        by_rule.reason + also,
        by_rule.deadline,
        statutory=True,
        rule=by_rule.rule,
    )


def _net(decision: RefundDecision, charge: _Charge, already: Money) -> RefundDecision:
    """Take off what was refunded already: a refunded charge is not refunded twice."""
    charged = f"{charge.amount.plain()} charged on {charge.on}"
    if already.amount_minor >= charge.amount.amount_minor:
        reason = f"No refund: the {charged} has already been refunded in full."
        return RefundDecision(RefundKind.NONE, _zero(charge), reason, None)
    if already.amount_minor == 0 or decision.kind is RefundKind.NONE:
        return decision
    owed = decision.amount - already
    if owed.amount_minor <= 0:
        reason = (
            f"No further refund: {already.plain()} of the {charged} has been refunded "
            "already, which is as much as the policy gives now."
        )
        return RefundDecision(RefundKind.NONE, _zero(charge), reason, None)
    reason = f"{decision.reason} {already.plain()} of it was refunded already."
    return RefundDecision(
        decision.kind, owed, reason, decision.deadline, decision.statutory, decision.rule
    )


def _zero(charge: _Charge) -> Money:
    return Money.zero(charge.amount.currency)
