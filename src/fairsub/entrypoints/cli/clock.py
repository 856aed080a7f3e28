"""`fairsub clock …`: the test clock, for the demo and for trying things out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from fairsub.adapters.clock import OffsetFileClock
from fairsub.bootstrap import Container
from fairsub.entrypoints.cli.common import fail, opened, out, progress

app = typer.Typer(
    help="The test clock (FAIRSUB_CLOCK=test): show it, move it forward.",
    no_args_is_help=True,
)


def _test_clock(container: Container) -> OffsetFileClock:
    if not isinstance(container.clock, OffsetFileClock):
        fail("the clock can only be moved with FAIRSUB_CLOCK=test")
    return container.clock


@app.command("show")
def show() -> None:
    """Print what time fairsub thinks it is."""
    with opened() as container:
        now = container.clock.now()
        kind = "test clock" if isinstance(container.clock, OffsetFileClock) else "system clock"
        out.print(f"{now.isoformat(timespec='seconds')} ({kind})")


@app.command("advance")
def advance(
    days: Annotated[int, typer.Option(help="Days to move forward.", min=1, max=3660)],
) -> None:
    """Move the clock forward a day at a time, doing each day's work as billing days would.

    Each day's renewals, reminders, dunning and email are done before the next day begins."""
    from fairsub.entrypoints.worker import Worker

    with opened() as container:
        _test_clock(container)
        worker = Worker(container)
        with progress("Days passing") as bar:
            task = bar.add_task("days", total=days)
            summary = worker.advance(days, lambda n: bar.advance(task, n))
        out.print(
            f"It is now {container.clock.now().isoformat(timespec='seconds')}. "
            f"Charged {summary.charged}, declined {summary.declined}, "
            f"expired {summary.expired}, reminders {summary.reminded}."
        )


@app.command("set")
def set_clock(
    date: Annotated[
        str,
        typer.Argument(
            help="ISO date or time, e.g. 2027-01-31 or 2027-01-31T09:00:00+00:00 (UTC if no zone)."
        ),
    ],
) -> None:
    """Jump the clock forward to DATE, doing no work for the days skipped.

    The next worker pass catches up."""
    try:
        moment = datetime.fromisoformat(date)
    except ValueError:
        fail(f"not a date: {date!r} (use e.g. 2027-01-31)")
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    with opened() as container:
        clock = _test_clock(container)
        try:
            clock.set(moment)
        except ValueError as error:
            fail(str(error))
        out.print(f"It is now {clock.now().isoformat(timespec='seconds')}.")
