"""The email relay backs off while its passes fail (the database is down, say): longer waits,
one log line a wait, and a wake-up from a new email does not bring the next failure early."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from structlog.testing import capture_logs

from fairsub.adapters.email.relay import RELAY_BACKOFF_CAP, OutboxRelay, RelayResult
from fairsub.bootstrap import configure_logging


@pytest.fixture(autouse=True)
def info_logging() -> None:
    """These tests read info lines, whatever level an earlier test left configured (the
    browser tests' servers log warnings only): they passed or failed by the suite's order."""
    configure_logging("info")


class Down(Exception):
    pass


def relay_with(outcomes: list[RelayResult | None]) -> tuple[OutboxRelay, list[float]]:
    """A relay whose passes go as scripted (None: the database is down), noting when."""
    relay = OutboxRelay(None, None, None, None)  # type: ignore[arg-type]
    passes: list[float] = []

    def run_once() -> RelayResult:
        passes.append(now[0])
        outcome = outcomes.pop(0)
        if outcome is None:
            raise Down("connection refused\nis the server running?")
        return outcome

    relay.run_once = run_once  # type: ignore[method-assign]
    return relay, passes


now = [0.0]


def serve(
    outcomes: list[RelayResult | None],
    *,
    woken_at: set[int] = frozenset(),  # type: ignore[assignment]
) -> tuple[list[float], list[float], list[dict[str, Any]]]:
    """Serve until the script runs out. The waits in `woken_at` (by number) are cut short
    after 0.1 s, as a nudge from a new email does."""
    now[0] = 0.0
    relay, passes = relay_with(outcomes)
    asked: list[float] = []

    def wait(seconds: float) -> bool:
        asked.append(seconds)
        now[0] += 0.1 if len(asked) in woken_at else seconds
        return bool(outcomes)

    with capture_logs() as logs:
        relay.serve(wait, 1.0, monotonic=lambda: now[0])
    return passes, asked, logs


def test_failures_in_a_row_wait_twice_as_long_each_time_and_success_resets_it() -> None:
    ok = RelayResult(0, 0)
    passes, _, logs = serve([None, None, None, None, ok, None, ok])

    assert passes == [0, 1, 3, 7, 15, 16, 17]
    events = [(e["event"], e.get("retry_in_s")) for e in logs]
    assert events == [
        ("outbox_relay_error", 1.0),
        ("outbox_relay_still_failing", 2.0),
        ("outbox_relay_still_failing", 4.0),
        ("outbox_relay_still_failing", 8.0),
        ("outbox_relay_recovered", None),
        ("outbox_relay_error", 1.0),  # a new outage starts again from the first wait
        ("outbox_relay_recovered", None),
    ]
    assert logs[0]["exc_info"] is True  # the first failure in full, with its traceback
    assert "exc_info" not in logs[1]  # then one line each
    assert logs[1]["error"] == "Down: connection refused"
    assert logs[1]["failures"] == 2


def test_the_wait_is_capped() -> None:
    passes, _, logs = serve([None] * 9 + [RelayResult(0, 0)])

    waits = [b - a for a, b in itertools.pairwise(passes)]
    assert waits == [1, 2, 4, 8, 16, 32, RELAY_BACKOFF_CAP, RELAY_BACKOFF_CAP, RELAY_BACKOFF_CAP]
    assert len(logs) == 10  # one line a wait, and one when it recovers


def test_a_new_email_does_not_cut_the_back_off_short() -> None:
    # The third wait (4 s, after the third failure) is woken after 0.1 s by a new email.
    passes, asked, _ = serve([None, None, None, RelayResult(0, 0)], woken_at={3})

    assert passes == [0, 1, 3, 7]  # still 4 s after the third failure
    assert asked[:4] == [1.0, 2.0, 4.0, 3.9]  # woken, it waits out the rest


def test_a_stop_during_the_back_off_ends_serve() -> None:
    relay, passes = relay_with([None])
    relay.serve(lambda _seconds: False, 1.0, monotonic=lambda: 0.0)
    assert len(passes) == 1
