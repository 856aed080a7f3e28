"""Billing periods on calendar months: Jan 31 + 1 month is the last day of February."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fairsub.domain.errors import InvalidInput


class Term(StrEnum):
    MONTH = "month"
    YEAR = "year"

    @property
    def months(self) -> int:
        return 1 if self is Term.MONTH else 12


def require_utc(moment: datetime) -> datetime:
    # utcoffset(None) is None for zones like Europe/London, whose offset changes with the date.
    if moment.tzinfo is None or moment.tzinfo.utcoffset(None) != timedelta(0):
        raise InvalidInput("Times inside fairsub are timezone-aware UTC.")
    return moment


def add_months(moment: datetime, months: int) -> datetime:
    """Same day-of-month `months` later, clamped to the month's last day."""
    index = moment.month - 1 + months
    year, month0 = divmod(index, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    return moment.replace(year=year, month=month0 + 1, day=day)


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open interval [start, end) in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        require_utc(self.start)
        require_utc(self.end)
        if self.end <= self.start:
            raise InvalidInput("A period ends after it starts.")

    @classmethod
    def first(cls, anchor: datetime, term: Term) -> Period:
        return cls.nth(anchor, term, 0)

    @classmethod
    def nth(cls, anchor: datetime, term: Term, index: int) -> Period:
        """The index-th period counted from the anchor, always from the anchor so that a
        subscription started on the 31st returns to the 31st after a short month."""
        return cls(
            add_months(anchor, term.months * index),
            add_months(anchor, term.months * (index + 1)),
        )

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @classmethod
    def containing(cls, anchor: datetime, term: Term, moment: datetime) -> Period:
        """The period, counted from the anchor, that contains `moment` (>= anchor)."""
        require_utc(anchor)
        if require_utc(moment) < anchor:
            raise InvalidInput("The moment is before the anchor.")
        # The index-th period starts exactly index * term months after the anchor (its day
        # may be clamped), so the one containing `moment` is this index or the one before.
        # Trying this one first finds a period's end, the next one's start, in one step.
        months = (moment.year - anchor.year) * 12 + (moment.month - anchor.month)
        index = months // term.months
        while moment < (period := cls.nth(anchor, term, index)).start:
            index -= 1
        return period


def following(anchor: datetime, term: Term, current: Period) -> Period:
    """The period after `current`, counted from the anchor so that it never drifts."""
    return Period.containing(anchor, term, current.end)
