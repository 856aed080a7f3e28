"""The portal benchmark's load: its scenarios, and the clients that drive one of them
against the server while the cores' use is measured.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from _http import ERRORS as CLIENT_ERRORS
from _http import Client, Response
from _portal_data import Population
from _support import (
    connections_held,
    cpu_seconds,
    machine_busy_seconds,
)

MACHINE = "machine"


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
