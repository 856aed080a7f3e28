"""Development-only pages: the demo mailbox. Not mounted when FAIRSUB_ENV=production."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from fairsub.adapters.email.maildir import MaildirMailer
from fairsub.entrypoints.web.deps import ContainerDep, OptionalCustomer
from fairsub.entrypoints.web.pages import render

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
