"""Charge cases as the customer reads them: the charge on the form, their cases on the
statement, one case's page. Read-only; the decisions are in services.cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fairsub.domain.charge_cases import CaseStatus, CaseSummary, ChargeCase
from fairsub.domain.errors import InvalidInput, NotFound
from fairsub.domain.money import Money
from fairsub.domain.periods import Period
from fairsub.domain.references import normalize_reference
from fairsub.domain.refunding import Refund
from fairsub.domain.subscriptions import PaymentMethod
from fairsub.services import refunds
from fairsub.services.cases import NO_SUCH_CHARGE, card_of
from fairsub.services.ports import UnitOfWork

NO_SUCH_CASE = "There is no case with that reference on your account."


@dataclass(frozen=True, slots=True)
class ChargeInQuestion:
    """A paid charge as the customer sees it on the form, and any case already about it."""

    attempt_id: int
    invoice_number: int
    product: str
    plan: str
    period: Period
    charged_at: datetime
    amount: Money
    card: PaymentMethod | None
    current_case: ChargeCase | None


@dataclass(frozen=True, slots=True)
class CaseView:
    summary: CaseSummary
    refund: Refund | None

    @property
    def case(self) -> ChargeCase:
        return self.summary.case


@dataclass(frozen=True, slots=True)
class CustomerCases:
    """A customer's cases, newest first, for their statement."""

    cases: list[CaseSummary]

    @property
    def open(self) -> list[CaseSummary]:
        return [c for c in self.cases if c.case.is_open]

    def latest_for(self, attempt_id: int | None) -> ChargeCase | None:
        return next((c.case for c in self.cases if c.case.charge_attempt_id == attempt_id), None)


def customer_cases(uow: UnitOfWork, account_id: int) -> CustomerCases:
    with uow.read():
        return CustomerCases(uow.cases.summaries(account_id=account_id))


def charge_in_question(uow: UnitOfWork, account_id: int, attempt_id: int) -> ChargeInQuestion:
    """One of the customer's paid charges, for the form; NotFound for anyone else's."""
    with uow.read():
        charge = refunds.charge_by_id(uow, account_id, attempt_id)
        if charge is None:
            raise NotFound(NO_SUCH_CHARGE)
        subscription = uow.subscriptions.get(account_id, charge.attempt.subscription_id)
        if subscription is None:  # pragma: no cover - a charge has its subscription
            raise NotFound(NO_SUCH_CHARGE)
        cases = uow.cases.for_charge(attempt_id)
        standing = [c for c in cases if c.status is not CaseStatus.REJECTED]
        return ChargeInQuestion(
            attempt_id=charge.attempt.id,
            invoice_number=charge.invoice.number,
            product=subscription.product_name,
            plan=subscription.plan_name,
            period=Period(charge.invoice.period_start, charge.invoice.period_end),
            charged_at=charge.attempt.created_at,
            amount=charge.attempt.amount,
            card=card_of(uow, account_id, charge.attempt.payment_method_id),
            current_case=standing[-1] if standing else None,
        )


def get_case(uow: UnitOfWork, account_id: int, reference: str) -> CaseView:
    """The customer's own case by its reference; NotFound for anyone else's."""
    try:
        reference = normalize_reference(reference)
    except InvalidInput:
        raise NotFound(NO_SUCH_CASE) from None
    with uow.read():
        found = uow.cases.summaries(account_id=account_id, reference=reference)
        if not found:
            raise NotFound(NO_SUCH_CASE)
        refund_id = found[0].case.refund_id
        refund = uow.refunds.get(refund_id) if refund_id is not None else None
    return CaseView(found[0], refund)
