"""The `fairsub` command line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy.exc import SQLAlchemyError

from fairsub.adapters.db import migrate
from fairsub.bootstrap import Container, bootstrap
from fairsub.config import Settings
from fairsub.domain.errors import FairsubError
from fairsub.services import audit, demo

app = typer.Typer(
    help="fairsub: subscriptions people can stop paying for in a minute.\n\n"
    "Settings come from FAIRSUB_* environment variables; see the README.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, never wrapped or decorated, then exit."""
    print(f"fairsub: {' '.join(message.split())}", file=sys.stderr)
    raise typer.Exit(code)


@contextmanager
def opened() -> Iterator[Container]:
    """Settings and wiring, with every expected failure turned into one line and exit 2."""
    container: Container | None = None
    try:
        container = bootstrap(Settings())
        yield container
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        fail(f"invalid setting {where}: {first['msg']}")
    except FairsubError as error:
        fail(error.message)
    except SQLAlchemyError as error:
        fail(f"database error: {error.__class__.__name__}: {str(error).splitlines()[0]}")
    finally:
        if container is not None:
            container.engine.dispose()


def _upgrade(container: Container) -> None:
    before = migrate.current_revision(container.engine)
    migrate.upgrade(container.engine)
    after = migrate.current_revision(container.engine)
    state = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    out.print(f"Database {state} revision {after}.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration up to the newest (SQLite or PostgreSQL)."""
    with opened() as container:
        _upgrade(container)


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision the database is at."""
    with opened() as container:
        current = migrate.current_revision(container.engine)
        out.print(f"{current or 'empty'} (newest: {migrate.head_revision(container.engine)})")


def _seed(container: Container) -> bool:
    return demo.seed_demo(
        container.uows(),
        container.clock,
        container.hasher,
        container.catalog(),
        container.gateway,
    )


@app.command("seed-demo")
def seed_demo() -> None:
    """Load the fictional vendor's catalog and demo customers. Running it twice changes nothing."""
    with opened() as container:
        if _seed(container):
            out.print(f"Demo data loaded. Sign in as {demo.DEMO_EMAIL} / {demo.DEMO_PASSWORD}.")
        else:
            out.print("Demo data is already there; nothing changed.")


def _serve(container: Container, host: str, port: int) -> None:
    import uvicorn

    from fairsub.entrypoints.web.app import create_app

    uvicorn.run(
        create_app(container),
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=container.settings.trust_proxy_headers,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Run the web portal (and the email relay) until Ctrl-C."""
    with opened() as container:
        out.print(f"fairsub portal on http://{host}:{port}/")
        _serve(container, host, port)


@app.command("demo")
def run_demo(
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Migrate, load demo data if empty, and serve on 127.0.0.1 — all in one."""
    with opened() as container:
        if not container.settings.is_dev:
            fail("the demo runs only with FAIRSUB_ENV=dev")
        _upgrade(container)
        _seed(container)
        base = f"http://127.0.0.1:{port}"
        out.print(
            f"\n[bold]fairsub demo[/] is running at [link={base}/]{base}/[/]\n"
            f"  Sign in:  {base}/login  as [bold]{demo.DEMO_EMAIL}[/] / "
            f"[bold]{demo.DEMO_PASSWORD}[/]\n"
            f"  Mailbox:  {base}/dev/mailbox  (every email the demo sends)\n"
            f"  Data:     {container.settings.resolved_database_url}\n"
            "  Stop with Ctrl-C.\n"
        )
        _serve(container, "127.0.0.1", port)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain. Exit 1 and name the first broken entry if tampered."""
    with opened() as container:
        with Progress(
            TextColumn("Verifying audit log"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("verify", total=None)

            def advance(n: int) -> None:
                progress.advance(task, n)

            total, broken = audit.verify(container.uows(), advance)
        if broken is not None:
            err.print(
                f"fairsub: audit log broken at entry {broken} (of {total}); "
                "entries from there on cannot be trusted",
                markup=False,
            )
            raise typer.Exit(1)
        out.print(f"Audit log intact: {total} entries, hash chain verified.")


if __name__ == "__main__":  # pragma: no cover
    app()
