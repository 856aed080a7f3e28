"""The `fairsub` command line."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

from fairsub.bootstrap import Container
from fairsub.config import ClockName
from fairsub.entrypoints import serving
from fairsub.entrypoints import supervisor as supervisor_module
from fairsub.entrypoints.cli import billing, catalog, clock, policy
from fairsub.entrypoints.cli import cases as cases_cli
from fairsub.entrypoints.cli.common import (
    OneLineErrors,
    counted,
    err,
    fail,
    opened,
    out,
    progress,
)
from fairsub.entrypoints.relay_process import Relay
from fairsub.services import audit, demo
from fairsub.services import catalog as catalog_service

app = OneLineErrors(
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
app.add_typer(billing.app, name="billing")
app.add_typer(clock.app, name="clock")
app.add_typer(catalog.app, name="catalog")
app.add_typer(cases_cli.app, name="cases")
app.add_typer(policy.app, name="policy")
app.command("worker")(billing.worker)


def _upgrade(container: Container) -> None:
    from fairsub.adapters.db import migrate  # Alembic: half a second of start-up, only here

    before = migrate.current_revision(container.engine)
    migrate.upgrade(container.engine)
    after = migrate.current_revision(container.engine)
    state = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    out.print(f"Database {state} revision {after}: {_named(container)}", highlight=False)


def _named(container: Container) -> str:
    """Which database, its password hidden: a shell without FAIRSUB_DATABASE_URL (or with it
    empty) quietly uses SQLite in the data directory, and this is where that shows."""
    return container.engine.url.render_as_string(hide_password=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration up to the newest (SQLite or PostgreSQL)."""
    with opened() as container:
        _upgrade(container)


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision the database is at."""
    from fairsub.adapters.db import migrate

    with opened() as container:
        current = migrate.current_revision(container.engine)
        newest = migrate.head_revision(container.engine)
        out.print(f"{current or 'empty'} (newest: {newest}): {_named(container)}", highlight=False)


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


def _serve(
    container: Container,
    address: serving.Address,
    *,
    relay: Relay,
    workers: int = 1,
    with_worker: bool = False,
) -> None:
    from functools import partial

    from fairsub.entrypoints.web.app import create_app, portal_from_environment
    from fairsub.entrypoints.worker import Worker

    proxy_headers = container.settings.trust_proxy_headers
    try:
        if workers == 1:
            worker = Worker(container, interval=10.0) if with_worker else None
            application = create_app(container, relay=relay, worker=worker)
            serving.serve_here(application, address, proxy_headers=proxy_headers)
            return
        # Each worker process wires its own container from the same FAIRSUB_* settings.
        recipe = partial(portal_from_environment, relay)
        supervisor = supervisor_module.Supervisor(
            recipe, address, workers=workers, proxy_headers=proxy_headers
        )
        code = supervisor.run()
    except serving.CannotListenError as error:
        _cannot_listen(error)
    if code != 0:
        fail(f"{supervisor.failure}; the messages above say why", code=code)


def _cannot_listen(error: serving.CannotListenError) -> NoReturn:
    if isinstance(error, serving.PortInUseError):
        fail(f"{error}; is another server running there?")
    if isinstance(error, serving.NotThisMachineError):
        fail(f"{error}; --host must be an address of this machine, such as 127.0.0.1 or 0.0.0.0")
    fail(str(error))


def _check_port_free(address: serving.Address) -> None:
    """Before the banner, so that an address it cannot listen on is the only thing said."""
    try:
        serving.bind(address).close()
    except serving.CannotListenError as error:
        _cannot_listen(error)


def _store_catalog(container: Container) -> None:
    """Before the banner too: the first use of the database, which may not answer."""
    catalog_service.store(container.uows(), container.clock, container.catalog())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="Processes serving the portal on the one port, each able to keep a core "
            "busy. Default: one per core this machine gives fairsub.",
            min=1,
            show_default=False,
        ),
    ] = supervisor_module.default_workers(),
    relay: Annotated[
        bool,
        typer.Option(
            help="Send queued email from a relay process the server starts and stops (one "
            "per worker). Turn it off when `fairsub worker` runs beside the portal: the "
            "worker sends it too, within a second."
        ),
    ] = True,
) -> None:
    """Run the web portal (and its email relay) until Ctrl-C. Run `fairsub worker` beside it."""
    address = serving.Address(host, port)
    if workers > 1 and not supervisor_module.CAN_DEAL:
        fail(
            "--workers above 1 needs a Unix system, which can hand a connection to another "
            "process; use --workers 1"
        )
    with opened() as container:
        _check_port_free(address)
        container.check_operator_files()
        _store_catalog(container)
        plural = "process" if workers == 1 else "processes"
        out.print(f"fairsub portal on http://{address}/ ({workers} {plural})")
        if container.settings.is_dev and not _loopback(host):
            # Dev mode's /dev pages show every email sent, password-reset links included.
            err.print(
                "fairsub: warning: FAIRSUB_ENV=dev on an address others can reach: anyone can "
                "read every email at /dev/mailbox. Set FAIRSUB_ENV=production.",
                highlight=False,
            )
        _serve(
            container,
            address,
            relay=Relay.PROCESS if relay else Relay.OFF,
            workers=workers,
        )


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


@app.command("demo")
def run_demo(
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Migrate, load demo data if empty, and serve on 127.0.0.1 with a worker — all in one.

    The demo runs on the test clock (FAIRSUB_CLOCK=test) unless told otherwise.

    Move its time from the portal's footer, or with `fairsub clock advance --days 30`."""
    import os

    overrides: dict[str, object] = (
        {} if "FAIRSUB_CLOCK" in os.environ else {"clock": ClockName.TEST}
    )
    if "FAIRSUB_BASE_URL" not in os.environ:  # email links lead back to this very demo
        overrides["base_url"] = f"http://127.0.0.1:{port}"
    with opened(**overrides) as container:
        if not container.settings.is_dev:
            fail("the demo runs only with FAIRSUB_ENV=dev")
        address = serving.Address("127.0.0.1", port)
        _check_port_free(address)
        container.check_operator_files()
        _upgrade(container)
        _seed(container)
        _store_catalog(container)
        base = f"http://{address}"
        out.print(
            f"\n[bold]fairsub demo[/] is running at [link={base}/]{base}/[/]\n"
            f"  Sign in:  {base}/login  as [bold]{demo.DEMO_EMAIL}[/] / "
            f"[bold]{demo.DEMO_PASSWORD}[/]\n"
            f"  Mailbox:  {base}/dev/mailbox  (every email the demo sends)\n"
            f"  Clock:    simulated; move it from the page footer, or "
            f"`FAIRSUB_CLOCK=test fairsub clock advance --days 30`\n"
            f"  Data:     {container.settings.resolved_database_url}\n"
            "  Stop with Ctrl-C.\n"
        )
        # The demo's worker sends each day's email as the clock moves, from this process.
        _serve(container, address, relay=Relay.THREAD, with_worker=True)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain. Exit 1 and name the first broken entry if tampered."""
    with opened() as container:
        with progress("Verifying audit log") as bar:
            task = bar.add_task("verify", total=None)

            def advance(n: int) -> None:
                bar.advance(task, n)

            total, broken = audit.verify(container.uows(), advance)
        if broken is not None:
            fail(
                f"audit log broken at entry {broken} (of {total}); "
                "entries from there on cannot be trusted",
                code=1,
            )
        out.print(f"Audit log intact: {counted(total, 'entry', 'entries')}, hash chain verified.")


if __name__ == "__main__":  # pragma: no cover
    app()
