"""Renewal and trial reminders, and price-increase notices: the worker's daily step.

The schedule (domain.reminders has the exact windows and why):
- annual plans (C20): 30 to 26 days before each renewal;
- monthly plans (C21): 30 to 26 days before each half-anniversary of the start date
  (6, 12, 18, ... months after started_at), so one every six months, and every second one
  30 to 26 days before the yearly anniversary;
- trials longer than 31 days (C19): 7 to 4 days before the trial ends;
- price increases (C23, services.pricing): 30 to 8 days before the first renewal at the
  higher price. Notices go first, so a reminder queued in the same run states the price
  the subscriber was just told of.

Run it at least daily. A run that misses the first day of a window sends on the next run
while the window is open, and never after it closes. Every email carries a dedupe key
naming the subscription and the occasion, so repeated or concurrent runs queue it once.
Every reminder states (C22) the product and plan, the amount, how often it is charged,
the next charge date, a link that turns auto-renew off, and who sends it (the footer).
"""

from __future__ import annotations

from datetime import datetime

from fairsub.domain.money import Money
from fairsub.domain.pricing import price_after_changes
from fairsub.domain.reminders import ANNUAL, MONTHLY, TRIAL, DueReminder, ReminderKind, due_reminder
from fairsub.domain.subscriptions import Subscription
from fairsub.services.notifications import RENEWAL_REMINDER, TRIAL_REMINDER, enqueue
from fairsub.services.ports import Clock, UnitOfWork, UnitOfWorkFactory
from fairsub.services.pricing import FREQUENCY, send_due_price_notices


def send_due_reminders(uows: UnitOfWorkFactory, clock: Clock, *, batch: int = 500) -> int:
    """Queue every reminder and price notice due now. Returns how many were queued."""
    queued = send_due_price_notices(uows, clock, batch=batch)
    now = clock.now()
    after = 0
    while True:
        with uows().write() as uow:
            found = uow.reminders.candidates(
                renewals=ANNUAL.occasions(now),
                trial_ends=TRIAL.occasions(now),
                half_anniversaries=MONTHLY.occasions(now),
                after_id=after,
                limit=batch,
            )
            due = [(sub, r) for sub in found if (r := due_reminder(sub, now)) is not None]
            queued += _queue(uow, due, now)
            uow.commit()
        if len(found) < batch:
            return queued
        after = found[-1].id


def _queue(uow: UnitOfWork, due: list[tuple[Subscription, DueReminder]], now: datetime) -> int:
    changes = uow.pricing.changes_for([sub.id for sub, _ in due]) if due else {}
    queued = 0
    for sub, reminder in due:
        account = uow.accounts.get(sub.account_id)
        if account is None:  # pragma: no cover - a subscription has its account
            continue
        amount = price_after_changes(sub.price, changes.get(sub.id, []), reminder.charge_at)
        kind, facts = _facts(sub, reminder, amount)
        if enqueue(uow, kind, account, now, dedupe_key=reminder.dedupe_key(sub.id), **facts):
            queued += 1
    return queued


def _facts(
    sub: Subscription, reminder: DueReminder, amount: Money
) -> tuple[str, dict[str, object]]:
    facts: dict[str, object] = {
        "product": sub.product_name,
        "plan": sub.plan_name,
        "amount": amount.plain(),
        "frequency": FREQUENCY[sub.term],
        "renews_on": reminder.charge_at.isoformat(),
        "subscription_path": f"/account/subscriptions/{sub.id}",
        "turn_off_path": f"/account/subscriptions/{sub.id}/turn-off",
    }
    if reminder.kind is ReminderKind.TRIAL:
        return TRIAL_REMINDER, {**facts, "trial_ends_on": reminder.occasion.isoformat()}
    return RENEWAL_REMINDER, facts
