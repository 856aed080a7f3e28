"""Emails are outbox rows written in the same transaction as the change they announce.

The relay (adapters.email.relay) renders and sends them after commit, and retries.
Payloads hold facts and paths only; the relay adds the site's address and the words.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fairsub.domain.accounts import Account
from fairsub.services.ports import OutboxMessage, UnitOfWork

AUTO_RENEW_OFF = "auto_renew_off"
AUTO_RENEW_ON = "auto_renew_on"
PASSWORD_RESET = "password_reset"  # noqa: S105 - an email kind
RENEWAL_CHARGED = "renewal_charged"
PAYMENT_FAILED = "payment_failed"
PURCHASE_CONFIRMED = "purchase_confirmed"
PURCHASE_FAILED = "purchase_failed"
RENEWAL_REMINDER = "renewal_reminder"
TRIAL_REMINDER = "trial_reminder"
PRICE_INCREASE_NOTICE = "price_increase_notice"
REFUND_CONFIRMED = "refund_confirmed"  # cancelled now, money on its way back
CHARGE_CASE_OPENED = "charge_case_opened"
CHARGE_CASE_REFUNDED = "charge_case_refunded"
CHARGE_CASE_REJECTED = "charge_case_rejected"
LAST_RENEWAL_DECLINED = "last_renewal_declined"  # lost race to a turn-off, then declined
WITHDRAWAL_RECEIVED = "withdrawal_received"  # C25: the 14-day withdrawal, acknowledged
SUBSCRIPTION_ENDED = "subscription_ended"  # dunning over: ended unpaid

KINDS = frozenset(
    {
        AUTO_RENEW_OFF,
        AUTO_RENEW_ON,
        PASSWORD_RESET,
        RENEWAL_CHARGED,
        PAYMENT_FAILED,
        PURCHASE_CONFIRMED,
        PURCHASE_FAILED,
        RENEWAL_REMINDER,
        TRIAL_REMINDER,
        PRICE_INCREASE_NOTICE,
        REFUND_CONFIRMED,
        CHARGE_CASE_OPENED,
        CHARGE_CASE_REFUNDED,
        CHARGE_CASE_REJECTED,
        LAST_RENEWAL_DECLINED,
        WITHDRAWAL_RECEIVED,
        SUBSCRIPTION_ENDED,
    }
)


def message(kind: str, account: Account, *, dedupe_key: str, **facts: Any) -> OutboxMessage:
    """One email to the account holder, ready for the outbox."""
    if kind not in KINDS:
        raise ValueError(f"unknown email kind {kind!r}")
    payload = {
        "name": account.name,
        "locale": account.locale,
        "timezone": account.timezone,
        **facts,
    }
    return OutboxMessage(kind, account.email, account.id, payload, dedupe_key)


def enqueue(
    uow: UnitOfWork,
    kind: str,
    account: Account,
    at: datetime,
    *,
    dedupe_key: str,
    **facts: Any,
) -> bool:
    """Queue one email to the account holder; a repeated dedupe key queues nothing."""
    return uow.outbox.add(message(kind, account, dedupe_key=dedupe_key, **facts), at)
