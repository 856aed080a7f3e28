"""Charge cases: the "I don't recognise this charge" form beside each paid charge, and
the case page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from fairsub.domain.charge_cases import REASON_WORDS
from fairsub.domain.errors import InvalidInput
from fairsub.entrypoints.web.deps import ContainerDep, CsrfChecked, CurrentCustomer, Id
from fairsub.entrypoints.web.pages import render
from fairsub.services import case_views, cases

router = APIRouter(prefix="/account/billing")

Reason = Annotated[str, Form(max_length=40)]
Note = Annotated[str, Form(max_length=4000)]


def _form(
    request: Request,
    app: ContainerDep,
    customer: CurrentCustomer,
    attempt_id: Id,
    *,
    status: int = 200,
    error: str | None = None,
    reason: str = "",
    note: str = "",
) -> Response:
    charge = case_views.charge_in_question(app.uows(), customer.id, attempt_id)
    return render(
        request,
        "charge_case_form.html",
        status,
        account=customer,
        charge=charge,
        reasons=REASON_WORDS,
        error=error,
        form={"reason": reason, "note": note},
    )


@router.get("/charges/{attempt_id}/question")
def question_form(
    request: Request, app: ContainerDep, customer: CurrentCustomer, attempt_id: Id
) -> Response:
    return _form(request, app, customer, attempt_id)


@router.post("/charges/{attempt_id}/question", dependencies=[CsrfChecked])
def ask(
    request: Request,
    app: ContainerDep,
    customer: CurrentCustomer,
    attempt_id: Id,
    reason: Reason = "",
    note: Note = "",
) -> Response:
    try:
        case = cases.open_case(
            app.uows,
            app.gateway,
            app.clock,
            account_id=customer.id,
            charge_attempt_id=attempt_id,
            reason=reason,
            note=note,
            arrival=app.refund_policy().arrival,
        )
    except InvalidInput as error:
        return _form(
            request,
            app,
            customer,
            attempt_id,
            status=error.status,
            error=error.message,
            reason=reason,
            note=note,
        )
    # Shown only after the commit; post/redirect/get, so a reload opens nothing new.
    return RedirectResponse(f"/account/billing/cases/{case.reference}", 303)


@router.get("/cases/{reference}")
def case_page(
    request: Request, app: ContainerDep, customer: CurrentCustomer, reference: str
) -> Response:
    found = case_views.get_case(app.uows(), customer.id, reference)
    return render(request, "charge_case.html", account=customer, view=found)
