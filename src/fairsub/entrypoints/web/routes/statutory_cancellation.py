"""The German cancellation button (C2-C4, § 312k BGB): "Verträge hier kündigen" in every
page's footer opens this page directly. No sign-in, no survey, no offer: the kind of
termination, who and which contract, the wished end, then "jetzt kündigen". The answer
shows what was declared and when it arrived, and never whether anything matched."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from fairsub.domain.accounts import Account
from fairsub.domain.errors import CsrfFailed, FairsubError, TooManyAttempts
from fairsub.entrypoints.web import public_forms
from fairsub.entrypoints.web.deps import ContainerDep, OptionalCustomer
from fairsub.entrypoints.web.pages import render
from fairsub.entrypoints.web.security import check_csrf, client_address
from fairsub.services import statutory_cancellation as cancellation

router = APIRouter()

PATH = "/vertraege-kuendigen"
LOCALE, TIMEZONE = "de_DE", "Europe/Berlin"

Field = Annotated[str, Form(max_length=320)]

# The service speaks English; this page says the same in German.
GERMAN_ERRORS = {
    **public_forms.GERMAN_ERRORS,
    cancellation.KIND_MISSING: "Bitte wählen Sie eine ordentliche oder eine außerordentliche "
    "Kündigung.",
    cancellation.REASON_MISSING: "Eine außerordentliche Kündigung braucht ihren Grund. "
    "Bitte nennen Sie ihn.",
    cancellation.REASON_TOO_LONG: "Bitte fassen Sie den Grund in weniger als 2000 Zeichen.",
    cancellation.END_MISSING: "Bitte wählen Sie den nächstmöglichen Zeitpunkt oder ein "
    "späteres Datum.",
    cancellation.DATE_INVALID: "Bitte geben Sie das spätere Vertragsende als Datum ab heute "
    "ein, zum Beispiel 31.03.2027, oder wählen Sie den nächstmöglichen Zeitpunkt.",
    cancellation.TOO_MANY: "Zu viele Kündigungen von hier oder für diese E-Mail-Adresse. "
    "Bitte versuchen Sie es in einer Stunde noch einmal.",
}
CSRF_FAILED = (
    "Dieses Formular ist abgelaufen oder kam nicht von dieser Seite. Es wurde nichts "
    "geändert: Bitte senden Sie es noch einmal."
)


def _page(
    request: Request, customer: Account | None, status: int = 200, **context: Any
) -> Response:
    form = context.pop("form", None) or {
        "kind": "ordinary",
        "end": "earliest",
        "name": customer.name if customer else "",
        "email": customer.email if customer else "",
    }
    return render(
        request,
        "statutory_cancellation.html",
        status,
        account=customer,
        lfmt=public_forms.reader_format(customer, LOCALE, TIMEZONE),
        path=PATH,
        form=form,
        **context,
    )


@router.get(PATH)
def cancellation_page(request: Request, customer: OptionalCustomer) -> Response:
    return _page(request, customer)


@router.post(PATH)
def cancel(
    request: Request,
    app: ContainerDep,
    customer: OptionalCustomer,
    csrf_token: Annotated[str | None, Form()] = None,
    kind: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    name: Field = "",
    email: Field = "",
    contract: Field = "",
    end: Annotated[str, Form(max_length=20)] = "",
    end_date: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    fields = {
        "kind": kind,
        "reason": reason,
        "name": name,
        "email": email,
        "contract": contract,
        "end": end,
        "end_date": end_date,
    }
    try:
        # Checked here rather than by CsrfChecked so that a stale form comes back filled
        # in, with the message, instead of as an error page.
        check_csrf(app.secret_key, request.app.state.cookies.seed(request), csrf_token)
        receipt = cancellation.cancel(
            app.uows,
            app.clock,
            **fields,
            address=client_address(request, app.settings.trust_proxy_headers),
            user_agent=request.headers.get("user-agent", ""),
        )
    except CsrfFailed as error:
        return _page(request, customer, error.status, error=CSRF_FAILED, form=fields)
    except FairsubError as error:
        message = GERMAN_ERRORS.get(error.message, error.message)
        response = _page(
            request,
            customer,
            error.status,
            error=message,
            error_field=error.field,
            form=fields,
        )
        if isinstance(error, TooManyAttempts):
            response.headers["Retry-After"] = str(error.retry_after_seconds)
        return response
    return _page(request, customer, receipt=receipt)
