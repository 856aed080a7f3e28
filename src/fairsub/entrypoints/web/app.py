"""The portal application: middleware, error pages, and the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from fairsub.bootstrap import Container, bootstrap
from fairsub.config import Settings
from fairsub.domain.errors import FairsubError
from fairsub.entrypoints import heap
from fairsub.entrypoints.relay_process import Relay, RelayProcess
from fairsub.entrypoints.web.deps import SignInRequiredError
from fairsub.entrypoints.web.middleware import SeedAndHeaders
from fairsub.entrypoints.web.pages import render
from fairsub.entrypoints.web.routes import (
    account,
    auth,
    billing,
    dev,
    public,
    statutory_cancellation,
)
from fairsub.entrypoints.web.routes import cancel_now as cancel_now_routes
from fairsub.entrypoints.web.routes import cases as case_routes
from fairsub.entrypoints.web.routes import checkout as checkout_routes
from fairsub.entrypoints.web.routes import payment_methods as payment_method_routes
from fairsub.entrypoints.web.routes import withdrawal as withdrawal_routes
from fairsub.entrypoints.web.security import SECURITY_HEADERS, CookiePolicy
from fairsub.entrypoints.web.threads import DbThreads
from fairsub.entrypoints.worker import Worker
from fairsub.services.ports import GatewayUnavailable

log = structlog.get_logger(__name__)


def create_app(
    container: Container, *, relay: Relay = Relay.THREAD, worker: Worker | None = None
) -> FastAPI:
    """The portal. `worker`, if given, runs beside it (the demo does this)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        heap.settle()
        relay_process = RelayProcess() if relay is Relay.PROCESS else None
        if relay_process is not None:
            relay_process.start()
            container.uows.on_commit = relay_process.nudge
        elif relay is Relay.THREAD:
            container.relay.start()
        if worker is not None:
            worker.start()
        yield
        if worker is not None:
            worker.stop()
        if relay_process is not None:
            container.uows.on_commit = container.relay.nudge
            relay_process.stop()
        container.relay.stop()

    app = FastAPI(
        title="fairsub portal",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.container = container
    app.state.worker = worker
    cookies = CookiePolicy(secure=container.settings.base_url.startswith("https://"))
    app.state.cookies = cookies
    app.state.db_threads = DbThreads.for_dialect(container.engine.dialect.name)

    app.add_middleware(SeedAndHeaders, cookies=cookies)

    @app.exception_handler(SignInRequiredError)
    async def sign_in_required(request: Request, error: SignInRequiredError) -> Response:
        return RedirectResponse(f"/login?next={quote(error.next_path)}", status_code=303)

    @app.exception_handler(FairsubError)
    async def fairsub_error(request: Request, error: FairsubError) -> Response:
        return render(
            request,
            "error.html",
            error.status,
            message=error.message,
            account=getattr(request.state, "account", None),
        )

    @app.exception_handler(GatewayUnavailable)
    async def gateway_unavailable(request: Request, error: GatewayUnavailable) -> Response:
        # A refused API key included: the customer can only wait, and the operator is told.
        log.error("gateway_unavailable", path=request.url.path, reason=str(error))
        return render(
            request,
            "error.html",
            503,
            message="Payments are not available right now. Nothing was charged and nothing "
            "was changed; please try again later.",
            account=getattr(request.state, "account", None),
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError) -> Response:
        if all(problem.get("loc", ("",))[0] == "path" for problem in error.errors()):
            # /account/subscriptions/abc names nothing: that is "not found", not bad input.
            return render(
                request,
                "error.html",
                404,
                message="There is no such page.",
                account=getattr(request.state, "account", None),
            )
        return render(
            request,
            "error.html",
            422,
            message=_what_was_wrong(error),
            account=getattr(request.state, "account", None),
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        message = "There is no such page." if error.status_code == 404 else str(error.detail)
        page = render(
            request,
            "error.html",
            error.status_code,
            message=message,
            account=getattr(request.state, "account", None),
        )
        page.headers.update(error.headers or {})  # 405's Allow, say
        return page

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unhandled_error", path=request.url.path)
        return HTMLResponse(
            "<!doctype html><title>Something went wrong</title><h1>Something went wrong</h1>"
            "<p>Nothing was changed. Please try again in a moment.</p>"
            # The contract links stay reachable even here (C2, C24).
            '<p><a href="/withdraw">Withdraw from contract here</a> · '
            '<a href="/vertrag-widerrufen" lang="de">Vertrag widerrufen</a> · '
            '<a href="/vertraege-kuendigen" lang="de">Verträge hier kündigen</a></p>',
            status_code=500,
            # Starlette answers this outside every middleware: the headers come from here.
            headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
        )

    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(public.router)
    app.include_router(auth.router)
    app.include_router(account.router)
    app.include_router(billing.router)
    app.include_router(checkout_routes.router)
    app.include_router(payment_method_routes.router)
    app.include_router(withdrawal_routes.router)
    app.include_router(statutory_cancellation.router)
    app.include_router(case_routes.router)
    app.include_router(cancel_now_routes.router)
    if container.settings.is_dev:
        app.include_router(dev.router)
    return app


def _what_was_wrong(error: RequestValidationError) -> str:
    """The answer to a form the portal's own pages cannot send (their fields have the same
    limits): which field was too long, if that was it. Going back keeps what was typed."""
    for problem in error.errors():
        if problem.get("type") == "string_too_long":
            field = str(problem["loc"][-1]).replace("_", " ")
            limit = problem.get("ctx", {}).get("max_length")
            return (
                f"The {field} sent was longer than {limit} characters. Nothing was changed: "
                "go back, shorten it and try again."
            )
    return (
        "Some of what was sent is missing or not valid. Nothing was changed: go back and try again."
    )


@contextmanager
def portal_from_environment(relay: Relay) -> Iterator[FastAPI]:
    """The portal wired from FAIRSUB_* settings, for a worker process of `fairsub serve
    --workers N` (see entrypoints/supervisor.py); its container is closed when it stops."""
    container = bootstrap(Settings())
    try:
        yield create_app(container, relay=relay)
    finally:
        container.close()
