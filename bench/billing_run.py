"""Billing-run benchmark: services.billing.renew_due beside a plain-SQL two-phase loop.

    .venv/bin/python bench/billing_run.py               # N = 100,000, SQLite and PostgreSQL
    .venv/bin/python bench/billing_run.py --million     # N = 1,000,000
    .venv/bin/python bench/billing_run.py --quick       # N = 5,000: a smoke run
    .venv/bin/python bench/billing_run.py --profile     # also cProfile the fairsub run
    .venv/bin/python bench/billing_run.py --help

For each database (SQLite in a temporary directory; PostgreSQL in a throwaway cluster this
script starts with initdb/pg_ctl on a free port on 127.0.0.1 and stops at the end):

1. set-up, timed apart and not counted: migrate (fairsub.adapters.db.migrate.upgrade), store
   the catalog (container.catalog() through uow.catalog.store), and bulk-insert N accounts,
   each with one payment method and one subscription whose period has ended, so all N are
   due, and the paid invoice and succeeded payment attempt of that period, as a real
   database has them (Core executemany in chunks, streamed: never all rows in memory).
   Every payment method carries the token of ONE real sandbox card (4242 4242 4242 4242),
   stored once.
   The same for N/10 (the memory check) and for the latency data set (--latency-n).
2. each measured run gets a fresh copy of its data set (SQLite: the backup API; PostgreSQL:
   CREATE DATABASE ... TEMPLATE) and a fresh copy of the sandbox ledger holding only that
   card, and runs in a fresh process (spawned), so its peak RSS is its own:
   - sandbox alone: N/10 charges straight to the gateway, no fairsub database: the ceiling
     any renewal loop here can reach;
   - baseline: a plain-SQL two-phase loop (one DBAPI connection, SQL written out) doing
     the minimum honest work on fairsub's schema: claim a batch (the same due/lease/in-
     flight predicate as fairsub; FOR UPDATE SKIP LOCKED on PostgreSQL; BEGIN IMMEDIATE on
     SQLite), reserve invoice numbers, insert invoices and 'sending' attempts (one multi-row
     INSERT each), commit; charge
     each through the same SandboxGateway with the same idempotency key; then record every
     answer in one transaction (attempt, invoice, subscription: executemany). No audit
     event, no outbox email;
   - fairsub: services.billing.renew_due(uows, gateway, clock, batch=, in_flight=) on N/10
     and on N (zero latency), and on the latency data set with --latency-ms and
     --in-flight (beside the baseline with the same threads);
   - on PostgreSQL, also --workers processes (default 2) renewing the same N at once,
     started together, beside the single worker: several workers must be faster than one.
3. after each run (not timed) it checks that every due subscription was renewed exactly
   once: paid invoices == distinct subscriptions paid == succeeded attempts == all attempts
   == sandbox charges == subscriptions whose period moved on == N.

Peak RSS growth is VmHWM at the end minus VmRSS at the start of the run (the peak is reset
through /proc/self/clear_refs first). CPU is sampled over the run: this process (all its
threads), PostgreSQL (postmaster and backends), and the rest of the machine ("other"): a
busy machine makes every figure low.

Figures are printed, never asserted: the exit code is 0 whether targets are met or not.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _billing_common import console, machine_info
from _billing_data import Database, copy_sqlite, make_ledger_template, remove_sqlite, seed
from _billing_jobs import Job, in_child
from _billing_report import Report, markdown, print_profile, print_report
from _support import (
    Postgres,
    add_postgres_options,
    load_average,
)

# --------------------------------------------------------------------------- one database

# Each run --runs can name, and the data set it renews (--profile renews "small" too).
DATASET_OF_RUN = {
    "gateway": "small",
    "baseline": "large",
    "memory": "small",
    "fairsub": "large",
    "workers": "large",
    "latency": "latency",
}
RUNS = tuple(DATASET_OF_RUN)


def run_database(
    db: Database, args: argparse.Namespace, ledger_template: Path, token: str
) -> Report:
    began = time.perf_counter()
    report = Report(db.name)
    report.load.append(load_average())
    small = max(1, args.n // 10)
    datasets = {"small": small, "large": args.n, "latency": args.latency_n}
    needed = {DATASET_OF_RUN[run] for run in args.runs} | ({"small"} if args.profile else set())
    for name, size in datasets.items():
        if name not in needed:
            continue
        console.print(f"  {db.name}: seeding {size:,} due subscriptions ({name}) ...")
        url = db.template_url(name)
        report.setup_seconds[name] = seed(url, db.data_dir, size, token, args.seed)
    latency = args.latency_ms / 1000
    tag = db.name.lower()

    def measure(key: str, job_kind: str, dataset: str, label: str, **extra: Any) -> None:
        ledger = db.data_dir / f"ledger_{key}.db"
        copy_sqlite(ledger_template, ledger)
        try:
            size = datasets.get(dataset, small)
            console.print(f"  {db.name}: {label} ({size:,}) ... [dim]load {load_average()}[/dim]")
            if job_kind == "gateway":
                job = Job("gateway", label, "", str(db.data_dir), str(ledger), token, size, **extra)
                report.results[key] = in_child(job)
                return
            with db.fresh_copy(dataset, f"{tag}_{key}") as url:
                job = Job(
                    job_kind,
                    label,
                    url,
                    str(db.data_dir),
                    str(ledger),
                    token,
                    size,
                    batch=args.batch,
                    pg_pid=db.pg_pid,
                    **extra,
                )
                report.results[key] = in_child(job)
        finally:
            remove_sqlite(ledger)

    wanted = set(args.runs)
    if "gateway" in wanted:
        measure("gateway", "gateway", "small", "sandbox alone (charges/s)")
    if "baseline" in wanted:
        measure("baseline", "baseline", "large", "baseline: plain SQL")
    if "memory" in wanted:
        measure("fairsub-small", "fairsub", "small", "fairsub renew_due, N/10")
    if "fairsub" in wanted:
        measure("fairsub", "fairsub", "large", "fairsub renew_due")
    if "workers" in wanted and db.postgres is not None and args.workers > 1:
        measure(
            "fairsub-workers",
            "fairsub",
            "large",
            f"fairsub renew_due, {args.workers} workers",
            workers=args.workers,
        )
    if "latency" in wanted:
        measure(
            "baseline-latency",
            "baseline",
            "latency",
            f"baseline, {args.latency_ms:g} ms x {args.in_flight} in flight",
            latency=latency,
            in_flight=args.in_flight,
        )
        measure(
            "fairsub-latency",
            "fairsub",
            "latency",
            f"fairsub, {args.latency_ms:g} ms x {args.in_flight} in flight",
            latency=latency,
            in_flight=args.in_flight,
        )
    if args.profile:
        path = Path(args.profile_dir) / f"billing_run-{tag}.prof"
        measure(
            "profile",
            "fairsub",
            "small",
            "fairsub renew_due, N/10, under cProfile",
            profile_path=str(path),
        )
    counts = [
        f"{r.label} {r.statements / r.done:.2f}"
        for r in report.results.values()
        if r.statements and r.done
    ]
    if counts:
        report.notes.append(
            "SQL statements per renewal (an executemany counts once): " + "; ".join(counts)
        )
    for db_name in list(db.templates):
        if db.postgres is not None:
            db.postgres.drop_database(db.templates[db_name])
        else:
            remove_sqlite(Path(db.templates[db_name]))
    report.load.append(load_average())
    report.seconds = time.perf_counter() - began
    return report


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Billing-run benchmark: services.billing.renew_due over N due "
        "subscriptions beside a plain-SQL two-phase loop, on SQLite and PostgreSQL, with the "
        "sandbox gateway at zero latency and at a simulated latency. Figures are printed, "
        "not asserted.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=100_000, help="due subscriptions")
    parser.add_argument("--million", action="store_true", help="N = 1,000,000")
    parser.add_argument("--quick", action="store_true", help="smoke run: N = 5,000")
    parser.add_argument("--batch", type=int, default=200, help="renew_due(batch=)")
    parser.add_argument(
        "--latency-ms", type=float, default=50.0, help="simulated gateway latency L"
    )
    parser.add_argument(
        "--in-flight", type=int, default=16, help="charges in flight C with latency"
    )
    parser.add_argument(
        "--latency-n", type=int, default=None, help="due subscriptions in the latency run "
        "(default 2,000; 640 with --quick)"
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes in the PostgreSQL multi-worker run"
    )
    parser.add_argument(
        "--runs",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=",".join(RUNS),
        metavar="NAME,...",
        help=f"which runs to make, of {', '.join(RUNS)}",
    )
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    add_postgres_options(parser)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run fairsub on N/10 under cProfile and print the hot spots",
    )
    parser.add_argument("--profile-dir", default=tempfile.gettempdir(), help="where .prof files go")
    parser.add_argument("--profile-lines", type=int, default=30, help="rows of profile shown")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the data")
    args = parser.parse_args(argv)
    if args.million:
        args.n = 1_000_000
    if args.quick:
        args.n = 5_000
    if args.latency_n is None:
        args.latency_n = 640 if args.quick else 2_000
    if args.n < 10 or args.batch < 1 or args.in_flight < 1 or args.latency_n < 1:
        parser.error("--n must be at least 10; --batch, --in-flight, --latency-n positive")
    unknown = sorted(set(args.runs) - set(RUNS))
    if unknown:
        parser.error(f"--runs: unknown {', '.join(unknown)}; choose from {', '.join(RUNS)}")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    begun = time.perf_counter()
    postgres: Postgres | None = None
    reports: list[Report] = []
    base = Path(tempfile.mkdtemp(prefix="fairsub-bench-billing-"))
    try:
        pg_version = None
        if not args.skip_postgres:
            pg_bin = Postgres.find(args.pg_bin)
            if pg_bin is None:
                console.print(
                    "[yellow]PostgreSQL binaries not found (Debian package postgresql, or "
                    "--pg-bin): running SQLite only.[/yellow]"
                )
            else:
                postgres = Postgres(
                    pg_bin,
                    ["max_connections=100", *args.pg_setting],
                    prefix="fairsub-bench-billing-pg-",
                )
                postgres.start()
                pg_version = postgres.version()
        console.print("[bold]fairsub billing-run benchmark[/bold]")
        for key, value in machine_info(pg_version).items():
            console.print(f"  {key}: {value}")
        console.print(
            f"  run: N = {args.n:,} (and N/10 = {max(1, args.n // 10):,} for memory), batch "
            f"{args.batch}, zero-latency runs with in_flight 1; latency run "
            f"{args.latency_n:,} with L = {args.latency_ms:g} ms, C = {args.in_flight}\n"
        )
        ledger_template = base / "sandbox-template.db"
        token = make_ledger_template(ledger_template)
        if not args.skip_sqlite:
            data_dir = base / "sqlite"
            data_dir.mkdir()
            reports.append(run_database(Database("SQLite", data_dir), args, ledger_template, token))
            print_report(reports[-1], args)
        if postgres is not None:
            data_dir = base / "postgresql"
            data_dir.mkdir()
            database = Database("PostgreSQL", data_dir, postgres)
            reports.append(run_database(database, args, ledger_template, token))
            print_report(reports[-1], args)
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(base, ignore_errors=True)
    if args.profile:
        for report in reports:
            profiled = report.results.get("profile")
            if profiled and profiled.profile_path:
                print_profile(Path(profiled.profile_path), args.profile_lines)
    if reports:
        console.print("[bold]Summary (markdown)[/bold]")
        console.print(markdown(reports, args), markup=False)
    console.print(
        f"\n[dim]Whole run: {time.perf_counter() - begun:.0f} s; load average now "
        f"{load_average()}. Targets are informational; the exit code does not depend on "
        "them.[/dim]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
