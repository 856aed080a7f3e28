"""The portal benchmark's report: targets, tables, markdown and JSON."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _portal_load import Result
from _support import OTHER_WARN, busy_warning

TARGET_RATIO = 0.35
TARGET_DASHBOARD_P99_MS = 50.0
TARGET_TURN_OFF_P99_MS = 100.0

# Wide enough for the tables when the output goes to a file or a pipe.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


@dataclass
class DatabaseReport:
    name: str
    results: dict[str, Result]
    notes: list[str]
    seconds: float


def verdicts(report: DatabaseReport) -> dict[str, tuple[str, bool | None]]:
    """Per scenario: (target text, met?), None where no target applies or can be judged."""
    found: dict[str, tuple[str, bool | None]] = {}
    bare = report.results.get("bare")
    dashboard = report.results.get("dashboard")
    turn_off = report.results.get("turn-off")
    if bare:
        found["bare"] = ("baseline (100%)", None)
    if "bare-portal" in report.results:
        found["bare-portal"] = ("-", None)
    if dashboard:
        p99_ok = dashboard.percentile(99) <= TARGET_DASHBOARD_P99_MS and dashboard.errors == 0
        if bare and bare.rate > 0:
            ratio = dashboard.rate / bare.rate
            found["dashboard"] = (
                f"≥ {TARGET_RATIO:.0%} of bare, p99 ≤ {TARGET_DASHBOARD_P99_MS:.0f} ms",
                ratio >= TARGET_RATIO and p99_ok,
            )
        else:
            found["dashboard"] = (f"p99 ≤ {TARGET_DASHBOARD_P99_MS:.0f} ms", p99_ok)
    if turn_off:
        found["turn-off"] = (
            f"p99 ≤ {TARGET_TURN_OFF_P99_MS:.0f} ms",
            turn_off.percentile(99) <= TARGET_TURN_OFF_P99_MS and turn_off.errors == 0,
        )
    return found


def _ratio(report: DatabaseReport, key: str) -> str:
    bare, result = report.results.get("bare"), report.results[key]
    if key == "bare" or bare is None or bare.rate == 0:
        return "-" if key != "bare" else "100%"
    return f"{result.rate / bare.rate:.0%}"


def _cpu(result: Result) -> str:
    shown = [k for k in ("server", "client", "postgres") if k in result.cpu]
    return " / ".join(f"{result.cpu[k]:.0f}" for k in shown)


def _server_ms(result: Result) -> str:
    """Server CPU time per request: what the request costs, whatever else ran meanwhile."""
    if result.rate <= 0 or "server" not in result.cpu:
        return "-"
    return f"{result.cpu['server'] * 10 / result.rate:.2f}"


def _connects(result: Result) -> str:
    if not result.requests or "connects" not in result.pool:
        return "-"
    return f"{result.pool['connects'] / result.requests:.2f}"


def _other(result: Result) -> str:
    other = result.cpu.get("other")
    if other is None:
        return "-"
    return f"[yellow]{other:.0f}[/yellow]" if other >= OTHER_WARN else f"{other:.0f}"


def _mark(met: bool | None) -> str:
    return "" if met is None else ("[green]PASS[/green]" if met else "[red]MISS[/red]")


def load_mode(args: argparse.Namespace) -> str:
    if args.rate is None:
        return f"closed loop, {args.concurrency} concurrent clients"
    return f"open loop, {args.rate:g} req/s offered over {args.concurrency} connections"


def print_report(report: DatabaseReport, args: argparse.Namespace) -> None:
    judged = verdicts(report)
    cpu_heading = "CPU % server / client" + (" / pg" if report.name == "PostgreSQL" else "")
    table = Table(
        title=f"{report.name}: {load_mode(args)}, {args.duration:g} s measured "
        f"after {args.warmup:g} s warm-up",
        title_justify="left",
    )
    for heading in ("Scenario", "Requests", "Errors", "req/s", "p50 ms", "p99 ms", "vs bare"):
        table.add_column(heading, justify="left" if heading == "Scenario" else "right")
    table.add_column(cpu_heading, justify="right")
    table.add_column("server CPU ms/req", justify="right")
    table.add_column("new DB conns/req", justify="right")
    table.add_column("other CPU %", justify="right")
    table.add_column("Target")
    table.add_column("")
    for key, result in report.results.items():
        target, met = judged.get(key, ("-", None))
        table.add_row(
            result.label,
            f"{result.requests:,}",
            f"{result.errors:,}",
            f"{result.rate:,.0f}",
            f"{result.percentile(50):.1f}",
            f"{result.percentile(99):.1f}",
            _ratio(report, key),
            _cpu(result),
            _server_ms(result),
            _connects(result),
            _other(result),
            target,
            _mark(met),
        )
    console.print(table)
    for result in report.results.values():
        if result.problems:
            shown = ", ".join(f"{k} x{v}" for k, v in result.problems.most_common(3))
            console.print(f"  [red]{result.label}: {shown}[/red]")
        if result.note:
            console.print(f"  [yellow]{result.label}: {result.note}[/yellow]")
    spreads = [
        f"{r.label} {' / '.join(map(str, r.spread))}"
        for r in report.results.values()
        if len(r.spread) > 1
    ]
    if spreads:
        console.print(
            "  the clients' connections, per server worker (the supervisor deals each new one): "
            + "; ".join(spreads)
        )
    console.print(
        "  [dim]CPU %: of one core, over the measured window (200% = both cores). server CPU "
        "ms/req: the CPU time of the server's processes (its workers, all their threads, and "
        "their email relays) per request. new DB conns/req: connections the workers' pools "
        "opened per request. other: processes outside the benchmark.[/dim]"
    )
    warning = busy_warning(
        [r.label for r in report.results.values() if r.cpu.get("other", 0) >= OTHER_WARN]
    )
    if warning:
        console.print(warning)
    for note in report.notes:
        console.print(f"  {note}")
    console.print(f"  [dim]{report.name} took {report.seconds:.0f} s[/dim]\n")


def markdown(reports: list[DatabaseReport]) -> str:
    lines = [
        "| Database | Scenario | req/s | p50 ms | p99 ms | vs bare | Target | Met |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for report in reports:
        judged = verdicts(report)
        for key, result in report.results.items():
            target, met = judged.get(key, ("-", None))
            lines.append(
                f"| {report.name} | {result.label} | {result.rate:,.0f} | "
                f"{result.percentile(50):.1f} | {result.percentile(99):.1f} | "
                f"{_ratio(report, key)} | {target} | "
                f"{'' if met is None else ('yes' if met else 'no')} |"
            )
    return "\n".join(lines)


def write_json(
    path: Path, reports: list[DatabaseReport], info: dict[str, str], args: argparse.Namespace
) -> None:
    document = {
        "machine": info,
        "settings": {
            k: getattr(args, k)
            for k in (
                "concurrency",
                "rate",
                "warmup",
                "duration",
                "customers",
                "relay",
                "seed",
                "server_workers",
            )
        },
        "databases": {
            report.name: {
                "seconds": round(report.seconds, 1),
                "notes": report.notes,
                "scenarios": {
                    key: {
                        "label": r.label,
                        "requests": r.requests,
                        "errors": r.errors,
                        "req_per_s": round(r.rate, 1),
                        "p50_ms": round(r.percentile(50), 2),
                        "p99_ms": round(r.percentile(99), 2),
                        "cpu_percent": {k: round(v, 1) for k, v in r.cpu.items()},
                        "server_cpu_ms_per_request": (
                            round(r.cpu.get("server", 0) * 10 / r.rate, 3) if r.rate else None
                        ),
                        "db_connections_opened": r.pool.get("connects"),
                        "connections_per_worker": r.spread,
                    }
                    for key, r in report.results.items()
                },
            }
            for report in reports
        },
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
