"""Charge cases, "I don't recognise this charge": a reference, then an outcome by email.

A customer opens a case about one of their paid charges. If the records show the charge
was made after a committed turn-off of auto-renew (invariant 1 says that never happens),
the charge is refunded in full at once, the case says so, and an operator alert is raised
(an ERROR log line, and `fairsub cases list --alerts`). Every other case waits for support,
who refund or reject it with a note the customer is emailed. Refunds go only back to the
card that was charged (C32); nothing here ever asks for bank details or a phone call (C30).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from fairsub.domain.accounts import Account
from fairsub.domain.cancellations import Cancellation
from fairsub.domain.charge_cases import (
    CaseReason,
    CaseStatus,
    CaseSummary,
    ChargeCase,
    breached_turn_off,
)
from fairsub.domain.errors import InvalidInput, NotAllowed, NotFound
from fairsub.domain.references import new_reference
from fairsub.domain.refunding import ArrivalWindow, ArrivalWindows, Refund, RefundKind
from fairsub.domain.subscriptions import PaymentMethod, Subscription
from fairsub.services import audit, refunds
from fairsub.services.notifications import (
    CHARGE_CASE_OPENED,
    CHARGE_CASE_REFUNDED,
    CHARGE_CASE_REJECTED,
    enqueue,
)
from fairsub.services.ports import Clock, PaymentGateway, UnitOfWork, UnitOfWorkFactory
from fairsub.services.public_forms import plain

log = structlog.get_logger(__name__)

NO_SUCH_CHARGE = "There is no such charge on your account."
NOTE_LIMIT = 2000
SYSTEM = "system:cases"
STATEMENT_PATH = "/account/billing"


def parse_reason(text: str | None) -> CaseReason:
    try:
        return CaseReason((text or "").strip())
    except ValueError:
        raise InvalidInput("Choose what is wrong with this charge.") from None


def _clean_note(note: str | None) -> str:
    """The note as kept: its lines, without control characters (an escape sequence in a
    note would be run by the terminal of whoever lists the cases; PostgreSQL refuses NUL)."""
    lines = (note or "").replace("\r\n", "\n").split("\n")
    cleaned = "\n".join(plain(line) for line in lines).strip()
    if len(cleaned) > NOTE_LIMIT:
        raise InvalidInput(f"Please keep the note under {NOTE_LIMIT} characters.")
    return cleaned


def _new_reference(uow: UnitOfWork) -> str:
    """Unique across cancellations and cases, so a reference names one thing only."""
    reference = new_reference()
    while uow.cancellations.taken(reference) or uow.cases.taken(reference):
        reference = new_reference()  # pragma: no cover - 1 in 34 billion
    return reference


def card_of(
    uow: UnitOfWork, account_id: int, payment_method_id: int | None
) -> PaymentMethod | None:
    for method_id, card, _ in uow.payment_methods.for_account(account_id):
        if method_id == payment_method_id:
            return card
    return None


def _charge_facts(
    uow: UnitOfWork, charge: refunds.PaidCharge, subscription: Subscription, reference: str
) -> dict[str, Any]:
    card = card_of(uow, charge.attempt.account_id, charge.attempt.payment_method_id)
    return {
        "reference": reference,
        "product": subscription.product_name,
        "plan": subscription.plan_name,
        "amount": charge.attempt.amount.plain(),
        "invoice_number": charge.invoice.number,
        "charged_at": charge.attempt.created_at.isoformat(),
        "card": f"{card.brand} ending {card.last4}" if card else None,
        "case_path": f"/account/billing/cases/{reference}",
        "turn_off_path": f"/account/subscriptions/{subscription.id}/turn-off",
        "statement_path": STATEMENT_PATH,
    }


def _refund_facts(
    refund: Refund | None, charge: refunds.PaidCharge, now: datetime, window: ArrivalWindow
) -> dict[str, Any]:
    """What is being refunded and when it should arrive (by the window of the payment
    method that was charged). No refund means an earlier one returned the whole charge."""
    arrives_from, arrives_by = window.for_refund(now)
    return {
        "refund_amount": (refund.amount if refund else charge.attempt.amount).plain(),
        "refunded_earlier": refund is None,
        "arrives_from": arrives_from.isoformat(),
        "arrives_by": arrives_by.isoformat(),
    }


def _locked(
    uow: UnitOfWork, account_id: int, attempt_id: int
) -> tuple[refunds.PaidCharge, Subscription, Account]:
    """The charge, its subscription (row-locked, so cases, turn-offs and renewals of it
    queue up behind each other) and its owner; NotFound for anyone else's."""
    charge = refunds.charge_by_id(uow, account_id, attempt_id)
    if charge is None:
        raise NotFound(NO_SUCH_CHARGE)
    subscription = uow.subscriptions.get(account_id, charge.attempt.subscription_id, lock=True)
    account = uow.accounts.get(account_id)
    if subscription is None or account is None:  # pragma: no cover - a charge has both
        raise NotFound(NO_SUCH_CHARGE)
    return charge, subscription, account


def open_case(
    uows: UnitOfWorkFactory,
    gateway: PaymentGateway,
    clock: Clock,
    *,
    account_id: int,
    charge_attempt_id: int,
    reason: CaseReason | str,
    note: str | None = None,
    channel: str = "portal",
    arrival: ArrivalWindows,
) -> ChargeCase:
    """Open a case about one of the customer's paid charges. Asking again about a charge
    whose case is open (or that was refunded) returns that case; nothing is sent twice.
    `arrival`: the refund policy's windows, for a charge refunded at once."""
    chosen = reason if isinstance(reason, CaseReason) else parse_reason(reason)
    text = _clean_note(note)
    actor = f"customer:{account_id}"
    refund: Refund | None = None
    with uows().write() as uow:
        charge, subscription, account = _locked(uow, account_id, charge_attempt_id)
        standing = [
            c
            for c in uow.cases.for_charge(charge.attempt.id)
            if c.status in (CaseStatus.OPEN, CaseStatus.REFUNDED)
        ]
        if standing:
            return standing[-1]
        now = clock.now()
        case = uow.cases.add(
            reference=_new_reference(uow),
            account_id=account_id,
            charge_attempt_id=charge.attempt.id,
            reason=chosen,
            note=text,
            opened_at=now,
        )
        audit.record(
            uow,
            actor=actor,
            channel=channel,
            action=f"{channel}:charge_case:opened",
            subject=f"charge_case:{case.id}",
            account_id=account_id,
            at=now,
            after={
                "reference": case.reference,
                "charge": charge.attempt.idempotency_key,
                "reason": chosen.value,
            },
        )
        facts = _charge_facts(uow, charge, subscription, case.reference)
        facts.update(reason=case.reason_text, note=case.note)
        breached = breached_turn_off(
            subscription_id=subscription.id,
            period_start=charge.invoice.period_start,
            charged_at=charge.attempt.created_at,
            turn_offs=uow.cases.turn_offs(subscription.id),
        )
        if breached is None:
            enqueue(
                uow,
                CHARGE_CASE_OPENED,
                account,
                now,
                dedupe_key=f"{CHARGE_CASE_OPENED}:{case.reference}",
                **facts,
            )
        else:
            window = refunds.arrival_window(uow, arrival, charge.attempt)
            case, refund = _refund_breach(
                uow, case, charge, breached, account, facts, now, channel, window
            )
        uow.commit()
    if refund is not None:
        refunds.send(uows, gateway, clock, refund.id, arrival=arrival)
    return case


def _refund_breach(
    uow: UnitOfWork,
    case: ChargeCase,
    charge: refunds.PaidCharge,
    breached: Cancellation,
    account: Account,
    facts: dict[str, Any],
    now: datetime,
    channel: str,
    window: ArrivalWindow,
) -> tuple[ChargeCase, Refund | None]:
    """Invariant 1 broken: refund what is left of the charge, close the case as refunded
    with an alert, tell the customer, and log at ERROR once the transaction commits."""
    refund: Refund | None = None
    if charge.refundable.amount_minor > 0:
        refund = refunds.request(
            uow,
            charge,
            charge.refundable,
            kind=RefundKind.CHARGED_AFTER_TURN_OFF,
            reason=f"charged after turn-off {breached.reference}",
            reference=case.reference,
            actor=SYSTEM,
            channel=channel,
            now=now,
        )
    outcome = (
        f"Charged after auto-renew was turned off (reference {breached.reference}, "
        f"received {breached.received_at:%Y-%m-%d %H:%M} UTC): refunded in full "
        "automatically."
    )
    case = _close(uow, case, CaseStatus.REFUNDED, now, SYSTEM, outcome, refund, alert=True)
    audit.record(
        uow,
        actor=SYSTEM,
        channel=channel,
        action=f"{channel}:charge_case:auto_refunded",
        subject=f"charge_case:{case.id}",
        account_id=account.id,
        at=now,
        after={"refund": refund.id if refund else None, "turn_off": breached.reference},
    )
    enqueue(
        uow,
        CHARGE_CASE_REFUNDED,
        account,
        now,
        dedupe_key=f"{CHARGE_CASE_REFUNDED}:{case.reference}",
        automatic=True,
        turn_off_reference=breached.reference,
        turn_off_received_at=breached.received_at.isoformat(),
        resolution_note=None,
        **facts,
        **_refund_facts(refund, charge, now, window),
    )
    alert = {
        "case_id": case.id,
        "reference": case.reference,
        "account_id": account.id,
        "subscription_id": charge.attempt.subscription_id,
        "charge_attempt_id": charge.attempt.id,
        "charge_key": charge.attempt.idempotency_key,
        "amount": charge.attempt.amount.plain(),
        "turn_off_reference": breached.reference,
        "refund_id": refund.id if refund else None,
    }
    uow.after_commit(lambda: log.error("charge_after_turn_off", **alert))
    return case, refund


def _close(
    uow: UnitOfWork,
    case: ChargeCase,
    status: CaseStatus,
    now: datetime,
    by: str,
    note: str,
    refund: Refund | None,
    *,
    alert: bool = False,
) -> ChargeCase:
    refund_id = refund.id if refund else None
    if not uow.cases.resolve(
        case.id, status=status, at=now, by=by, note=note, refund_id=refund_id, alert=alert
    ):
        raise NotAllowed(f"Case {case.reference} was resolved by someone else; nothing changed.")
    closed = uow.cases.get(case.id)
    assert closed is not None
    return closed


def resolve(
    uows: UnitOfWorkFactory,
    gateway: PaymentGateway,
    clock: Clock,
    case_id: int,
    *,
    refund: bool,
    note: str,
    actor: str,
    channel: str = "cli",
    arrival: ArrivalWindows,
) -> ChargeCase:
    """Support's decision on an open case: refund what is left of the charge, or reject
    it. Either way the customer is emailed the outcome and the note. Once only.
    `arrival`: the refund policy's windows."""
    text = _clean_note(note)
    if not text:
        raise InvalidInput("Give a note: it is the reason the customer is sent.")
    sent: Refund | None = None
    with uows().write() as uow:
        case = uow.cases.get(case_id)
        if case is None:
            raise NotFound(f"There is no case {case_id}.")
        if not case.is_open:
            when = f"{case.resolved_at:%Y-%m-%d %H:%M} UTC" if case.resolved_at else "before"
            raise NotAllowed(
                f"Case {case_id} ({case.reference}) is already {case.status.value} "
                f"({when}, by {case.resolved_by}); nothing changed."
            )
        charge, subscription, account = _locked(uow, case.account_id, case.charge_attempt_id)
        now = clock.now()
        if refund:
            if charge.refundable.amount_minor <= 0:
                raise NotAllowed(
                    f"Nothing is left to refund on the charge of case {case_id} "
                    f"({case.reference}): it was refunded already. Reject it with a note "
                    "saying so."
                )
            sent = refunds.request(
                uow,
                charge,
                charge.refundable,
                kind=RefundKind.CASE,
                reason=f"case {case.reference}: {text}",
                reference=case.reference,
                actor=actor,
                channel=channel,
                now=now,
            )
        status = CaseStatus.REFUNDED if refund else CaseStatus.REJECTED
        closed = _close(uow, case, status, now, actor, text, sent)
        audit.record(
            uow,
            actor=actor,
            channel=channel,
            action=f"{channel}:charge_case:{status.value}",
            subject=f"charge_case:{case.id}",
            account_id=case.account_id,
            at=now,
            before={"status": case.status.value},
            after={"status": status.value, "refund": sent.id if sent else None},
            reason=text,
        )
        facts = _charge_facts(uow, charge, subscription, case.reference)
        facts.update(reason=case.reason_text, note=case.note, resolution_note=text)
        if refund:
            enqueue(
                uow,
                CHARGE_CASE_REFUNDED,
                account,
                now,
                dedupe_key=f"{CHARGE_CASE_REFUNDED}:{case.reference}",
                automatic=False,
                turn_off_reference=None,
                turn_off_received_at=None,
                **facts,
                **_refund_facts(
                    sent, charge, now, refunds.arrival_window(uow, arrival, charge.attempt)
                ),
            )
        else:
            enqueue(
                uow,
                CHARGE_CASE_REJECTED,
                account,
                now,
                dedupe_key=f"{CHARGE_CASE_REJECTED}:{case.reference}",
                **facts,
            )
        uow.commit()
    if sent is not None:
        refunds.send(uows, gateway, clock, sent.id, arrival=arrival)
    return closed


def list_cases(
    uow: UnitOfWork, *, status: CaseStatus | None = None, alerts_only: bool = False
) -> list[CaseSummary]:
    """Cases for support, newest first: by status, or only those that raised an alert."""
    with uow.read():
        return uow.cases.summaries(status=status, alerts_only=alerts_only)
