"""One measured billing run in its own process (or several workers at once), and its check."""

from __future__ import annotations

import cProfile
import multiprocessing
import resource
import sqlite3
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, distinct, event, func, select

from _billing_baseline import baseline_renew
from _billing_common import _proc_status_kib
from _support import (
    bench_settings,
    cpu_seconds,
    load_average,
    machine_busy_seconds,
)
from fairsub.adapters.clock import SystemClock
from fairsub.adapters.db import tables as t
from fairsub.adapters.db.engine import make_engine
from fairsub.adapters.payments.sandbox import SandboxGateway
from fairsub.bootstrap import Container, bootstrap
from fairsub.domain.billing import AttemptStatus, InvoiceStatus
from fairsub.domain.money import Money
from fairsub.entrypoints import heap
from fairsub.services import billing

# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class Job:
    kind: str  # "fairsub", "baseline" or "gateway"
    label: str
    url: str  # the fairsub database ("" for "gateway")
    data_dir: str
    ledger: str  # this run's own copy of the sandbox ledger
    token: str
    n: int  # due subscriptions (or charges, for "gateway")
    latency: float = 0.0
    in_flight: int = 1
    batch: int = 200
    pg_pid: int | None = None
    profile_path: str | None = None  # cProfile the run (and count SQL statements)
    workers: int = 1  # processes renewing the same database at once


@dataclass
class Result:
    label: str
    kind: str
    n: int
    in_flight: int
    latency: float
    seconds: float
    cpu_self: float
    cpu_pg: float
    cpu_machine: float
    rss_start_kib: int
    hwm_kib: int
    done: int
    summary: dict[str, int]
    check: dict[str, int]
    statements: int | None = None
    profile_path: str | None = None

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_each(self) -> float:
        """CPU of this process and PostgreSQL per renewal (or charge): what one costs,
        however busy the machine was."""
        return 1000 * (self.cpu_self + self.cpu_pg) / self.done if self.done else 0.0

    @property
    def growth_mib(self) -> float:
        return max(0, self.hwm_kib - self.rss_start_kib) / 1024

    def cpu_percent(self, which: str) -> float:
        if self.seconds <= 0:
            return 0.0
        if which == "self":
            return 100 * self.cpu_self / self.seconds
        if which == "pg":
            return 100 * self.cpu_pg / self.seconds
        other = self.cpu_machine - self.cpu_self - self.cpu_pg
        return max(0.0, 100 * other / self.seconds)

    @property
    def renewed_once(self) -> bool | None:
        if self.kind == "gateway":
            return None
        wanted = {self.n}
        return set(self.check.values()) == wanted


def _progress_printer(label: str, total: int) -> Callable[[int], None]:
    state = {"done": 0, "shown": time.perf_counter(), "start": time.perf_counter()}

    def progress(count: int) -> None:
        state["done"] += count
        now = time.perf_counter()
        if now - state["shown"] >= 15:
            state["shown"] = now
            rate = state["done"] / (now - state["start"])
            print(
                f"      {label}: {int(state['done']):,}/{total:,} ({rate:,.0f}/s, load "
                f"{load_average()})",
                file=sys.stderr,
                flush=True,
            )

    return progress


def _charge_straight(gateway: SandboxGateway, job: Job) -> int:
    amount = Money(499, "USD")

    def one(i: int) -> bool:
        return gateway.charge(f"bench-{i}", amount, job.token, "Bench charge").succeeded

    if job.in_flight <= 1:
        return sum(one(i) for i in range(job.n))
    with ThreadPoolExecutor(max_workers=job.in_flight) as pool:
        return sum(pool.map(one, range(job.n)))


def _count_statements(engine: Engine) -> dict[str, int]:
    counted = {"statements": 0}

    @event.listens_for(engine, "before_cursor_execute")
    def count(*_args: Any) -> None:
        counted["statements"] += 1

    return counted


def run_job(job: Job, start: Any = None) -> dict[str, Any]:
    """One measured run, in its own (spawned) process. With `start` (a barrier shared by
    several workers) it waits for the others before measuring, and leaves the check of the
    result to the parent, which runs it once all have finished."""
    clock = SystemClock()
    gateway = SandboxGateway(Path(job.ledger), clock, latency=job.latency)
    container: Container | None = None
    if job.kind == "fairsub":
        container = bootstrap(
            bench_settings(job.url, Path(job.data_dir)), clock=clock, gateway=gateway
        )
    # A listener call per statement: well under 1% of what a statement costs.
    counted = _count_statements(container.engine) if container else None
    progress = _progress_printer(job.label, job.n)
    # Set up as `fairsub worker` and `fairsub billing run` are, whichever kind of run: the
    # start-up heap frozen, out of the collector's way (fairsub.entrypoints.heap).
    heap.settle()
    profiler = cProfile.Profile() if job.profile_path else None
    started_at = clock.now()
    summary: dict[str, int] = {}
    statements: int | None = None
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    rss_start = _proc_status_kib("VmRSS")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    machine0 = machine_busy_seconds()
    pg0 = cpu_seconds(job.pg_pid, children=True) if job.pg_pid else 0.0
    if start is not None:
        start.wait()
    began = time.perf_counter()
    if profiler:
        profiler.enable()
    if job.kind == "fairsub":
        assert container is not None
        result = billing.renew_due(
            container.uows,
            gateway,
            clock,
            batch=job.batch,
            in_flight=job.in_flight,
            progress=progress,
        )
        summary = {
            "charged": result.charged,
            "declined": result.declined,
            "unknown": result.unknown,
            "skipped": result.skipped,
        }
        done = result.charged + result.declined + result.unknown + result.skipped
    elif job.kind == "baseline":
        plain, statements = baseline_renew(
            job.url, gateway, clock, batch=job.batch, in_flight=job.in_flight, progress=progress
        )
        summary = asdict(plain)
        done = plain.charged + plain.declined + plain.unknown + plain.skipped
    else:
        done = job.n
        summary = {"charged": _charge_straight(gateway, job)}
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_self = usage.ru_utime + usage.ru_stime - cpu0
    cpu_machine = machine_busy_seconds() - machine0
    cpu_pg = (cpu_seconds(job.pg_pid, children=True) - pg0) if job.pg_pid else 0.0
    hwm = _proc_status_kib("VmHWM")
    if profiler and job.profile_path:
        profiler.dump_stats(job.profile_path)
    if counted is not None:
        statements = counted["statements"]
    check = _verify(job, started_at) if start is None else {}
    if container is not None:
        container.close()
    gateway.close()
    return asdict(
        Result(
            label=job.label,
            kind=job.kind,
            n=job.n,
            in_flight=job.in_flight,
            latency=job.latency,
            seconds=seconds,
            cpu_self=cpu_self,
            cpu_pg=cpu_pg,
            cpu_machine=cpu_machine,
            rss_start_kib=rss_start,
            hwm_kib=hwm,
            done=done,
            summary=summary,
            check=check,
            statements=statements,
            profile_path=job.profile_path,
        )
    )


def _verify(job: Job, started_at: datetime) -> dict[str, int]:
    """Every due subscription renewed exactly once? Counted, not asserted."""
    ledger = sqlite3.connect(job.ledger)
    try:
        charges = int(ledger.execute("SELECT count(*) FROM charges WHERE succeeded").fetchone()[0])
    finally:
        ledger.close()
    if job.kind == "gateway":
        return {"sandbox charges": charges}
    engine = make_engine(job.url)
    inv, pa, s = t.invoices, t.payment_attempts, t.subscriptions
    try:
        with engine.connect() as c:
            # The seeded history (each current period's paid invoice and its attempt)
            # was created before the run; only what the run made is counted.
            paid = and_(inv.c.status == InvoiceStatus.PAID.value, inv.c.created_at >= started_at)
            new_attempt = pa.c.created_at >= started_at
            count = func.count()
            return {
                "paid invoices": int(c.scalar(select(count).where(paid)) or 0),
                "subscriptions paid": int(
                    c.scalar(select(func.count(distinct(inv.c.subscription_id))).where(paid)) or 0
                ),
                "succeeded attempts": int(
                    c.scalar(
                        select(count).where(
                            new_attempt, pa.c.status == AttemptStatus.SUCCEEDED.value
                        )
                    )
                    or 0
                ),
                "attempts": int(c.scalar(select(count).where(new_attempt)) or 0),
                "renewed": int(c.scalar(select(count).where(s.c.period_end > started_at)) or 0),
                "sandbox charges": charges,
            }
    finally:
        engine.dispose()


def in_child(job: Job) -> Result:
    if job.workers > 1:
        return in_children(job)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return Result(**pool.submit(run_job, job).result())


def _worker_main(job: Job, start: Any, results: Any) -> None:
    results.put(run_job(job, start))


def in_children(job: Job) -> Result:
    """`job.workers` processes renewing one database at once, started together: the
    figures are for all of them (renewals summed over the longest wall time; CPU summed,
    PostgreSQL's counted once)."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(job.workers)
    results = context.Queue()
    started_at = datetime.now(UTC)
    processes = [
        context.Process(target=_worker_main, args=(job, start, results)) for _ in range(job.workers)
    ]
    for process in processes:
        process.start()
    parts = [Result(**results.get()) for _ in processes]
    for process in processes:
        process.join()
    summary: dict[str, int] = {}
    for part in parts:
        for name, value in part.summary.items():
            summary[name] = summary.get(name, 0) + value
    return Result(
        label=job.label,
        kind=job.kind,
        n=job.n,
        in_flight=job.in_flight,
        latency=job.latency,
        seconds=max(p.seconds for p in parts),
        cpu_self=sum(p.cpu_self for p in parts),
        cpu_pg=max(p.cpu_pg for p in parts),
        cpu_machine=max(p.cpu_machine for p in parts),
        rss_start_kib=min(p.rss_start_kib for p in parts),
        hwm_kib=max(p.hwm_kib for p in parts),
        done=sum(p.done for p in parts),
        summary=summary,
        check=_verify(job, started_at),
        statements=sum(p.statements or 0 for p in parts) or None,
    )
