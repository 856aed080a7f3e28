"""The public withdrawal function (C24): "Withdraw from contract here", and its German page
"Vertrag widerrufen". No sign-in: name, email, contract, an optional reason, then the
"Confirm withdrawal" button. The answer never says whether anything matched."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Request, Response

from fairsub.bootstrap import Container
from fairsub.domain.accounts import Account
from fairsub.domain.errors import FairsubError, TooManyAttempts
from fairsub.entrypoints.web import public_forms
from fairsub.entrypoints.web.deps import ContainerDep, CsrfChecked, OptionalCustomer
from fairsub.entrypoints.web.pages import render
from fairsub.entrypoints.web.security import client_address
from fairsub.services import withdrawal

router = APIRouter()

Field = Annotated[str, Form(max_length=320)]

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "path": "/withdraw",
        "title": "Withdraw from contract here",
        "intro": "In the EU and the UK you may withdraw from a contract within 14 days of "
        "buying it, without giving a reason. You do not need to sign in.",
        "refund": "You get your money back to the card you paid with, within 14 days and "
        "with no fee; if you asked at checkout for an immediate start and to pay for the days "
        "used, those days are kept back.",
        "name": "Your name",
        "email": "Email address of your account",
        "contract": "Receipt number or reference",
        "contract_hint": "The receipt number is in your purchase email and its subject line "
        "(“receipt 1042”). A reference such as FS-7K3M-Q9TZ works too.",
        "reason": "Reason (optional)",
        "confirm": "Confirm withdrawal",
        "received": "Your withdrawal request was received",
        "neutral": "If these details match a contract that can still be withdrawn from, we "
        "have sent the confirmation to the email address on the account.",
        "received_at": "Received:",
        "no_email": "The confirmation shows what was declared and when we received it. If "
        "none arrives within a few minutes, check that you used the email address and the "
        "receipt number from your purchase email, and try again.",
        "other": "Auf Deutsch: Vertrag widerrufen",
        "other_path": "/vertrag-widerrufen",
        "other_lang": "de",
        "timezone": "UTC",
        "locale": "en_GB",
    },
    "de": {
        "path": "/vertrag-widerrufen",
        "title": "Vertrag widerrufen",
        "intro": "In der EU und im Vereinigten Königreich können Sie einen Vertrag innerhalb "
        "von 14 Tagen nach dem Kauf ohne Angabe von Gründen widerrufen. Eine Anmeldung ist "
        "nicht nötig.",
        "refund": "Sie erhalten Ihr Geld auf die Karte zurück, mit der Sie bezahlt haben: "
        "innerhalb von 14 Tagen und ohne Gebühr. Haben Sie beim Kauf den sofortigen Beginn "
        "verlangt und zugestimmt, die genutzten Tage zu bezahlen, behalten wir diese ein.",
        "name": "Ihr Name",
        "email": "E-Mail-Adresse Ihres Kontos",
        "contract": "Belegnummer oder Referenz",
        "contract_hint": "Die Belegnummer steht in Ihrer Kaufbestätigung und in deren "
        "Betreffzeile („receipt 1042“). Eine Referenz wie FS-7K3M-Q9TZ geht auch.",
        "reason": "Grund (freiwillig)",
        "confirm": "Widerruf bestätigen",
        "received": "Ihr Widerruf ist eingegangen",
        "neutral": "Wenn diese Angaben zu einem Vertrag passen, der noch widerrufen werden "
        "kann, haben wir die Bestätigung an die E-Mail-Adresse des Kontos geschickt.",
        "received_at": "Eingegangen:",
        "no_email": "Die Bestätigung nennt Ihre Erklärung und wann sie bei uns einging. "
        "Kommt in einigen Minuten keine, prüfen Sie bitte E-Mail-Adresse und Belegnummer aus "
        "Ihrer Kaufbestätigung und versuchen Sie es noch einmal.",
        "other": "In English: Withdraw from contract here",
        "other_path": "/withdraw",
        "other_lang": "en",
        "timezone": "Europe/Berlin",
        "locale": "de_DE",
    },
}

# The service speaks English; the German page says the same in German.
GERMAN_ERRORS = {
    **public_forms.GERMAN_ERRORS,
    withdrawal.TOO_MANY: "Zu viele Widerrufe von hier oder für diese E-Mail-Adresse. "
    "Bitte versuchen Sie es in einer Stunde noch einmal.",
}


def _page(
    request: Request, customer: Account | None, lang: str, status: int = 200, **context: Any
) -> Response:
    words = WORDS[lang]
    lfmt = public_forms.reader_format(customer, words["locale"], words["timezone"])
    form = context.pop("form", None) or {
        "name": customer.name if customer else "",
        "email": customer.email if customer else "",
    }
    return render(
        request,
        "withdraw.html",
        status,
        account=customer,
        t=words,
        lang=lang,
        lfmt=lfmt,
        form=form,
        **context,
    )


def _receive(
    request: Request,
    app: Container,
    customer: Account | None,
    tasks: BackgroundTasks,
    lang: str,
    fields: dict[str, str],
) -> Response:
    try:
        receipt = withdrawal.withdraw(
            app.uows,
            app.gateway,
            app.clock,
            app.refund_policy(),
            email=fields["email"],
            name=fields["name"],
            contract=fields["contract"],
            reason=fields["reason"],
            address=client_address(request, app.settings.trust_proxy_headers),
            user_agent=request.headers.get("user-agent", ""),
            defer=tasks.add_task,  # the gateway is asked after the answer has gone
        )
    except FairsubError as error:
        message = GERMAN_ERRORS.get(error.message, error.message) if lang == "de" else None
        text = message or error.message
        response = _page(
            request,
            customer,
            lang,
            error.status,
            error=text,
            error_field=error.field,
            form=fields,
        )
        if isinstance(error, TooManyAttempts):
            response.headers["Retry-After"] = str(error.retry_after_seconds)
        return response
    return _page(request, customer, lang, received_at=receipt.received_at)


@router.get("/withdraw")
def withdraw_page(request: Request, customer: OptionalCustomer) -> Response:
    return _page(request, customer, "en")


@router.get("/vertrag-widerrufen")
def widerruf_page(request: Request, customer: OptionalCustomer) -> Response:
    return _page(request, customer, "de")


@router.post("/withdraw", dependencies=[CsrfChecked])
def withdraw(
    request: Request,
    app: ContainerDep,
    customer: OptionalCustomer,
    tasks: BackgroundTasks,
    name: Field = "",
    email: Field = "",
    contract: Field = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    fields = {"name": name, "email": email, "contract": contract, "reason": reason}
    return _receive(request, app, customer, tasks, "en", fields)


@router.post("/vertrag-widerrufen", dependencies=[CsrfChecked])
def widerrufen(
    request: Request,
    app: ContainerDep,
    customer: OptionalCustomer,
    tasks: BackgroundTasks,
    name: Field = "",
    email: Field = "",
    contract: Field = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    fields = {"name": name, "email": email, "contract": contract, "reason": reason}
    return _receive(request, app, customer, tasks, "de", fields)
