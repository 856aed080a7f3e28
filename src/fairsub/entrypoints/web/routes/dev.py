"""Development-only pages: the demo mailbox. Not mounted when FAIRSUB_ENV=production."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from fairsub.adapters.clock import OffsetFileClock
from fairsub.adapters.email.maildir import MaildirMailer
from fairsub.domain.errors import NotAllowed
from fairsub.entrypoints.web.deps import (
    ContainerDep,
    CsrfChecked,
    OptionalCustomer,
    SessionToken,
)
from fairsub.entrypoints.web.pages import render
from fairsub.services import accounts

router = APIRouter(prefix="/dev")


@router.get("/mailbox")
def mailbox(
    request: Request, app: ContainerDep, customer: OptionalCustomer, open: str | None = None
) -> Response:
    mailer = app.mailer
    messages = mailer.messages() if isinstance(mailer, MaildirMailer) else []
    selected = next((m for m in messages if m.key == open), messages[0] if messages else None)
    return render(
        request,
        "mailbox.html",
        account=customer,
        messages=messages,
        selected=selected,
        maildir=isinstance(mailer, MaildirMailer),
    )


@router.get("/mailbox/{key}.html")
def mailbox_html(app: ContainerDep, key: str) -> Response:
    mailer = app.mailer
    messages = mailer.messages() if isinstance(mailer, MaildirMailer) else []
    found = next((m for m in messages if m.key == key), None)
    if found is None:
        return Response("No such email.", status_code=404, media_type="text/plain")
    # The email's own inline styles need a looser policy than the portal's pages.
    return Response(
        found.html,
        media_type="text/html",
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:; frame-ancestors 'self'",
            "X-Frame-Options": "SAMEORIGIN",
        },
    )


@router.post("/clock/advance", dependencies=[CsrfChecked])
def advance_clock(
    request: Request,
    app: ContainerDep,
    customer: OptionalCustomer,
    session: SessionToken,
    days: Annotated[int, Form(ge=1, le=400)] = 1,
    back: Annotated[str, Form(max_length=500)] = "/account",
) -> Response:
    """Demo only: let days pass on the test clock, doing each day's billing work. Whoever
    pressed the button stays signed in: the days are the simulation's, not time away."""
    from fairsub.entrypoints.worker import Worker

    if not isinstance(app.clock, OffsetFileClock):
        raise NotAllowed("The clock can only be moved when FAIRSUB_CLOCK=test.")
    worker = request.app.state.worker or Worker(app)
    before = app.clock.now()
    worker.advance(days)
    if customer is not None and session is not None:
        accounts.carry_session_forward(app.uows(), session, app.clock.now() - before)
    target = back if back.startswith("/") and not back.startswith("//") else "/account"
    return RedirectResponse(target, status_code=303)
