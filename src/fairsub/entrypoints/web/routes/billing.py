"""The signed-in customer's billing history and receipts."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from fairsub.entrypoints.web.deps import ContainerDep, CurrentCustomer, Id
from fairsub.entrypoints.web.pages import render
from fairsub.services import case_views, statements

router = APIRouter(prefix="/account/billing")


@router.get("")
def statement_page(request: Request, app: ContainerDep, customer: CurrentCustomer) -> Response:
    lines = statements.statement(app.uows(), customer.id, arrival=app.refund_policy().arrival)
    questions = case_views.customer_cases(app.uows(), customer.id)  # each charge's case, if any
    return render(request, "statement.html", account=customer, lines=lines, cases=questions)


# Before /receipts/{number}, which would otherwise take "12.txt" as its number.
@router.get("/receipts/{number}.txt")
def receipt_text(
    request: Request, app: ContainerDep, customer: CurrentCustomer, number: Id
) -> Response:
    """The receipt as a file the customer can keep, with no JavaScript needed."""
    found = statements.receipt(app.uows(), customer.id, number, arrival=app.refund_policy().arrival)
    page = render(
        request, "receipt.txt", account=customer, receipt=found, portal=app.settings.base_url
    )
    page.headers["Content-Type"] = "text/plain; charset=utf-8"
    page.headers["Content-Disposition"] = f'attachment; filename="receipt-{found.number}.txt"'
    return page


@router.get("/receipts/{number}")
def receipt_page(
    request: Request, app: ContainerDep, customer: CurrentCustomer, number: Id
) -> Response:
    found = statements.receipt(app.uows(), customer.id, number, arrival=app.refund_policy().arrival)
    return render(request, "receipt.html", account=customer, receipt=found)
