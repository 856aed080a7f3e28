"""Cancel now with a refund in a real browser, against the real server, SMTP included.

The demo customer's annual plan (bought 20 days ago, its purchase on record) offers its
full price back beside turning auto-renew off; one confirmation later the service has
ended, the statement shows the refund with when it should arrive, and the email carries
the same reference. The monthly plan, renewed days ago, shows no refund button and says
why. The FakeClock says 27 November 2026, 12:00 UTC; the customer is in Europe/London.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from fairsub.domain.subscriptions import Subscription
from fairsub.services import subscriptions as subs
from fairsub.services.demo import DEMO_EMAIL
from tests.builders import paid_history
from tests.e2e.live_portal import LivePortal
from tests.e2e.test_browser_journey import (
    ANNUAL,
    MONTHLY,
    REFERENCE,
    URL,
    card,
    emails_about,
    fact,
    sign_in,
    text_of,
)

if TYPE_CHECKING:
    from tests.e2e.conftest import PageOpener, SmtpInbox

pytestmark = pytest.mark.browser

# What tests/test_docs.py calls a phone number (C30); ISO dates in reasons are not one.
PHONE = re.compile(r"(?<![\w.-])\+?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?![\w-])")
# Sent on Friday 27 November 2026: 5 to 10 business days later.
ARRIVES = "between 4 December 2026 and 11 December 2026"


def with_payments(portal: LivePortal) -> dict[str, Subscription]:
    """The demo customer's subscriptions by product, with the direct ones' payments on
    record (the shared fixture seeds the demo without its history)."""
    container = portal.container
    with container.uows().read() as uow:
        found = uow.accounts.by_email(DEMO_EMAIL)
    assert found is not None
    mine = {s.product_name: s for s in subs.list_subscriptions(container.uows(), found[0].id)}
    paid_history(container, mine[ANNUAL])
    paid_history(container, mine[MONTHLY])
    return mine


def open_subscription(page: Page, product: str) -> None:
    card(page, product).get_by_role("link", name="Details").click()
    expect(page.get_by_role("heading", name=re.compile(rf"^{re.escape(product)} "))).to_be_visible()


def test_c28_cancel_now_ends_the_annual_plan_refunds_it_and_proves_it_on_page_statement_and_email(
    open_page: PageOpener, inbox: SmtpInbox, live_portal: LivePortal
) -> None:
    with_payments(live_portal)
    page = open_page()
    sign_in(page)
    open_subscription(page, ANNUAL)

    # Two choices, side by side, in plain words.
    turn_off = page.get_by_role(
        "heading", name="Turn off auto-renew — keep it until 7 November 2027"
    )
    refund = page.get_by_role("heading", name="Cancel now and get £79.99 back")
    expect(turn_off).to_be_visible()
    expect(refund).to_be_visible()
    left, right = turn_off.bounding_box(), refund.bounding_box()
    assert left is not None and right is not None
    assert left["x"] < right["x"] and abs(left["y"] - right["y"]) < 40, (left, right)
    offer = page.locator("section.refund-offer")
    expect(offer).to_contain_text("Full refund: you are within 60 days of your purchase")
    expect(offer).to_contain_text("Offer open until 6 January 2027, 12:00:00 GMT")
    expect(offer).to_contain_text(f"Visa ending 4242, arriving {ARRIVES}")

    offer.get_by_role("link", name="Cancel now and get £79.99 back").click()
    expect(
        page.get_by_role("heading", name="Cancel Larkspur 360 now and get £79.99 back?")
    ).to_be_visible()
    page.get_by_role("button", name="Cancel now and get £79.99 back").click()

    expect(page.get_by_role("heading", name="Cancelled — £79.99 refund on its way")).to_be_visible()
    proof = page.locator("dl.proof")
    reference = fact(proof, "Reference number").inner_text().strip()
    assert REFERENCE.match(reference), reference
    expect(fact(proof, "Refund")).to_have_text(
        "£79.99 back to Visa ending 4242, the card that paid"
    )
    expect(fact(proof, "Refund status")).to_contain_text("On its way")
    expect(fact(proof, "Refund status")).to_contain_text(f"arrives {ARRIVES}")
    expect(fact(proof, "Service ended")).to_contain_text("27 November 2026")

    # The statement: the refund of the purchase receipt, and when the money arrives.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    row = page.locator("tr.line", has_text="Refund of receipt")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("-£79.99")
    expect(row).to_contain_text(reference)
    expect(row.locator(".refund-state")).to_contain_text(f"On its way arrives {ARRIVES}")

    # The same proof by email, over SMTP, with the reference.
    (email,) = emails_about(inbox, reference)
    assert email["To"] == DEMO_EMAIL
    assert "£79.99 refund on its way" in str(email["Subject"])  # as the page shows it
    for body in (text_of(email, "plain"), text_of(email, "html")):
        assert reference in body
        assert "£79.99" in body
        assert "Visa ending 4242" in body
        assert "4 December 2026" in body and "11 December 2026" in body
        without_links = URL.sub(" ", body)
        assert not PHONE.search(without_links)
        assert all(link.startswith(live_portal.url + "/") for link in URL.findall(body))


def test_c28_the_monthly_plan_shows_no_refund_button_and_says_why(
    open_page: PageOpener, live_portal: LivePortal
) -> None:
    with_payments(live_portal)
    page = open_page(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    sign_in(page)
    open_subscription(page, MONTHLY)

    expect(
        page.get_by_role("heading", name="Turn off auto-renew — keep it until 24 December 2026")
    ).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Cancel now"))).to_have_count(0)
    expect(page.locator("#no-refund")).to_have_text(
        re.compile(r"^No refund: the refund policy gives none for the renewal of a monthly plan")
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
