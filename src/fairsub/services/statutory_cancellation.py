"""The German cancellation button (§ 312k BGB; C2-C4): "Verträge hier kündigen", then
"jetzt kündigen", without signing in.

The form declares the kind of termination (ordinary, or extraordinary with its reason),
who is cancelling (name and the account's email), which contract (a receipt number or an
FS- reference), the wished end (the earliest possible, or a later date) and so where the
confirmation goes: only ever to the account's own address.

It matches when the email is an account's and the contract is one of that account's
direct subscriptions that is still running. Then one transaction turns auto-renew off
exactly as the portal does (`subscriptions.record_turn_off`: the cancellation with its
reference, the "auto-renew is off" email and the audit entry), with the declaration in
the customer's words, and records the termination itself as one more audit entry. An
ordinary termination ends the contract at the end of the paid period: that is the
earliest possible end, and a later wished date is kept in the record but not scheduled.
An extraordinary termination stops every future charge at once, like an ordinary one,
and waits for support, who answer by email about ending it earlier: support find it
under the audit action "public-form:subscription:extraordinary_termination" (and an
operator log line). One that arrives after auto-renew was already off is still recorded
and confirmed, once per cancellation in force.

Like the withdrawal function (and sharing its parts, services.public_forms), the caller
learns nothing: matched or not (no account, someone else's contract, bought through a
reseller, ended, already cancelled) the answer is the same `CancellationReceipt`, what was
declared and when it arrived. A repeated declaration changes nothing and sends no email.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from fairsub.domain.accounts import Account
from fairsub.domain.errors import InvalidInput
from fairsub.domain.subscriptions import Subscription
from fairsub.services import audit, public_forms, subscriptions
from fairsub.services.ports import Clock, UnitOfWork, UnitOfWorkFactory
from fairsub.services.public_forms import Identity

log = structlog.get_logger(__name__)

FORM = "cancellation"  # the throttle's namespace
CHANNEL = "public-form"
ACTOR = "customer"
REASON_LIMIT = 2000
LATEST_WISH = timedelta(days=3653)  # ten years: anything later is a typing mistake
_GERMAN_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")

KIND_MISSING = "Choose an ordinary or an extraordinary termination."
REASON_MISSING = "An extraordinary termination needs its reason. Please say why."
REASON_TOO_LONG = f"Please keep the reason under {REASON_LIMIT} characters."
END_MISSING = "Choose the earliest possible end or a later date."
DATE_INVALID = (
    "Enter the later end date as a date from today on, such as 31.03.2027, "
    "or choose the earliest possible end."
)
TOO_MANY = (
    "Too many cancellations from here or for this email address. Please try again in an hour."
)


class Termination(StrEnum):
    ORDINARY = "ordinary"  # ordentliche Kündigung: at the end of the paid period
    EXTRAORDINARY = "extraordinary"  # außerordentliche Kündigung: for a reason, earlier


@dataclass(frozen=True, slots=True)
class Declaration:
    """What the form declared, cleaned; nothing here was looked up."""

    kind: Termination
    identity: Identity
    reason: str
    wished_end: date | None  # None: the earliest possible end

    @property
    def extraordinary(self) -> bool:
        return self.kind is Termination.EXTRAORDINARY


@dataclass(frozen=True, slots=True)
class CancellationReceipt:
    """All the caller may be told: what was declared and when it arrived. Deliberately
    nothing about whether it matched a contract."""

    declaration: Declaration
    received_at: datetime


def declare(
    *,
    kind: str,
    name: str,
    email: str,
    contract: str,
    end: str,
    end_date: str,
    reason: str,
    today: date,
) -> Declaration:
    """The form, checked for shape only; InvalidInput says what to correct."""
    try:
        termination = Termination(kind.strip() or Termination.ORDINARY)
    except ValueError:
        raise InvalidInput(KIND_MISSING) from None
    identity = public_forms.identify(email, name, contract)
    reason = public_forms.plain(reason)
    if len(reason) > REASON_LIMIT:
        raise InvalidInput(REASON_TOO_LONG, field="reason")
    if termination is Termination.EXTRAORDINARY and not reason:
        raise InvalidInput(REASON_MISSING, field="reason")
    if termination is Termination.ORDINARY:
        reason = ""  # the law asks for none: a reason typed before switching is not kept
    end = end.strip() or "earliest"
    if end not in ("earliest", "date"):
        raise InvalidInput(END_MISSING)
    wished = _wished_date(end_date, today) if end == "date" else None
    return Declaration(termination, identity, reason, wished)


def _wished_date(text: str, today: date) -> date:
    """ISO (what a date field sends) or German (31.03.2027, where a browser shows a text
    box instead), from today to ten years ahead."""
    text = text.strip()
    german = _GERMAN_DATE.fullmatch(text)
    try:
        if german:
            day, month, year = (int(part) for part in german.groups())
            wished = date(year, month, day)
        else:
            wished = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(DATE_INVALID, field="end_date") from None
    if not today <= wished <= today + LATEST_WISH:
        raise InvalidInput(DATE_INVALID, field="end_date")
    return wished


def cancel(
    uows: UnitOfWorkFactory,
    clock: Clock,
    *,
    kind: str,
    name: str,
    email: str,
    contract: str,
    end: str = "",
    end_date: str = "",
    reason: str = "",
    address: str,
    user_agent: str,
) -> CancellationReceipt:
    """Receive a termination. Raises InvalidInput for a form to correct and
    TooManyAttempts when throttled; otherwise answers the same whatever is on file."""
    now = clock.now()
    declaration = declare(
        kind=kind,
        name=name,
        email=email,
        contract=contract,
        end=end,
        end_date=end_date,
        reason=reason,
        today=now.date(),
    )
    client = {"address": address, "user_agent": user_agent[:200]}
    with uows().write() as uow:
        public_forms.throttle(uow, FORM, declaration.identity.email, address, now, TOO_MANY)
        found = public_forms.find(uow, declaration.identity)
        if found is not None:
            _terminate(uow, *found, declaration, now, client)
        uow.commit()
    return CancellationReceipt(declaration, now)


def _terminate(
    uow: UnitOfWork,
    account: Account,
    subscription: Subscription,
    declaration: Declaration,
    now: datetime,
    client: dict[str, str],
) -> None:
    if subscription.reseller is not None or not subscription.is_entitled(now):
        return  # cancelled where it was bought, or over: nothing here to end
    declared = _declared(declaration, subscription)
    # One email per cancellation in force and kind: a repeat finds its key taken.
    email_key = "extraordinary" if declaration.extraordinary else "auto_renew_off"
    facts: dict[str, Any] = {
        "extraordinary": declaration.extraordinary,
        "wished_end": _in_zone(declaration.wished_end, account.timezone),
    }
    if subscription.auto_renew:
        cancellation = subscriptions.record_turn_off(
            uow,
            account,
            subscription,
            now,
            actor=ACTOR,
            channel=CHANNEL,
            reason=declaration.reason or None,
            declared=declared,
            email_key=email_key,
            email_facts=facts,
        )
        if cancellation is None:  # pragma: no cover - auto-renew was on, under the lock
            return
    else:
        # Off already (in the portal, or by this form before). An ordinary termination
        # adds nothing to the cancellation in force; an extraordinary one still asks
        # support for an earlier end, and is confirmed and recorded once.
        cancellation = uow.cancellations.open_for(subscription.id)
        if cancellation is None or not declaration.extraordinary:
            return
        if not subscriptions.announce_turn_off(
            uow,
            account,
            subscription,
            cancellation,
            now,
            email_key=email_key,
            declaration=declared,
            **facts,
        ):
            return
    audit.record(
        uow,
        actor=ACTOR,
        channel=CHANNEL,
        action=f"{CHANNEL}:subscription:{declaration.kind.value}_termination",
        subject=f"subscription:{subscription.id}",
        account_id=account.id,
        at=now,
        after={
            "reference": cancellation.reference,
            "termination": declaration.kind.value,
            "wished_end": declaration.wished_end.isoformat() if declaration.wished_end else None,
            "ends_at": cancellation.ends_at.isoformat(),
            "name_given": declaration.identity.name,
            "contract_given": declaration.identity.contract,
            **client,
        },
        reason=declaration.reason or None,
    )
    if declaration.extraordinary:
        reference = cancellation.reference
        uow.after_commit(
            lambda: log.warning(
                "extraordinary_termination_received", reference=reference, account_id=account.id
            )
        )


def _declared(declaration: Declaration, subscription: Subscription) -> str:
    """The declaration as kept with the cancellation (and shown on its page)."""
    identity = declaration.identity
    contract = (
        f"the contract for {subscription.product_name} ({subscription.plan_name}), "
        f"{identity.contract}"
    )
    if declaration.extraordinary:
        said = (
            f"Extraordinary termination (außerordentliche Kündigung) of {contract}, "
            f"for this reason: {declaration.reason}"
        )
        said += "" if declaration.reason.endswith((".", "!", "?")) else "."
    else:
        said = f"Ordinary termination (ordentliche Kündigung) of {contract}."
    if declaration.wished_end is None:
        said += " Wished end: the earliest possible."
    else:
        said += f" Wished end: {declaration.wished_end:%Y-%m-%d}."
        if not declaration.extraordinary:
            said += (
                " It ends at the end of the paid period, the earliest possible end,"
                " whatever date is wished."
            )
    return f"{said} Name: {identity.name}. Email: {identity.email}."


def _in_zone(day: date | None, timezone: str) -> str | None:
    """A wished date as the start of that day where the customer lives, so the email
    shows the very date they typed."""
    if day is None:
        return None
    return datetime.combine(day, time(), ZoneInfo(timezone)).astimezone(UTC).isoformat()
