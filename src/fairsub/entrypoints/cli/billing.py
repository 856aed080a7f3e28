"""`fairsub billing …` and `fairsub worker`: the money side from the command line."""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC
from typing import Annotated

import typer
from rich.progress import TimeElapsedColumn
from rich.table import Table

from fairsub.entrypoints import heap
from fairsub.entrypoints.cli.common import counted, err, fail, opened, out, progress
from fairsub.entrypoints.stopping import sigterm_as_ctrl_c
from fairsub.services import billing as billing_service
from fairsub.services import catalog as catalog_service
from fairsub.services import reconcile as reconcile_service

app = typer.Typer(help="Renewals, reconciliation and the review list.", no_args_is_help=True)

Batch = Annotated[int, typer.Option(help="Subscriptions claimed per transaction.", min=1)]
InFlight = Annotated[int, typer.Option(help="Charges sent to the gateway at once.", min=1, max=256)]


@app.command("run")
def run(batch: Batch = 200, in_flight: InFlight = 8) -> None:
    """Do one billing pass now: settle lost answers, renew what is due, end what will not renew.

    Prints a summary: charged, declined, unknown, skipped, settled, expired."""
    with opened() as container:
        with container.uows().read() as uow:
            due = uow.billing.due_count(container.clock.now())
        heap.settle()
        # SIGTERM as Ctrl-C: the run unwinds (its connections closed) instead of dying on the
        # spot, and either way the operator is told where that leaves things.
        with sigterm_as_ctrl_c(), progress("Renewing", TimeElapsedColumn()) as bar:
            task = bar.add_task("renew", total=due or None)
            try:
                summary = billing_service.run(
                    container.uows,
                    container.gateway,
                    container.clock,
                    batch=batch,
                    in_flight=in_flight,
                    progress=lambda n: bar.advance(task, n),
                )
            except KeyboardInterrupt:
                fail(
                    "billing run stopped before the end; what it did is recorded, and the next "
                    "run (or the worker) asks the gateway about charges left without an answer",
                    code=130,
                )
        table = Table(title="Billing run", show_header=True)
        for name in ("charged", "declined", "unknown", "skipped", "settled", "expired"):
            table.add_column(name, justify="right")
        table.add_row(
            *(
                str(getattr(summary, n))
                for n in ("charged", "declined", "unknown", "skipped", "settled", "expired")
            )
        )
        out.print(table)
        if summary.credentials_refused:
            fail(
                "the payment gateway refused fairsub's credentials: "
                f"{summary.credentials_refused} Nothing was charged for what it refused; the "
                "next run sends those charges again under the same keys."
            )
        if summary.unknown:
            out.print(
                f"No answer yet for {counted(summary.unknown, 'charge')}; the next run asks "
                "the gateway again. See `fairsub billing review`."
            )


@app.command("reconcile")
def reconcile() -> None:
    """Compare our ledger with the gateway's. Exit 1 and list every difference."""
    with opened() as container:
        compared, differences = reconcile_service.reconcile(container.uows, container.gateway)
        if differences:
            for difference in differences:
                err.print(str(difference), markup=False, highlight=False)
            fail(
                f"{counted(len(differences), 'difference')} between our ledger and the "
                f"gateway's ({counted(compared, 'gateway charge')} compared)",
                code=1,
            )
        out.print(f"Ledgers agree: {counted(compared, 'charge')} compared, no difference.")


@app.command("review")
def review() -> None:
    """Charges whose outcome is still unknown after asking the gateway: check them by hand."""
    with opened() as container:
        with container.uows().read() as uow:
            pending = uow.billing.unsettled(container.clock.now(), 1000)
        if not pending:
            out.print("Nothing to review: every charge has a known outcome.")
            return
        table = Table(title="Charges with no known outcome")
        table.add_column("attempt", justify="right")
        # Whole, on one line: the operator looks it up at the gateway, and copies it.
        longest = max(len(attempt.idempotency_key) for attempt in pending)
        table.add_column("idempotency key", no_wrap=True, min_width=longest)
        for column in ("amount", "status", "since"):
            table.add_column(column)
        for attempt in pending:
            table.add_row(
                str(attempt.id),
                attempt.idempotency_key,
                attempt.amount.plain(),
                attempt.status.value,
                f"{attempt.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
            )
        out.print(table)


def worker(
    interval: Annotated[float, typer.Option(help="Seconds between passes.", min=0.5)] = 30.0,
    batch: Batch = 200,
    in_flight: InFlight = 8,
    once: Annotated[bool, typer.Option(help="Do one pass and exit.")] = False,
) -> None:
    """Run the background worker: renewals, dunning, reminders and email, every INTERVAL."""
    from fairsub.entrypoints.worker import Worker

    with opened() as container:
        container.check_operator_files()
        catalog_service.store(container.uows(), container.clock, container.catalog())
        runner = Worker(container, interval=interval, batch=batch, in_flight=in_flight)
        heap.settle()
        if once:
            summary = runner.run_once()
            out.print(
                f"charged {summary.charged}, declined {summary.declined}, "
                f"unknown {summary.unknown}, expired {summary.expired}, "
                f"reminders {summary.reminded}"
            )
            return
        # The line saying it runs comes once it does, so a stop sent on reading it is clean.
        with sigterm_as_ctrl_c(), suppress(KeyboardInterrupt):
            runner.forever(
                running=lambda: out.print(
                    f"fairsub worker: a pass every {interval:g} s. Stop with Ctrl-C."
                )
            )
    out.print("fairsub worker stopped.")


# A negative AMOUNT reaches the command, which says what is wrong with it, rather than
# being taken for an option ("No such option: -5").
@app.command("announce-price", context_settings={"ignore_unknown_options": True})
def announce_price(
    plan: Annotated[str, typer.Argument(help="Plan code, e.g. total360-annual.")],
    region: Annotated[str, typer.Argument(help="Region code, e.g. GB.")],
    amount: Annotated[int, typer.Argument(help="New price in minor units (pence, cents; yen).")],
    effective: Annotated[
        str,
        typer.Option(
            help="First renewal date at the new price (at least 7 days from now), e.g. 2027-03-01."
        ),
    ],
) -> None:
    """Announce a new price; customers are told 7 to 30 days before they first pay it (C23).

    Nobody is charged more without that notice. Update the catalog file to match."""
    from datetime import datetime

    from fairsub.domain.money import Money
    from fairsub.services import pricing

    try:
        moment = datetime.fromisoformat(effective)
    except ValueError:
        fail(f"not a date: {effective!r} (use e.g. 2027-03-01)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    with opened() as container:
        currency = container.catalog().regions.get(region)
        if currency is None:
            fail(f"no region {region!r} in the catalog")
        change = pricing.announce_price_change(
            container.uows,
            container.clock,
            plan,
            region,
            Money(amount, currency.currency),
            moment,
        )
        out.print(
            f"Announced: {plan} in {region} costs {Money(amount, currency.currency).plain()} "
            f"from {change.effective_from:%Y-%m-%d}. Notices go out 7 to 30 days before each "
            "customer's first renewal at that price."
        )
