"""What a customer is told before buying a plan (C15): price, frequency, renewal, trial,
the last day to cancel without charge, how to cancel, and the refund policy.

Pure: computed from the catalog and a moment. The portal shows it; the checkout keeps its
plain-text form with the consent record (C17).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fairsub.domain.catalog import Catalog, Plan, Product, Region
from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money
from fairsub.domain.periods import Term, add_months

TERMS_VERSION = "2026-11-01"
HOW_TO_CANCEL = (
    "Online, at any time: My subscriptions → Turn off auto-renew → confirm. Two clicks, "
    "no phone call, no form to fill in. You keep the service until the paid period ends."
)
REFUND_DAYS = {Term.YEAR: 60, Term.MONTH: 14}
WITHDRAWAL_DAYS = 14
# Where a consumer has the statutory 14-day right to withdraw: the EU, the EEA and the UK.
WITHDRAWAL_REGIONS = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
        "IS", "LI", "NO", "GB",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Offer:
    """Everything the customer is told before they agree, computed at one moment."""

    vendor: str
    product: Product
    plan: Plan
    region: Region
    price: Money
    at: datetime
    trial_ends_at: datetime | None  # with auto-renew only; one term is charged at once
    first_charge_at: datetime  # with auto-renew
    renews_at: datetime  # with auto-renew: the charge after the first
    one_term_ends_at: datetime  # bought as one term only: when it ends

    @property
    def term(self) -> Term:
        return self.plan.term

    @property
    def trial_days(self) -> int:
        return self.plan.trial_days

    @property
    def last_free_day(self) -> datetime | None:
        """The last day to cancel a trial without being charged: the day before the
        first charge. None when the first charge is today."""
        return self.trial_ends_at - timedelta(days=1) if self.trial_ends_at else None

    @property
    def refund_days(self) -> int:
        return REFUND_DAYS[self.term]

    @property
    def withdrawal_right(self) -> bool:
        return self.region.code in WITHDRAWAL_REGIONS

    @property
    def how_to_cancel(self) -> str:
        return HOW_TO_CANCEL

    def disclosure(self, auto_renew: bool) -> str:
        """The terms as shown, in plain text with UTC dates, kept with the consent (C17)."""
        term, price = self.term.value, self.price.plain()
        lines = [
            f"{self.product.name} ({self.plan.name}) from {self.vendor}, "
            f"region {self.region.code}. Terms version {TERMS_VERSION}.",
            f"Price: {price} per {term}.",
        ]
        if auto_renew:
            if self.trial_ends_at is not None:
                lines.append(
                    f"Free trial: {self.trial_days} days, until {_utc(self.trial_ends_at)}; "
                    f"after it {price} per {term}. Nothing is charged today."
                )
            else:
                lines.append(f"Charged today: {price}.")
            lines.append(
                f"Renews automatically every {term} at {price} until cancelled. First charge: "
                f"{_utc(self.first_charge_at)}; the next on {_utc(self.renews_at)}."
            )
            if self.last_free_day is not None:
                lines.append(
                    f"Last day to cancel without charge: {self.last_free_day:%Y-%m-%d} (UTC)."
                )
            else:
                lines.append(
                    "Cancel any time; you are charged today. Cancel before "
                    f"{_utc(self.renews_at)} and nothing more is charged."
                )
        else:
            lines.append(
                f"One {term} only, charged today: {price}. It does not renew; "
                f"it ends on {_utc(self.one_term_ends_at)}."
            )
        lines.append(f"How to cancel: {HOW_TO_CANCEL}")
        refund = f"Refund: in full if asked within {self.refund_days} days of buying" + (
            " or of any renewal." if self.term is Term.YEAR else "."
        )
        if self.withdrawal_right:
            refund += f" Right of withdrawal: {WITHDRAWAL_DAYS} days from purchase."
        lines.append(refund)
        return "\n".join(lines)


def _utc(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def offer(catalog: Catalog, plan_code: str, region_code: str, now: datetime) -> Offer:
    """What buying this plan in this region means, if bought now."""
    plan = catalog.plan(plan_code)
    region = catalog.regions.get(region_code)
    if region is None:
        raise InvalidInput(f"We do not sell in region {region_code!r}.")
    price = plan.price_in(region.code)
    start = now.replace(microsecond=0)
    trial_ends_at = start + timedelta(days=plan.trial_days) if plan.trial_days else None
    first = trial_ends_at or start
    return Offer(
        vendor=catalog.vendor,
        product=catalog.products[plan.product_code],
        plan=plan,
        region=region,
        price=price,
        at=start,
        trial_ends_at=trial_ends_at,
        first_charge_at=first,
        renews_at=add_months(first, plan.term.months),
        one_term_ends_at=add_months(start, plan.term.months),
    )


def price_list(catalog: Catalog, region_code: str) -> list[tuple[Product, list[Plan]]]:
    """Each product with its plans sold in the region, in catalog order."""
    if region_code not in catalog.regions:
        raise InvalidInput(f"We do not sell in region {region_code!r}.")
    listed = []
    for product in catalog.products.values():
        plans = [
            p
            for p in catalog.plans.values()
            if p.product_code == product.code and region_code in p.prices
        ]
        if plans:
            listed.append((product, plans))
    return listed
