"""Constants and machine readings shared by the billing benchmark's modules."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from _support import _package_version, fairsub_identity, load_average, machine_basics
from fairsub.services.ports import CardDetails

CARD = CardDetails("4242424242424242", 12, 2030, "123")
TARGET_RATE = {"SQLite": 2000.0, "PostgreSQL": 1000.0}
TARGET_RATIO = 0.50
TARGET_LATENCY_SHARE = 0.80
FLAT_SLACK_MIB = 16.0  # RSS growth at N may exceed growth at N/10 by this much and be "flat"
SEED_CHUNK = 5000
LEASE = timedelta(minutes=10)

# Wide enough for the tables when the output goes to a file or a pipe.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


# --------------------------------------------------------------------------- machine


def machine_info(pg_version: str | None) -> dict[str, str]:
    return {
        "fairsub": fairsub_identity(),
        **machine_basics(pg_version),
        "stack": f"sqlalchemy {_package_version('sqlalchemy')}, "
        f"psycopg {_package_version('psycopg')}",
        "load average (1/5/15 min) at start": load_average(),
    }


def _proc_status_kib(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0
