"""`fairsub catalog check FILE`: validate the operator's catalog before using it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fairsub.adapters.catalog_file import load_catalog
from fairsub.domain.errors import InvalidInput
from fairsub.entrypoints.cli.common import fail, out

app = typer.Typer(help="The catalog of products, plans and prices.", no_args_is_help=True)


@app.command("check")
def check(file: Annotated[Path, typer.Argument(help="The catalog TOML file.")]) -> None:
    """Validate FILE; on a problem, print FILE:LINE and what is wrong, and exit 2."""
    try:
        catalog = load_catalog(file)
    except InvalidInput as error:
        fail(error.message)
    plans = len(catalog.plans)
    out.print(
        f"{file}: OK — {len(catalog.products)} products, {plans} plans, "
        f"{len(catalog.regions)} regions ({', '.join(sorted(catalog.regions))})."
    )
