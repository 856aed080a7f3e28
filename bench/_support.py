"""What both benchmarks share: the machine, process CPU readings, a throwaway PostgreSQL."""

from __future__ import annotations

import argparse
import glob
import importlib.metadata
import os
import platform
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path

from sqlalchemy import create_engine, text

from fairsub.config import Settings

SECRET_KEY = "bench-" + "k" * 40


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def bench_settings(url: str, data_dir: Path, **extra: object) -> Settings:
    """fairsub's settings for a benchmark database: no .env, a fixed key, quiet logs."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=url,
        data_dir=data_dir,
        secret_key=SECRET_KEY,
        log_level="warning",
        **extra,
    )


def add_postgres_options(parser: argparse.ArgumentParser) -> None:
    """--pg-bin and --pg-setting, the same for every benchmark that starts a PostgreSQL."""
    parser.add_argument(
        "--pg-bin",
        default=None,
        help="PostgreSQL bin directory; when not given, the newest /usr/lib/postgresql/*/bin",
    )
    parser.add_argument(
        "--pg-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra PostgreSQL setting, repeatable; otherwise PostgreSQL's own defaults",
    )


# Percent of one core used by processes outside the benchmark above which its figures
# are marked unreliable.
OTHER_WARN = 10.0


def busy_warning(busy: list[str]) -> str | None:
    """The warning for the runs during which other processes took OTHER_WARN or more."""
    if not busy:
        return None
    return (
        f"  [yellow]other processes used ≥ {OTHER_WARN:.0f}% of a core during: "
        f"{', '.join(busy)}; those figures are low. Run again on a quiet machine.[/yellow]"
    )


def fairsub_identity() -> str:
    """Which fairsub code is measured: its git commit, and whether src/ has changes."""
    import fairsub

    package = Path(fairsub.__file__).resolve().parent
    where = package.parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        changed = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--", str(package)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return f"{package} (not in a git checkout)"
    return f"commit {commit}" + (" + uncommitted changes in src/" if changed else "")


def load_average() -> str:
    with suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def machine_basics(pg_version: str | None) -> dict[str, str]:
    """The machine and the databases, as each benchmark prints them first."""
    cpu = "?"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": f"{cpu}: {os.cpu_count()} cores, {usable} usable by this process",
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version or "not available",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int | str) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()  # fields from the 3rd ("state") on


def cpu_seconds(pid: int | str, *, children: bool = False) -> float:
    """User+system CPU of a process (all its threads); with children=True also the CPU of
    its descendants: those it has reaped, and those still running at any depth (PostgreSQL's
    backends; the portal's workers and each worker's email relay)."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped children
        parents: dict[str, str] = {}
        own: dict[str, int] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                other = _stat_fields(entry.name)
            except OSError:
                continue
            parents[entry.name] = other[1]  # ppid
            own[entry.name] = int(other[11]) + int(other[12])
        for candidate in own:
            ancestor = parents.get(candidate)
            while ancestor is not None and ancestor != str(pid):
                ancestor = parents.get(ancestor)
            if ancestor is not None:
                ticks += own[candidate]
    return ticks / _TICKS


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def connections_held(pids: list[int], port: int) -> list[int]:
    """How many established TCP connections to `port` each process holds: how the load
    generator's connections were dealt among the server's workers."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if fields[3] == "01" and local_port == port:  # 01: ESTABLISHED
                    inodes.add(fields[9])
    held = []
    for pid in pids:
        count = 0
        with suppress(OSError):
            for fd in os.scandir(f"/proc/{pid}/fd"):
                with suppress(OSError):
                    target = os.readlink(fd.path)
                    count += target.startswith("socket:[") and target[8:-1] in inodes
        held.append(count)
    return held


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


# --------------------------------------------------------------------------- PostgreSQL


class Postgres:
    """A throwaway PostgreSQL cluster: initdb, pg_ctl start on a free port, stop, delete.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres` user."""

    def __init__(self, bindir: Path, settings: list[str], prefix: str = "fairsub-bench-pg-"):
        self.bindir = bindir
        self.settings = settings
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix=prefix))
        self.data = self.base / "data"
        self.started = False

    @staticmethod
    def find(explicit: str | None) -> Path | None:
        if explicit:
            return Path(explicit) if (Path(explicit) / "pg_ctl").exists() else None

        def version(bindir: str) -> tuple[int, str]:
            name = Path(bindir).parent.name
            return (int(name) if name.isdigit() else 0, name)

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)
        if found:
            return Path(found[-1])
        pg_ctl = shutil.which("pg_ctl")
        return Path(pg_ctl).parent if pg_ctl else None

    def _run(self, *args: str) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            log = self.base / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}\n{tail}".strip()
            )

    def start(self) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.base, user.pw_uid, user.pw_gid)
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        options = [f"-p {self.port}", f"-k {self.base}", "-c listen_addresses=127.0.0.1"]
        options += [f"-c {setting}" for setting in self.settings]
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", " ".join(options), "-w",
            "-l", str(self.base / "log"), "start",
        )  # fmt: skip
        self.started = True

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def postmaster_pid(self) -> int | None:
        with suppress(OSError, ValueError, IndexError):
            return int((self.data / "postmaster.pid").read_text().split()[0])
        return None

    def admin(self, *statements: str) -> None:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
        engine.dispose()

    def create_database(self, name: str, template: str | None = None) -> str:
        copy = f' TEMPLATE "{template}"' if template else ""
        self.admin(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"{copy}'
        )
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def version(self) -> str:
        admin = create_engine(self.admin_url)
        with admin.connect() as connection:
            version = str(connection.execute(text("SHOW server_version")).scalar_one())
            shown = {
                name: str(connection.execute(text(f"SHOW {name}")).scalar_one())
                for name in ("fsync", "synchronous_commit", "shared_buffers")
            }
        admin.dispose()
        return f"{version} ({', '.join(f'{k}={v}' for k, v in shown.items())})"

    def stop(self) -> None:
        try:
            if self.started:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        finally:
            self.started = False
            shutil.rmtree(self.base, ignore_errors=True)
