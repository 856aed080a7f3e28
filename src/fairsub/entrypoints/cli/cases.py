"""`fairsub cases …`: the support queue of "I don't recognise this charge" cases."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.control import strip_control_codes
from rich.table import Table
from rich.text import Text

from fairsub.domain.charge_cases import CaseStatus
from fairsub.entrypoints.cli.common import fail, opened, out
from fairsub.services import cases as case_service

app = typer.Typer(
    help="Customers' questions about charges: the queue, alerts, and decisions.",
    no_args_is_help=True,
)


def _operator() -> str:
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a bare container)
        return "operator:unknown"


@app.command("list")
def list_cases(
    alerts: Annotated[
        bool,
        typer.Option(
            "--alerts", help="Only cases that raised an alert (charged after a turn-off)."
        ),
    ] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Resolved cases too, not only the open queue.")
    ] = False,
) -> None:
    """The open cases, oldest question last; with --alerts, every case that raised one."""
    status = None if (alerts or show_all) else CaseStatus.OPEN
    with opened() as container:
        found = case_service.list_cases(container.uows(), status=status, alerts_only=alerts)
        if not found:
            what = "alert" if alerts else ("case" if show_all else "open case")
            out.print(f"No {what}s.")
            return
        title = "Alerts" if alerts else ("All cases" if show_all else "Open cases")
        table = Table(title=title)
        for column in ("id", "reference", "customer", "charge", "amount", "reason", "status"):
            table.add_column(
                column,
                justify="right" if column in ("id", "amount") else "left",
                no_wrap=column in ("id", "reference", "amount", "status"),
            )
        table.add_column("alert", no_wrap=True)
        for item in found:
            case = item.case
            table.add_row(
                str(case.id),
                case.reference,
                _said(item.customer_email),
                f"{item.product} ({item.plan}), receipt {item.invoice_number}, "
                f"{item.charged_at:%Y-%m-%d}",
                item.amount.plain(),
                _said(case.reason.value + (f": {case.note}" if case.note else "")),
                case.status.value,
                "ALERT" if case.alert else "",
            )
        out.print(table)


@app.command("resolve")
def resolve(
    case_id: Annotated[int, typer.Argument(help="The case id from `fairsub cases list`.")],
    note: Annotated[str, typer.Option(help="Why; the customer is emailed this with the outcome.")],
    refund: Annotated[
        bool, typer.Option("--refund", help="Refund what is left of the charge to its card.")
    ] = False,
    reject: Annotated[
        bool, typer.Option("--reject", help="The charge was right; say why in the note.")
    ] = False,
) -> None:
    """Decide an open case: --refund or --reject (exactly one), with a --note."""
    if refund == reject:
        fail("give exactly one of --refund or --reject")
    with opened() as container:
        case = case_service.resolve(
            container.uows,
            container.gateway,
            container.clock,
            case_id,
            refund=refund,
            note=note,
            actor=_operator(),
            arrival=container.refund_policy().arrival,
        )
        done = "refunded to the original card" if refund else "rejected"
        out.print(f"Case {case.id} ({case.reference}) {done}; the customer has been emailed.")


def _said(text: str) -> Text:
    """What a customer typed, shown as typed: no Rich markup ("[link=...]") read in it and
    no terminal control codes run (notes kept before they were cleaned on the way in)."""
    return Text(strip_control_codes(text))
