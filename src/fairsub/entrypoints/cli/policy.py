"""`fairsub policy …`: check the refund policy file, and explain a subscription's refund."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from fairsub.adapters.policy_file import load_policy
from fairsub.domain.errors import InvalidInput
from fairsub.domain.refund_rules import describe, describe_arrival
from fairsub.domain.refunds import RefundKind
from fairsub.entrypoints.cli.common import counted, fail, opened, out
from fairsub.services import refund_policy
from fairsub.services.refund_policy import Explanation

app = typer.Typer(help="The refund policy: check it, explain a decision.", no_args_is_help=True)


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False)


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="The catalog TOML with a refunds section.")],
) -> None:
    """Validate the refund policy (the refunds section) in FILE.

    On a problem, print FILE:LINE and what is wrong, and exit 2. Lists the rules in the
    order they are tried, and how long a refund takes to arrive by payment method."""
    try:
        policy = load_policy(file)
    except InvalidInput as error:
        fail(error.message)
    _say(
        f"{file}: OK — {counted(len(policy.rules), 'refund rule')}; the statutory 14-day "
        f"withdrawal applies in {counted(len(policy.withdrawal_regions), 'region')}."
    )
    for index, rule in enumerate(policy.rules):
        _say(f"  {policy.label(index)}: {describe(rule)}")
    _say("  anything else: no refund (beyond the statutory withdrawal)")
    _say("Refunds reach the customer, by payment method:")
    for line in describe_arrival(policy.arrival):
        _say(f"  {line}")


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"not a date: {text!r} (use e.g. 2027-01-31 or 2027-01-31T09:00:00+00:00)")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _span(start: datetime, end: datetime) -> str:
    hours = max(0, int((end - start).total_seconds()) // 3600)
    return f"{hours // 24} days {hours % 24} hours"


def _print(found: Explanation, asked_now: bool) -> None:
    sub, charge, decision = found.subscription, found.charge, found.decision
    _say(
        f"Subscription {sub.id}: {sub.product_name} — {sub.plan_name}, region {sub.region}, "
        f"{sub.status.value}"
    )
    _say(f"Asked at:   {_iso(found.at)}")
    if charge is not None:
        record = (
            f"invoice {charge.invoice_number}"
            if charge.invoice_number is not None
            else "assumed: no invoice on record, so the price at the period's start"
        )
        _say(
            f"Charge:     {charge.amount.plain()} on {_iso(charge.at)}, "
            f"{charge.kind.words} ({record})"
        )
        _say(f"Period:     {_iso(charge.period.start)} to {_iso(charge.period.end)}")
        if charge.already_refunded.amount_minor:
            _say(f"Refunded:   {charge.already_refunded.plain()} already")
    if decision.kind is RefundKind.NONE:
        _say("Decision:   no refund")
    else:
        words = "full" if decision.kind is RefundKind.FULL else "pro-rata"
        _say(f"Decision:   {words} refund of {decision.amount.plain()}")
    _say(f"Why:        {decision.reason}")
    if decision.deadline is not None:
        span, since = _span(found.at, decision.deadline), "now" if asked_now else "then"
        _say(f"Deadline:   {_iso(decision.deadline)} (in {span} from {since})")
    else:
        _say("Deadline:   none")
    _say(f"Rule:       {decision.rule or 'none of the rules'}")
    if found.arrival is not None and decision.kind is not RefundKind.NONE:
        _say(f"Arrives:    {found.arrival.words} business days after the refund is sent")
    if decision.statutory:
        law = "yes — the 14-day right of withdrawal requires at least this"
    elif found.withdrawal_region:
        law = f"no (region {sub.region} has the withdrawal right, but it does not apply here)"
    else:
        law = f"no (no statutory withdrawal right in region {sub.region})"
    _say(f"Statutory:  {law}")


@app.command("explain")
def explain(
    subscription_id: Annotated[int, typer.Argument(help="The subscription's number.")],
    at: Annotated[
        str | None,
        typer.Option(
            help="Decide as if asked then (ISO date or time, UTC if no zone); default: now."
        ),
    ] = None,
) -> None:
    """Explain the refund a subscription's latest charge gets now, and why.

    The policy is the portal's: FAIRSUB_REFUND_POLICY_FILE, else the [refunds] section of
    FAIRSUB_CATALOG_FILE, else the demo catalog's."""
    moment = _moment(at) if at is not None else None
    with opened() as container:
        policy = container.refund_policy()
        when = moment or container.clock.now()
        found = refund_policy.explain(container.uows(), policy, subscription_id, when)
        _print(found, asked_now=moment is None)
