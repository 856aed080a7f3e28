"""When a subscription is owed a reminder (compliance C19-C21): pure date arithmetic.

A "day" here is an exact 24 hours in UTC. Each reminder has an occasion (the renewal, the
half-anniversary, the end of the trial) and a send window counted back from it. The worker
sends on its first run inside the window, so a missed day is caught up on the next run;
after the window closes it sends nothing, because a late reminder would break the rule it
exists for. Every send window lies inside the legal window with room to spare:

- Annual plans (C20): one reminder per renewal, 30 to 26 days before it (law: 25-40).
- Monthly plans (C21): one reminder every six months, 30 to 26 days before each
  half-anniversary of the start (started_at + 6, 12, 18, ... calendar months, each counted
  from started_at so that the 31st does not drift). Every second one is 30 to 26 days
  before a yearly anniversary (law: 25-40), and consecutive reminders are six calendar
  months apart, give or take the four days of the send window.
- Trials longer than 31 days (C19): one reminder 7 to 4 days before the trial ends
  (law: 3-21). While a subscription is trialing only this rule applies; shorter trials
  get no reminder.

Each reminder is keyed by its subscription and occasion, so it is queued once however
often, and by however many workers, the schedule is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fairsub.domain.periods import Term, add_months
from fairsub.domain.subscriptions import Status, Subscription

LONG_TRIAL = timedelta(days=31)  # C19 applies to trials longer than this
HALF_YEAR = 6  # months between two reminders of a monthly plan


class ReminderKind(StrEnum):
    RENEWAL = "renewal"
    TRIAL = "trial"


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Send between `earliest` and `latest` before the occasion, both inclusive."""

    earliest: timedelta
    latest: timedelta

    def contains(self, occasion: datetime, now: datetime) -> bool:
        return occasion - self.earliest <= now <= occasion - self.latest

    def occasions(self, now: datetime) -> tuple[datetime, datetime]:
        """The range of occasions whose window is open at `now`."""
        return now + self.latest, now + self.earliest


ANNUAL = SendWindow(timedelta(days=30), timedelta(days=26))
MONTHLY = SendWindow(timedelta(days=30), timedelta(days=26))
TRIAL = SendWindow(timedelta(days=7), timedelta(days=4))


@dataclass(frozen=True, slots=True)
class DueReminder:
    kind: ReminderKind
    occasion: datetime  # what the reminder is for: renewal, half-anniversary, trial end
    charge_at: datetime  # the next charge the reminder announces

    def dedupe_key(self, subscription_id: int) -> str:
        prefix = "reminder" if self.kind is ReminderKind.RENEWAL else "trial-reminder"
        return f"{prefix}:{subscription_id}:{self.occasion:%Y%m%d}"


def half_anniversary_due(started_at: datetime, now: datetime) -> datetime | None:
    """The half-anniversary (6, 12, 18... months after the start) whose window is open."""
    months = (now.year - started_at.year) * 12 + (now.month - started_at.month)
    first = max(1, months // HALF_YEAR)
    for index in range(first, first + 3):
        occasion = add_months(started_at, HALF_YEAR * index)
        if MONTHLY.contains(occasion, now):
            return occasion
    return None


def due_reminder(subscription: Subscription, now: datetime) -> DueReminder | None:
    """The reminder this subscription should get now, or None."""
    sub = subscription
    if not sub.auto_renew or sub.reseller is not None:
        return None
    if sub.status is Status.TRIALING:
        ends = sub.trial_ends_at
        if ends is None or ends - sub.started_at <= LONG_TRIAL or not TRIAL.contains(ends, now):
            return None
        return DueReminder(ReminderKind.TRIAL, ends, sub.period.end)
    if sub.status is not Status.ACTIVE:
        return None
    if sub.term is Term.YEAR:
        if not ANNUAL.contains(sub.period.end, now):
            return None
        return DueReminder(ReminderKind.RENEWAL, sub.period.end, sub.period.end)
    occasion = half_anniversary_due(sub.started_at, now)
    if occasion is None or sub.period.end <= now:
        return None
    return DueReminder(ReminderKind.RENEWAL, occasion, sub.period.end)
