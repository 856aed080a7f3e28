"""`fairsub catalog check FILE`: validate the operator's catalog before using it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fairsub.adapters.catalog_file import check_file
from fairsub.domain.errors import InvalidInput
from fairsub.entrypoints.cli.common import fail, out

app = typer.Typer(help="The catalog of products, plans and prices.", no_args_is_help=True)


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False)


@app.command("check")
def check(file: Annotated[Path, typer.Argument(help="The catalog TOML file.")]) -> None:
    """Validate the catalog FILE, and the refund policy in it if it has one.

    On a problem, print FILE:LINE and what is wrong, and exit 2."""
    try:
        catalog, policy = check_file(file)
    except InvalidInput as error:
        fail(error.message)
    plans = len(catalog.plans)
    _say(
        f"{file}: OK — {len(catalog.products)} products, {plans} plans, "
        f"{len(catalog.regions)} regions ({', '.join(sorted(catalog.regions))})."
    )
    if policy is None:
        _say(
            "No refund policy ([refunds]) in this file: set FAIRSUB_REFUND_POLICY_FILE to a "
            "file with one, or the portal will not start."
        )
        return
    rules = len(policy.rules)
    _say(
        f"Refund policy: {rules} rule{'' if rules == 1 else 's'}; the statutory 14-day "
        f"withdrawal applies in {len(policy.withdrawal_regions)} regions "
        "(`fairsub policy check FILE` lists the rules)."
    )
