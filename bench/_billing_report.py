"""The billing benchmark's report: tables, targets, a profile's hot spots, markdown."""

from __future__ import annotations

import argparse
import io
import pstats
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from _billing_common import (
    FLAT_SLACK_MIB,
    TARGET_LATENCY_SHARE,
    TARGET_RATE,
    TARGET_RATIO,
    console,
)
from _billing_jobs import Result
from _support import OTHER_WARN, busy_warning

# --------------------------------------------------------------------------- report


@dataclass
class Report:
    name: str
    results: dict[str, Result] = field(default_factory=dict)
    setup_seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load: list[str] = field(default_factory=list)


def targets(report: Report, args: argparse.Namespace) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met?) for each target of the issue."""
    r = report.results
    found: list[tuple[str, str, bool | None]] = []
    fairsub, base = r.get("fairsub"), r.get("baseline")
    if fairsub:
        goal = TARGET_RATE[report.name]
        found.append(
            (
                f"fairsub ≥ {goal:,.0f} renewals/s (zero latency)",
                f"{fairsub.rate:,.0f}/s",
                fairsub.rate >= goal,
            )
        )
    if fairsub and base and base.rate > 0:
        ratio = fairsub.rate / base.rate
        found.append(
            (
                f"fairsub ≥ {TARGET_RATIO:.0%} of plain-SQL baseline",
                f"{ratio:.0%} ({fairsub.rate:,.0f} / {base.rate:,.0f})",
                ratio >= TARGET_RATIO,
            )
        )
    latency = r.get("fairsub-latency")
    if latency and args.latency_ms > 0:
        ceiling = args.in_flight / (args.latency_ms / 1000)
        share = latency.rate / ceiling
        found.append(
            (
                f"≥ {TARGET_LATENCY_SHARE:.0%} of C/L = {args.in_flight}/"
                f"{args.latency_ms:g} ms = {ceiling:,.0f}/s",
                f"{share:.0%} ({latency.rate:,.0f}/s)",
                share >= TARGET_LATENCY_SHARE,
            )
        )
    small = r.get("fairsub-small")
    if fairsub and small:
        extra = fairsub.growth_mib - small.growth_mib
        slope = extra * 1024 * 1024 / max(1, fairsub.done - small.done)
        found.append(
            (
                f"memory flat: RSS growth at N ≤ at N/10 + {FLAT_SLACK_MIB:g} MiB",
                f"{small.growth_mib:.1f} → {fairsub.growth_mib:.1f} MiB ({slope:+.0f} B/renewal)",
                extra <= FLAT_SLACK_MIB,
            )
        )
    workers = r.get("fairsub-workers")
    if fairsub and workers and fairsub.rate > 0:
        found.append(
            (
                f"{args.workers} workers faster than one",
                f"{workers.rate / fairsub.rate:.2f}x ({workers.rate:,.0f}/s)",
                workers.rate > fairsub.rate,
            )
        )
    keys = ("fairsub-small", "fairsub", "fairsub-workers", "fairsub-latency", "baseline")
    for key in (*keys, "baseline-latency"):
        result = r.get(key)
        if result is not None:
            found.append(
                (
                    f"{result.label}: every subscription renewed once",
                    "yes" if result.renewed_once else _check_text(result),
                    result.renewed_once,
                )
            )
    return found


def _check_text(result: Result) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in result.check.items()) + f" (want {result.n:,})"


def _mark(met: bool | None) -> str:
    return "" if met is None else ("[green]PASS[/green]" if met else "[red]MISS[/red]")


def _other(result: Result) -> str:
    other = result.cpu_percent("other")
    return f"[yellow]{other:.0f}[/yellow]" if other >= OTHER_WARN else f"{other:.0f}"


def print_report(report: Report, args: argparse.Namespace) -> None:
    table = Table(title=f"{report.name}: batch {args.batch}, N = {args.n:,}", title_justify="left")
    for heading in (
        "Scenario",
        "N",
        "latency ms x in flight",
        "seconds",
        "per s",
        "vs baseline",
        "CPU % self" + (" / pg" if report.name == "PostgreSQL" else ""),
        "other CPU %",
        "CPU ms each" + (" (self+pg)" if report.name == "PostgreSQL" else ""),
        "peak RSS growth MiB",
        "renewed once",
    ):
        table.add_column(heading, justify="left" if heading == "Scenario" else "right")
    baselines = {
        "fairsub": "baseline",
        "fairsub-small": "baseline",
        "fairsub-workers": "baseline",
        "fairsub-latency": "baseline-latency",
    }
    for key, result in report.results.items():
        base = report.results.get(baselines.get(key, ""))
        versus = f"{result.rate / base.rate:.0%}" if base and base.rate else "-"
        cpu = f"{result.cpu_percent('self'):.0f}"
        if report.name == "PostgreSQL":
            cpu += f" / {result.cpu_percent('pg'):.0f}"
        once = result.renewed_once
        table.add_row(
            result.label,
            f"{result.n:,}",
            f"{result.latency * 1000:g} x {result.in_flight}",
            f"{result.seconds:.1f}",
            f"{result.rate:,.0f}",
            versus,
            cpu,
            _other(result),
            f"{result.cpu_ms_each:.2f}",
            f"{result.growth_mib:.1f}",
            "-" if once is None else ("yes" if once else "[red]NO[/red]"),
        )
    console.print(table)
    verdicts = Table(title=f"{report.name}: targets (informational)", title_justify="left")
    for heading in ("Target", "Measured", ""):
        verdicts.add_column(heading)
    for target, measured, met in targets(report, args):
        verdicts.add_row(target, measured, _mark(met))
    console.print(verdicts)
    setup = ", ".join(f"{k} {v:.1f} s" for k, v in report.setup_seconds.items())
    console.print(f"  set-up (not counted): {setup}")
    for result in report.results.values():
        if result.renewed_once is False:
            console.print(f"  [red]{result.label}: {_check_text(result)}[/red]")
    warning = busy_warning(
        [r.label for r in report.results.values() if r.cpu_percent("other") >= OTHER_WARN]
    )
    if warning:
        console.print(warning)
    for note in report.notes:
        console.print(f"  {note}")
    console.print(
        f"  [dim]{report.name} took {report.seconds:.0f} s; load average "
        f"{' → '.join(report.load)}[/dim]\n"
    )


def print_profile(path: Path, lines: int) -> None:
    for order in ("tottime", "cumulative"):
        buffer = io.StringIO()
        pstats.Stats(str(path), stream=buffer).sort_stats(order).print_stats(lines)
        text_out = buffer.getvalue()
        start = text_out.find("   ncalls")
        console.print(f"[bold]{path.name}: top {lines} by {order}[/bold]")
        console.print(text_out[start:] if start >= 0 else text_out, markup=False)


def markdown(reports: list[Report], args: argparse.Namespace) -> str:
    lines = [
        "| Database | Scenario | N | per s | vs baseline | CPU ms each | peak RSS growth MiB "
        "| other CPU % |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    pairs = {
        "fairsub": "baseline",
        "fairsub-small": "baseline",
        "fairsub-latency": "baseline-latency",
    }
    for report in reports:
        for key, result in report.results.items():
            base = report.results.get(pairs.get(key, ""))
            versus = f"{result.rate / base.rate:.0%}" if base and base.rate else "-"
            lines.append(
                f"| {report.name} | {result.label} | {result.n:,} | {result.rate:,.0f} | "
                f"{versus} | {result.cpu_ms_each:.2f} | {result.growth_mib:.1f} | "
                f"{result.cpu_percent('other'):.0f} |"
            )
    lines += ["", "| Database | Target | Measured | Met |", "| --- | --- | --- | --- |"]
    for report in reports:
        for target, measured, met in targets(report, args):
            shown = "" if met is None else ("yes" if met else "no")
            lines.append(f"| {report.name} | {target} | {measured} | {shown} |")
    return "\n".join(lines)
