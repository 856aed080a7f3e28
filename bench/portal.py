"""Portal benchmark: dashboard and turn-off throughput and latency, beside a bare endpoint.

    .venv/bin/python bench/portal.py            # SQLite and PostgreSQL, full run
    .venv/bin/python bench/portal.py --quick    # a short smoke run
    .venv/bin/python bench/portal.py --help

For each database (SQLite in a temporary directory; PostgreSQL in a throwaway cluster this
script starts with initdb/pg_ctl on a free port on 127.0.0.1 and stops at the end) it:

1. migrates a fresh database, stores the demo catalog, and bulk-inserts N customers with
   2-4 subscriptions each (same schema, Core inserts into fairsub's tables);
2. signs every customer in through services.accounts.sign_in (cheap argon2 parameters:
   sign-in is NOT measured) and gives each its own CSRF seed cookie, as a browser has;
3. starts the portal in its own process, served as `fairsub serve` serves it (uvicorn;
   --server-workers processes, by default one per core as `fairsub serve --workers` does;
   see serve_app.py) and checks the real flow once: POST /login, GET /account, and that the
   CSRF token in the turn-off form is the one the load generator sends;
4. drives each scenario from this process (asyncio on uvloop, HTTP/1.1 keep-alive, one
   connection per simulated browser, answers read by httptools: see _http.py for why not
   httpx) in a closed loop of --concurrency clients: a warm-up,
   then a measured window. Latency is per request, from send to last byte, as the client
   sees it. With --rate it is an open loop instead (Poisson arrivals, latency counted from
   each arrival, so queueing for a connection is included);
5. checks after the turn-off scenario that each 303 left exactly one cancellation, one
   email in the outbox and an intact audit chain.

Scenarios: "bare" is a plain FastAPI app of its own in the same server process, reading one
account by primary key through the portal's engine (the baseline the targets compare with);
"bare-portal" is the same endpoint mounted on the portal, so it also pays the portal's
middleware and routing; "dashboard" is GET /account for random signed-in customers;
"turn-off" POSTs the turn-off form for a distinct subscription that is still on, each a real
change (subscription, cancellation, audit entry, outbox email), and counts the 303 answer.

Besides throughput and latency it shows where the cores went (CPU % of the server, this load
generator, PostgreSQL, and other processes on the machine, which make figures unreliable),
the server's CPU time per request, and how many database connections the server opened
per request (pool churn).

Figures are printed, never asserted: the exit code is 0 whether targets are met or not.

This file runs the whole; its parts are _portal_data.py (the customers and their sessions),
_portal_server.py (the server and the real-flow check), _portal_load.py (the scenarios and
the load generator) and _portal_report.py (targets, tables, markdown, JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import mailbox
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvloop
from sqlalchemy import func, select

from _portal_data import CHEAP_HASHER, seed
from _portal_load import CpuMeter, Result, drive, scenarios
from _portal_report import DatabaseReport, console, load_mode, markdown, print_report, write_json
from _portal_server import Server, check_real_flow
from _support import (
    Postgres,
    _package_version,
    add_postgres_options,
    bench_settings,
    fairsub_identity,
    machine_basics,
)
from fairsub.adapters.clock import SystemClock
from fairsub.adapters.db import migrate
from fairsub.adapters.db import tables as t
from fairsub.bootstrap import Container, bootstrap
from fairsub.entrypoints import supervisor
from fairsub.services import audit as audit_service

# --------------------------------------------------------------------------- machine


def machine_info(pg_version: str | None) -> dict[str, str]:
    has = importlib.util.find_spec
    server_stack = (
        f"uvicorn {_package_version('uvicorn')} "
        f"(http={'httptools' if has('httptools') else 'h11'}, "
        f"loop={'uvloop' if has('uvloop') else 'asyncio'}), "
        f"fastapi {_package_version('fastapi')}, starlette {_package_version('starlette')}, "
        f"sqlalchemy {_package_version('sqlalchemy')}, psycopg {_package_version('psycopg')}"
    )
    return {
        "fairsub": fairsub_identity(),
        **machine_basics(pg_version),
        "server": server_stack,
        "load generator": (
            f"bench/_http.py: asyncio on uvloop {_package_version('uvloop')}, httptools "
            f"{_package_version('httptools')} (HTTP/1.1 keep-alive)"
        ),
    }


# --------------------------------------------------------------------------- checks


def check_turn_offs(container: Container, turned_off: int, wait_for_mail: float) -> list[str]:
    """Each 303 must have left one cancellation, one queued email, and the chain intact."""
    notes = []
    with container.engine.connect() as connection:
        cancelled = connection.execute(select(func.count()).select_from(t.cancellations))
        queued = connection.execute(
            select(func.count()).select_from(t.outbox).where(t.outbox.c.kind == "auto_renew_off")
        )
        cancelled_n, queued_n = int(cancelled.scalar_one()), int(queued.scalar_one())
    verdict = "ok" if cancelled_n == queued_n == turned_off else "MISMATCH"
    notes.append(
        f"turn-offs answered 303: {turned_off}; cancellations: {cancelled_n}; "
        f"emails queued: {queued_n} ({verdict})"
    )
    entries, broken = audit_service.verify(container.uows())
    notes.append(
        f"audit chain: {entries} entries, "
        + ("intact" if broken is None else f"BROKEN at seq {broken}")
    )
    if wait_for_mail > 0:
        unsent = select(func.count()).select_from(t.outbox).where(t.outbox.c.sent_at.is_(None))
        started = time.perf_counter()
        with container.engine.connect() as connection:
            backlog = int(connection.execute(unsent).scalar_one())
        waiting = backlog
        while waiting and time.perf_counter() - started < wait_for_mail:
            time.sleep(0.25)
            with container.engine.connect() as connection:
                waiting = int(connection.execute(unsent).scalar_one())
        drained = time.perf_counter() - started
        notes.append(
            f"email relay: {backlog} unsent when the load stopped; "
            + (
                f"all sent {drained:.1f} s later"
                if not waiting
                else f"{waiting} still unsent after {drained:.0f} s"
            )
        )
    return notes


# --------------------------------------------------------------------------- one database


@contextmanager
def throwaway_dir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fairsub-bench-"))
    try:
        yield path
    finally:
        if keep:
            console.print(f"[dim]kept {path}[/dim]")
        else:
            shutil.rmtree(path, ignore_errors=True)


def run_database(
    name: str, url: str, data_dir: Path, args: argparse.Namespace, db_pid: int | None
) -> DatabaseReport:
    started = time.perf_counter()
    rng = random.Random(args.seed)
    notes: list[str] = []
    container = bootstrap(bench_settings(url, data_dir), hasher=CHEAP_HASHER, clock=SystemClock())
    try:
        migrate.upgrade(container.engine)
        population = seed(container, args.customers, rng)
        container.engine.dispose()
        notes.append(
            f"data: {len(population.users)} customers, {population.subscriptions} subscriptions "
            f"({len(population.turnable)} with auto-renew on that a customer can turn off), "
            f"inserted in {population.seconds_data:.1f} s; {len(population.users)} sessions "
            f"from services.accounts.sign_in in {population.seconds_sign_in:.1f} s "
            "(sign-in is not measured)"
        )
        # A real Maildir up front: before 01be557, MaildirMailer made the bare folder itself,
        # so mailbox.Maildir skipped tmp/, new/ and cur/ and every send failed.
        mailbox.Maildir(data_dir / "mailbox", create=True)
        server = Server(url, data_dir, relay=args.relay, workers=args.server_workers)
        server.start()
        try:
            check_real_flow(server, population)
            notes.append(
                "real flow checked once: POST /login -> 303, GET /account -> 200, "
                "turn-off form carries the CSRF token the load sends"
            )
            # The server with its descendants: its workers, and their email relays.
            processes = {"server": (server.pid, True), "client": (os.getpid(), False)}
            if db_pid is not None:
                processes["postgres"] = (db_pid, True)
            meter = CpuMeter(processes)
            all_scenarios = scenarios(population, rng, args.customers)
            results: dict[str, Result] = {}
            for key in args.scenarios:
                scenario = all_scenarios[key]
                console.print(f"  [dim]{name}: {scenario.label} ...[/dim]")
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    results[key] = runner.run(
                        drive(
                            server.base_url,
                            scenario,
                            concurrency=args.concurrency,
                            warmup=args.warmup,
                            duration=args.duration,
                            meter=meter,
                            worker_pids=server.worker_pids(),
                            rate=args.rate,
                            rng=rng,
                        )
                    )
            if "turn-off" in results:
                notes += check_turn_offs(
                    container,
                    all_scenarios["turn-off"].ok_total,
                    wait_for_mail=0 if args.relay == "off" else 30,
                )
        finally:
            server.stop()
        problems = [line for line in server.log_tail(200).splitlines() if "Traceback" in line]
        if problems:
            notes.append(
                f"server log has {len(problems)} tracebacks: rerun with --keep to read "
                f"{server.log_path}"
            )
    finally:
        container.engine.dispose()
    return DatabaseReport(name, results, notes, time.perf_counter() - started)


# --------------------------------------------------------------------------- main


SCENARIOS = ("bare", "bare-portal", "dashboard", "turn-off")
RELAYS = {
    "process": "a process of its own, as in `fairsub serve`",
    "thread": "a thread in the server",
    "off": "off, as with `fairsub serve --no-relay`",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Portal benchmark: dashboard and turn-off throughput and p50/p99 latency "
        "beside a bare FastAPI endpoint, on SQLite and PostgreSQL. Figures are printed, "
        "not asserted.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--db", choices=("both", "sqlite", "postgres"), default="both", help="databases to run"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="simultaneous clients (closed loop), or connections with --rate",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="REQ_PER_S",
        help="open loop instead: requests arrive at this rate (Poisson) and queue for one of "
        "--concurrency connections; latency includes that queueing. Targets are for the "
        "default closed loop",
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        default=supervisor.default_workers(),
        help="processes serving the portal, as `fairsub serve --workers` (whose default is "
        "also one per usable core)",
    )
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds")
    parser.add_argument("--customers", type=int, default=4000, help="customers (2-4 subs each)")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, in order, from: {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--relay",
        choices=RELAYS,
        default="process",
        help="where the outbox email relay runs: a process of its own beside the server, as "
        "`fairsub serve` runs it; a thread in the server; or off, as with "
        "`fairsub serve --no-relay` beside a `fairsub worker`",
    )
    add_postgres_options(parser)
    parser.add_argument("--seed", type=int, default=1, help="random seed for the data")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short smoke run: 300 customers, 0.5 s warm-up, 2 s measured per scenario",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.warmup, args.duration = 300, 0.5, 2.0
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be above 0")
    if args.server_workers < 1:
        parser.error("--server-workers must be at least 1")
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0 or args.customers < 2:
        parser.error("concurrency and customers must be positive, duration above 0")
    return args


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Stop cleanly (server, PostgreSQL, temporary files) on Ctrl-C or kill, also when started
    # in the background, where a shell leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    begun = time.perf_counter()
    pg_bin = Postgres.find(args.pg_bin) if args.db in ("both", "postgres") else None
    info: dict[str, str] = {}
    postgres: Postgres | None = None
    reports: list[DatabaseReport] = []
    try:
        pg_version = None
        if args.db in ("both", "postgres"):
            if pg_bin is None:
                console.print(
                    "[yellow]PostgreSQL binaries not found (Debian package postgresql, or "
                    "--pg-bin): running SQLite only.[/yellow]"
                )
            else:
                postgres = Postgres(pg_bin, ["max_connections=100", *args.pg_setting])
                try:
                    postgres.start()
                    pg_version = postgres.version()
                except (OSError, KeyError, RuntimeError) as error:
                    console.print("[yellow]PostgreSQL did not start; running SQLite only:[/yellow]")
                    console.print(f"  {error}", markup=False)
                    postgres.stop()
                    postgres = None
        info = machine_info(pg_version)
        console.print("[bold]fairsub portal benchmark[/bold]")
        for key, value in info.items():
            console.print(f"  {key}: {value}")
        console.print(
            f"  run: {load_mode(args)}, {args.warmup:g} s warm-up + "
            f"{args.duration:g} s measured per scenario, {args.customers} customers, "
            f"server: {args.server_workers} worker process(es), "
            f"email relay: {RELAYS[args.relay]}, "
            "sign-in not measured (sessions made beforehand)\n"
        )
        if args.db in ("both", "sqlite"):
            with throwaway_dir(args.keep) as data_dir:
                url = f"sqlite:///{data_dir / 'fairsub.db'}"
                reports.append(run_database("SQLite", url, data_dir, args, None))
            print_report(reports[-1], args)
        if postgres is not None:
            with throwaway_dir(args.keep) as data_dir:
                url = postgres.create_database("fairsub_bench")
                reports.append(
                    run_database("PostgreSQL", url, data_dir, args, postgres.postmaster_pid())
                )
            print_report(reports[-1], args)
    finally:
        if postgres is not None:
            postgres.stop()
    if args.json:
        write_json(Path(args.json), reports, info, args)
    if reports:
        console.print("[bold]Summary (markdown)[/bold]")
        console.print(markdown(reports), markup=False)
    console.print(
        f"\n[dim]Whole run: {time.perf_counter() - begun:.0f} s. Targets are informational; "
        "the exit code does not depend on them.[/dim]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
