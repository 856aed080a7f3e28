"""The server under test for bench/portal.py: the real portal plus two bench-only endpoints.

Started by portal.py in its own process, so the load generator never shares its GIL, and
served exactly as `fairsub serve` serves: one process (fairsub.entrypoints.serving), or
--workers processes dealt connections by a supervisor on the port (.supervisor):

    python bench/serve_app.py --port 8001 --workers 2

Settings come from FAIRSUB_* environment variables (never from a .env file). BENCH_RELAY says
where the outbox relay runs: "process" (a process of its own, as `fairsub serve` does),
"thread" (in this process) or "off".

- /bench/bare: the baseline. A plain FastAPI app of its own (no portal middleware, no
  templates) in the same process, reading one account by primary key through the portal's
  own engine, in a sync endpoint like the portal's routes (so it runs in the same thread pool).
- /bench/bare-portal: the same endpoint mounted on the portal app, so it also passes through
  the portal's middleware; the difference between the two is what that middleware costs.
- /bench/stats: how many database connections the answering worker has opened, pool
  checkouts, and its process id (portal.py asks until it has heard from every worker).
- Everything else goes to the portal exactly as `fairsub serve` builds it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from sqlalchemy import Engine, event, select

from fairsub.adapters.db.tables import accounts
from fairsub.bootstrap import bootstrap
from fairsub.config import Settings
from fairsub.entrypoints import serving, supervisor
from fairsub.entrypoints.relay_process import Relay
from fairsub.entrypoints.web.app import create_app

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BARE_PATH = "/bench/bare"
BARE_PORTAL_PATH = "/bench/bare-portal"
STATS_PATH = "/bench/stats"


def _count_connections(engine: Engine) -> dict[str, int]:
    """Counts of new DBAPI connections and of pool checkouts: a new connection per request
    means the pool is too small for the load and connections are opened and closed."""
    counts = {"connects": 0, "checkouts": 0}

    @event.listens_for(engine, "connect")
    def on_connect(*_args: Any) -> None:
        counts["connects"] += 1

    @event.listens_for(engine, "checkout")
    def on_checkout(*_args: Any) -> None:
        counts["checkouts"] += 1

    return counts


def _read_one_account(engine: Engine) -> Callable[[int], dict[str, Any]]:
    query = select(accounts.c.id, accounts.c.email)

    def read_one(id: int = 1) -> dict[str, Any]:
        with engine.connect() as connection:
            row = connection.execute(query.where(accounts.c.id == id)).first()
        if row is None:
            raise HTTPException(404)
        return {"id": row.id, "email": row.email}

    return read_one


@contextmanager
def bench_app() -> Iterator[ASGIApp]:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    container = bootstrap(settings)
    portal = create_app(container, relay=Relay(os.environ.get("BENCH_RELAY", Relay.PROCESS)))
    endpoint = _read_one_account(container.engine)
    counts = _count_connections(container.engine)

    bare = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    bare.add_api_route(BARE_PATH, endpoint, methods=["GET"])

    @bare.get(STATS_PATH)
    async def stats() -> dict[str, int]:
        return {**counts, "pid": os.getpid()}

    portal.add_api_route(BARE_PORTAL_PATH, endpoint, methods=["GET"])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in (BARE_PATH, STATS_PATH):
            await bare(scope, receive, send)
        else:  # the portal, and the lifespan events that start and stop its relay
            await portal(scope, receive, send)

    try:
        yield app
    finally:
        container.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    address = serving.Address(args.host, args.port)
    if args.workers == 1:
        with bench_app() as app:
            serving.serve_here(app, address, proxy_headers=False)
    else:
        workers = supervisor.Supervisor(
            bench_app, address, workers=args.workers, proxy_headers=False
        )
        sys.exit(workers.run())


if __name__ == "__main__":
    main()
