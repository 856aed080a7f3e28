"""The dunning schedule: retries spread out, then grace runs out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fairsub.domain.billing import DunningPolicy

END = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)
POLICY = DunningPolicy()


def test_on_schedule_retries_fall_1_3_and_7_days_after_the_period_end() -> None:
    failed_at = END
    schedule = []
    for failures in range(1, 5):
        retry = POLICY.next_retry(END, failures, failed_at)
        schedule.append(retry)
        if retry is None:
            break
        failed_at = retry
    assert schedule == [END + timedelta(days=d) for d in (1, 3, 7)] + [None]


def test_a_late_run_does_not_spend_every_retry_at_once() -> None:
    failed_at = END + timedelta(days=10)  # the worker was down for ten days
    first = POLICY.next_retry(END, 1, failed_at)
    assert first == failed_at + timedelta(days=1)
    assert POLICY.next_retry(END, 2, first) == first + timedelta(days=1)


def test_no_retry_is_scheduled_after_grace() -> None:
    assert POLICY.next_retry(END, 1, END + timedelta(days=13, hours=1)) is None
