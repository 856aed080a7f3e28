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
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import json
import mailbox
import math
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvloop
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, insert, select, text

from _http import ERRORS as CLIENT_ERRORS
from _http import Client, Response
from _support import (
    SECRET_KEY,
    Postgres,
    _package_version,
    add_postgres_options,
    bench_settings,
    children,
    connections_held,
    cpu_seconds,
    free_port,
    machine_basics,
    machine_busy_seconds,
)
from fairsub.adapters.clock import SystemClock
from fairsub.adapters.db import migrate
from fairsub.adapters.db import tables as t
from fairsub.adapters.passwords import Argon2Hasher
from fairsub.bootstrap import Container, bootstrap
from fairsub.domain.periods import Period
from fairsub.entrypoints import supervisor
from fairsub.entrypoints.web.security import CookiePolicy, csrf_token
from fairsub.services import accounts as account_service
from fairsub.services import audit as audit_service

BENCH_DIR = Path(__file__).resolve().parent
PASSWORD = "bench-password-1"
COOKIES = CookiePolicy(secure=False)
# Sign-in is not what is measured: cheap argon2 keeps signing in thousands of users fast.
CHEAP_HASHER = Argon2Hasher(memory_kib=64, time_cost=1, parallelism=1)
TARGET_RATIO = 0.35
TARGET_DASHBOARD_P99_MS = 50.0
TARGET_TURN_OFF_P99_MS = 100.0
OTHER_WARN = 10.0  # percent of one core used by processes outside the benchmark
CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')

# Wide enough for the tables when the output goes to a file or a pipe.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


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


MACHINE = "machine"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class User:
    account_id: int
    email: str
    cookie: str  # the Cookie header this user's browser sends: session and CSRF seed
    csrf: str  # the token every form on this user's pages carries


@dataclass
class Population:
    users: list[User]
    # (index into users, subscription id) of direct subscriptions with auto-renew still on
    turnable: list[tuple[int, int]]
    subscriptions: int
    seconds_data: float = 0.0
    seconds_sign_in: float = 0.0


def _reset_sequences(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        for table in (t.accounts, t.payment_methods, t.subscriptions):
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT max(id) FROM {table.name}))"
                )
            )


def _chunks(rows: list[dict[str, Any]], size: int = 2000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def seed(container: Container, customers: int, rng: random.Random) -> Population:
    """Catalog, customers, cards and subscriptions by bulk Core inserts; then sign-ins."""
    started = time.perf_counter()
    catalog = container.catalog()
    with container.uows().write() as uow:
        uow.catalog.store(catalog)
        uow.commit()
    now = container.clock.now()
    password_hash = CHEAP_HASHER.hash(PASSWORD)
    regions = [catalog.regions[code] for code in sorted(catalog.regions)]
    plans = list(catalog.plans.values())
    account_rows, card_rows, subscription_rows = [], [], []
    turnable_by_account: dict[int, list[int]] = {}
    subscription_id = 0
    for account_id in range(1, customers + 1):
        region = rng.choice(regions)
        account_rows.append(
            {
                "id": account_id,
                "email": f"bench{account_id:06d}@example.com",
                "name": f"Bench Customer {account_id}",
                "password_hash": password_hash,
                "region": region.code,
                "locale": region.locale,
                "timezone": region.timezone,
                "created_at": now - timedelta(days=800),
            }
        )
        card_rows.append(
            {
                "id": account_id,
                "account_id": account_id,
                "brand": "Visa",
                "last4": f"{account_id % 10000:04d}",
                "expires": "12/2031",
                "created_at": now - timedelta(days=800),
            }
        )
        sold_here = [plan for plan in plans if region.code in plan.prices]
        for plan in rng.sample(sold_here, k=min(len(sold_here), rng.choice((2, 3, 4)))):
            subscription_id += 1
            price = plan.price_in(region.code)
            begun = now - timedelta(days=rng.randint(1, 700), seconds=rng.randint(0, 86399))
            begun = begun.replace(microsecond=0)
            period = Period.containing(begun, plan.term, now)
            resold = rng.random() < 0.1
            auto_renew = resold or rng.random() >= 0.1  # about 1 in 10 already turned off
            subscription_rows.append(
                {
                    "id": subscription_id,
                    "account_id": account_id,
                    "plan_code": plan.code,
                    "region": region.code,
                    "status": "active" if auto_renew else "canceled",
                    "auto_renew": auto_renew,
                    "price_minor": price.amount_minor,
                    "currency": price.currency,
                    "started_at": begun,
                    "trial_ends_at": None,
                    "period_start": period.start,
                    "period_end": period.end,
                    "payment_method_id": None if resold else account_id,
                    "reseller_name": "Bluebird Software Store" if resold else None,
                    "reseller_order": f"BB-2026-{subscription_id:06d}" if resold else None,
                    "reseller_cancel_url": (
                        "https://store.bluebird.example/account/orders" if resold else None
                    ),
                    "version": 1,
                }
            )
            if auto_renew and not resold:
                turnable_by_account.setdefault(account_id, []).append(subscription_id)
    with container.engine.begin() as connection:
        for table, rows in (
            (t.accounts, account_rows),
            (t.payment_methods, card_rows),
            (t.subscriptions, subscription_rows),
        ):
            for chunk in _chunks(rows):
                connection.execute(insert(table), chunk)
    _reset_sequences(container.engine)
    if container.engine.dialect.name == "postgresql":
        with container.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            connection.execute(text("VACUUM ANALYZE"))  # what autovacuum would soon have done
    seconds_data = time.perf_counter() - started

    started = time.perf_counter()
    users: list[User] = []
    index_of: dict[int, int] = {}
    for row in account_rows:
        signed_in = account_service.sign_in(
            container.uows(),
            container.clock,
            CHEAP_HASHER,
            email=row["email"],
            password=PASSWORD,
            address="127.0.0.1",
            user_agent="fairsub-bench",
        )
        seed_value = secrets.token_urlsafe(32)
        index_of[row["id"]] = len(users)
        users.append(
            User(
                account_id=row["id"],
                email=row["email"],
                cookie=(
                    f"{COOKIES.session_name}={signed_in.session_token}; "
                    f"{COOKIES.seed_name}={seed_value}"
                ),
                csrf=csrf_token(SECRET_KEY.encode(), seed_value),
            )
        )
    turnable = [
        (index_of[account_id], sub_id)
        for account_id, sub_ids in turnable_by_account.items()
        for sub_id in sub_ids
    ]
    rng.shuffle(turnable)
    return Population(
        users=users,
        turnable=turnable,
        subscriptions=len(subscription_rows),
        seconds_data=seconds_data,
        seconds_sign_in=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------- server


class Server:
    """The portal under test, in processes of its own, served as `fairsub serve` serves."""

    def __init__(self, url: str, data_dir: Path, *, relay: str, workers: int) -> None:
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSUB_")}
        self.env.update(
            FAIRSUB_DATABASE_URL=url,
            FAIRSUB_DATA_DIR=str(data_dir),
            FAIRSUB_SECRET_KEY=SECRET_KEY,
            FAIRSUB_BASE_URL=self.base_url,
            FAIRSUB_MAIL_BACKEND="maildir",
            FAIRSUB_ENV="dev",  # production refuses maildir; dev adds one footer line
            BENCH_RELAY=relay,
            PYTHONUNBUFFERED="1",
        )
        self.cwd = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        command = [
            sys.executable, str(BENCH_DIR / "serve_app.py"), "--port", str(self.port),
            "--workers", str(self.workers),
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited at start:\n{self.log_tail()}")
            if self._all_workers_answer():
                return
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def _all_workers_answer(self) -> bool:
        """Whether every worker answers yet: each new connection goes to one of them."""
        heard: set[int] = set()
        for _ in range(20 * self.workers):
            with suppress(httpx.HTTPError):
                answer = httpx.get(
                    f"{self.base_url}/bench/stats", headers={"Connection": "close"}, timeout=2
                )
                heard.add(answer.json()["pid"])
            if len(heard) == self.workers:
                return True
        return False

    def worker_pids(self) -> list[int]:
        """The processes that answer: the workers, or the server itself if it has none."""
        found = [
            pid
            for pid in children(self.pid)
            if b"multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        return found or [self.pid]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        with suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def check_real_flow(server: Server, population: Population) -> None:
    """Once, through real HTTP: sign in with POST /login, see the dashboard, and check that
    the turn-off form carries the CSRF token the load generator is going to send."""
    victim = population.users[-1]
    with httpx.Client(base_url=server.base_url, follow_redirects=False, timeout=30) as client:
        page = client.get("/login")
        token = CSRF_INPUT.search(page.text)
        if page.status_code != 200 or token is None:
            raise RuntimeError(f"GET /login: {page.status_code}, no csrf_token field")
        signed_in = client.post(
            "/login",
            data={
                "email": victim.email,
                "password": PASSWORD,
                "next": "/account",
                "csrf_token": token.group(1),
            },
        )
        if signed_in.status_code != 303 or COOKIES.session_name not in client.cookies:
            raise RuntimeError(f"POST /login: {signed_in.status_code}, no session cookie")
        dashboard = client.get("/account")
        if dashboard.status_code != 200 or "data-subscription=" not in dashboard.text:
            raise RuntimeError(f"GET /account after POST /login: {dashboard.status_code}")
        user_index, sub_id = population.turnable[-1]
        user = population.users[user_index]
        form = client.get(
            f"/account/subscriptions/{sub_id}/turn-off", headers={"Cookie": user.cookie}
        )
        found = CSRF_INPUT.search(form.text)
        if form.status_code != 200 or found is None or found.group(1) != user.csrf:
            raise RuntimeError(f"turn-off form: {form.status_code}, CSRF token not as expected")


# --------------------------------------------------------------------------- load


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None


@dataclass
class Scenario:
    name: str
    label: str
    next_request: Callable[[], Request | None]  # None: nothing left to send
    check: Callable[[Response], str | None]  # None when the answer is right
    ok_total: int = 0  # right answers, warm-up included


@dataclass
class Result:
    name: str
    label: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    cpu: dict[str, float]  # percent of one core over the measured window
    problems: Counter[str] = field(default_factory=Counter)
    note: str = ""
    pool: dict[str, int] = field(default_factory=dict)  # new DB connections, pool checkouts
    spread: list[int] = field(default_factory=list)  # the clients' connections, per worker

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Nearest rank: the smallest latency that q% of the requests did not exceed."""
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


def scenarios(population: Population, rng: random.Random, customers: int) -> dict[str, Scenario]:
    users = population.users
    any_seed = users[0].cookie.split("; ")[1]

    def bare(path: str) -> Callable[[], Request]:
        def make() -> Request:
            return Request("GET", f"{path}?id={rng.randint(1, customers)}", {"Cookie": any_seed})

        return make

    def json_ok(response: Response) -> str | None:
        return None if response.status_code == 200 else f"HTTP {response.status_code}"

    def dashboard() -> Request:
        return Request("GET", "/account", {"Cookie": rng.choice(users).cookie})

    def dashboard_ok(response: Response) -> str | None:
        if response.status_code != 200:
            return f"HTTP {response.status_code} {response.headers.get('location', '')}".strip()
        return None if b"data-subscription=" in response.content else "page without subscriptions"

    pool = list(population.turnable)

    def turn_off() -> Request | None:
        if not pool:
            return None
        user_index, sub_id = pool.pop()
        user = users[user_index]
        return Request(
            "POST",
            f"/account/subscriptions/{sub_id}/turn-off",
            {"Cookie": user.cookie, "Content-Type": "application/x-www-form-urlencoded"},
            f"csrf_token={user.csrf}".encode(),
        )

    def turn_off_ok(response: Response) -> str | None:
        location = response.headers.get("location", "")
        if response.status_code == 303 and location.startswith("/account/cancellations/FS-"):
            return None
        return f"HTTP {response.status_code} {location}".strip()

    return {
        "bare": Scenario("bare", "bare FastAPI endpoint, 1 row", bare("/bench/bare"), json_ok),
        "bare-portal": Scenario(
            "bare-portal",
            "same, through portal middleware",
            bare("/bench/bare-portal"),
            json_ok,
        ),
        "dashboard": Scenario("dashboard", "dashboard GET /account", dashboard, dashboard_ok),
        "turn-off": Scenario("turn-off", "turn-off POST (303)", turn_off, turn_off_ok),
    }


class CpuMeter:
    def __init__(self, processes: dict[str, tuple[int, bool]]) -> None:
        self.processes = processes  # name: (pid, with children)

    def sample(self) -> dict[str, float]:
        found = {
            name: cpu_seconds(pid, children=children)
            for name, (pid, children) in self.processes.items()
        }
        found[MACHINE] = machine_busy_seconds()
        return found


async def _pool_stats(address: Any, workers: int) -> dict[str, int]:
    """Connection counts summed over the server's workers. Each answers for itself, and the
    supervisor deals each new connection to one of them, so ask over new connections until every
    worker has answered."""
    heard: dict[int, dict[str, int]] = {}
    for _ in range(50 * workers):
        client = Client(address.hostname, address.port)
        try:
            found = json.loads((await client.request("GET", "/bench/stats", {})).content)
        finally:
            await client.aclose()
        heard[found.pop("pid")] = found
        if len(heard) == workers:
            break
    else:
        raise RuntimeError(f"heard from {len(heard)} of {workers} server workers")
    return dict(sum((Counter(counts) for counts in heard.values()), Counter()))


async def drive(
    base_url: str,
    scenario: Scenario,
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    meter: CpuMeter,
    worker_pids: list[int],
    rate: float | None = None,
    rng: random.Random | None = None,
) -> Result:
    """Closed loop (rate None): `concurrency` clients each send a request, wait for the whole
    answer and send the next. Open loop: requests arrive at `rate` per second (Poisson) and
    wait for one of `concurrency` connections; latency then counts from the arrival, so time
    spent queueing for a connection is included. Requests that complete inside the
    measured window are counted."""
    latencies: list[float] = []
    problems: Counter[str] = Counter()
    last_done = 0.0
    exhausted = False
    # One client (one keep-alive connection) per simulated browser.
    address = urlsplit(base_url)
    assert address.hostname is not None
    assert address.port is not None
    clients = [Client(address.hostname, address.port) for _ in range(concurrency)]
    # The measurements taken at the window's edges run on this same event loop: whatever they
    # spend delays every answer in flight, and those delays would be counted as the server's.
    # An httpx client built there cost 40-120 ms (it loads a CA bundle) and put 16 answers of
    # ~200 ms into every window, most of a p99. Hence our own client, connected in advance,
    # and the /proc reading in a thread.
    await _pool_stats(address, len(worker_pids))
    begin = time.perf_counter()
    window_start, window_end = begin + warmup, begin + warmup + duration

    async def send(client: Client, request: Request, since: float) -> None:
        nonlocal last_done
        try:
            response = await client.request(
                request.method, request.path, request.headers, request.body
            )
            problem = scenario.check(response)
        except CLIENT_ERRORS as error:
            problem = type(error).__name__
        done = time.perf_counter()
        if problem is None:
            scenario.ok_total += 1
        if window_start <= done <= window_end:
            latencies.append((done - since) * 1000)
            last_done = done
            if problem is not None:
                problems[problem] += 1

    async def closed_loop(client: Client) -> None:
        nonlocal exhausted
        while time.perf_counter() < window_end:
            request = scenario.next_request()
            if request is None:
                exhausted = True
                return
            await send(client, request, time.perf_counter())

    async def open_loop(rate: float) -> None:
        nonlocal exhausted
        idle: asyncio.Queue[Client] = asyncio.Queue()
        for client in clients:
            idle.put_nowait(client)

        async def arrive(request: Request, at: float) -> None:
            client = await idle.get()
            try:
                await send(client, request, at)
            finally:
                idle.put_nowait(client)

        arrivals: set[asyncio.Task[None]] = set()
        at = begin
        while True:
            at += (rng or random).expovariate(rate)
            if at >= window_end:
                break
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            request = scenario.next_request()
            if request is None:
                exhausted = True
                break
            task = asyncio.create_task(arrive(request, at))
            arrivals.add(task)
            task.add_done_callback(arrivals.discard)
        await asyncio.gather(*arrivals)

    cpu: dict[str, float] = {}
    pool: dict[str, int] = {}
    spread: list[int] = []

    async def measure() -> None:
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        before, at = await asyncio.to_thread(meter.sample), time.perf_counter()
        spread.extend(await asyncio.to_thread(connections_held, worker_pids, address.port))
        pool_before = await _pool_stats(address, len(worker_pids))
        while time.perf_counter() < window_end and not exhausted:
            await asyncio.sleep(min(0.2, max(0.0, window_end - time.perf_counter())))
        after, elapsed = await asyncio.to_thread(meter.sample), time.perf_counter() - at
        pool_after = await _pool_stats(address, len(worker_pids))
        pool.update({k: pool_after[k] - pool_before[k] for k in pool_after})
        if elapsed <= 0:
            return
        cpu.update({k: 100 * (after[k] - before[k]) / elapsed for k in after})
        # Whatever else the machine ran meanwhile: other people's work distorts figures.
        cpu["other"] = max(0.0, cpu.pop(MACHINE) - sum(cpu.values()))

    try:
        if rate is None:
            await asyncio.gather(measure(), *(closed_loop(client) for client in clients))
        else:
            await asyncio.gather(measure(), open_loop(rate))
    finally:
        for client in clients:
            await client.aclose()
    seconds = duration
    note = ""
    if exhausted:
        seconds = max(0.0, last_done - window_start)
        note = "ran out of subscriptions to turn off: raise --customers"
    return Result(
        name=scenario.name,
        label=scenario.label,
        requests=len(latencies),
        errors=sum(problems.values()),
        seconds=seconds,
        latencies_ms=latencies,
        cpu=cpu,
        problems=problems,
        note=note,
        pool=pool,
        spread=spread,
    )


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


@dataclass
class DatabaseReport:
    name: str
    results: dict[str, Result]
    notes: list[str]
    seconds: float


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


# --------------------------------------------------------------------------- report


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
    busy = [r.label for r in report.results.values() if r.cpu.get("other", 0) >= OTHER_WARN]
    if busy:
        console.print(
            f"  [yellow]other processes used ≥ {OTHER_WARN:.0f}% of a core during: "
            f"{', '.join(busy)}; those figures are low. Run again on a quiet machine.[/yellow]"
        )
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
