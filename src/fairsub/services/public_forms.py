"""What the forms anyone may send without signing in have in common: the withdrawal
function (C24) and the German cancellation button (C2-C4).

Who the sender says they are and which contract they mean, checked for shape only; a
throttle per typed email and per client address; and the lookup that finds the contract on
file, or nothing, at the same cost either way. The forms themselves answer the same
whatever matched, so none of this may ever show in an answer.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from fairsub.domain.accounts import Account, normalize_email
from fairsub.domain.errors import InvalidInput, TooManyAttempts
from fairsub.domain.references import is_valid_reference, normalize_reference
from fairsub.domain.subscriptions import Subscription
from fairsub.services.ports import UnitOfWork

THROTTLE_WINDOW = timedelta(hours=1)
MAX_PER_EMAIL = 5
MAX_PER_ADDRESS = 20
_NO_ACCOUNT = 0  # ids start at 1: lookups with it find nothing, at the same cost
_RECEIPT_NUMBER = re.compile(r"[^\d]{0,24}?(\d{1,12})")

NAME_MISSING = "Enter your name."
EMAIL_MISSING = "Enter the email address of your account."
CONTRACT_MISSING = (
    "Enter the receipt number from your purchase email (for example 1042), "
    "or a reference such as FS-7K3M-Q9TZ."
)


@dataclass(frozen=True, slots=True)
class Identity:
    """The sender and the contract as typed, cleaned: nothing here was looked up."""

    email: str
    name: str
    receipt_number: int | None
    reference: str | None

    @property
    def contract(self) -> str:
        return f"reference {self.reference}" if self.reference else f"receipt {self.receipt_number}"


def plain(text: str) -> str:
    """Free text as kept: one space between words, no control characters (PostgreSQL
    refuses NUL in text, and none belongs in a name or a reason)."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def identify(email: str, name: str, contract: str) -> Identity:
    """The form's name, email and contract (a receipt number such as "receipt 1042" or an
    FS- reference), or InvalidInput with what to correct."""
    name = plain(name)
    if not name or len(name) > 200:
        raise InvalidInput(NAME_MISSING, field="name")
    try:
        email = normalize_email(email)
    except InvalidInput:
        raise InvalidInput(EMAIL_MISSING, field="email") from None
    contract = contract.strip()
    number = None
    reference = normalize_reference(contract) if is_valid_reference(contract) else None
    if reference is None:
        found = _RECEIPT_NUMBER.fullmatch(contract)
        if found is None or int(found.group(1)) == 0:
            raise InvalidInput(CONTRACT_MISSING, field="contract")
        number = int(found.group(1))
    return Identity(email, name, number, reference)


def _throttle_keys(form: str, email: str, address: str) -> tuple[str, str]:
    """Rows in the sign-in attempts table, namespaced per form so they never count against
    signing in (or against the other form); the typed email is kept only as a hash (it may
    be nobody's)."""
    digest = hashlib.sha256(email.encode()).hexdigest()
    return f"{form}:{digest}", f"{form}:{address}"[:64]


def throttle(
    uow: UnitOfWork, form: str, email: str, address: str, now: datetime, message: str
) -> None:
    """Count this request, or raise TooManyAttempts(message) when the typed email or the
    client address sent too many to this form within the window."""
    by_email, by_address = _throttle_keys(form, email, address)
    since = now - THROTTLE_WINDOW
    if (
        uow.sign_in_attempts.failures_for_email(by_email, since) >= MAX_PER_EMAIL
        or uow.sign_in_attempts.failures_for_address(by_address, since) >= MAX_PER_ADDRESS
    ):
        raise TooManyAttempts(message, int(THROTTLE_WINDOW.total_seconds()))
    uow.sign_in_attempts.record(by_email, by_address, now, succeeded=False)


def find(uow: UnitOfWork, identity: Identity) -> tuple[Account, Subscription] | None:
    """The account's subscription the contract names, locked. An unknown email runs the
    same lookups against no account, so both answers take about as long."""
    on_file = uow.accounts.by_email(identity.email)
    account_id = on_file[0].id if on_file else _NO_ACCOUNT
    subscription_id = None
    if identity.reference is not None:
        cancellation = uow.cancellations.by_reference(account_id, identity.reference)
        subscription_id = cancellation.subscription_id if cancellation else None
    else:
        for invoice, _ in uow.billing.statement(account_id):
            if invoice.number == identity.receipt_number:
                subscription_id = invoice.subscription_id
    subscription = (
        uow.subscriptions.get(account_id, subscription_id, lock=True)
        if subscription_id is not None
        else None
    )
    if on_file is None or subscription is None:
        return None
    return on_file[0], subscription
