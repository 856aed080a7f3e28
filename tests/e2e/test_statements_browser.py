"""Billing history in a real browser: readable on a 375 px phone, and a receipt that prints
clean (C31)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from fairsub.services import billing, subscriptions
from fairsub.services.demo import DEMO_EMAIL
from tests.e2e.live_portal import LivePortal
from tests.e2e.test_browser_journey import sign_in
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from tests.e2e.conftest import PageOpener

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}


def charge_the_monthly_plan(portal: LivePortal, clock: FakeClock) -> None:
    """Move the clock past the demo customer's monthly renewal and run billing."""
    container = portal.container
    with container.uows().read() as uow:
        found = uow.accounts.by_email(DEMO_EMAIL)
    assert found is not None
    (monthly,) = [
        s
        for s in subscriptions.list_subscriptions(container.uows(), found[0].id)
        if s.plan_name == "Antivirus Monthly"
    ]
    clock.set(monthly.period.end + timedelta(minutes=1))
    billing.run(container.uows, container.gateway, clock)


def test_c31_statement_fits_a_phone_with_every_column_labelled(
    open_page: PageOpener, live_portal: LivePortal, clock: FakeClock
) -> None:
    charge_the_monthly_plan(live_portal, clock)
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(page)
    page.get_by_role("link", name="Billing", exact=True).click()
    expect(page.get_by_role("heading", name="Billing history")).to_be_visible()

    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    row = page.locator("tr.line").first
    box = row.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    # Stacked: each value carries its column's name, since the header row is hidden.
    labels = row.locator("td").evaluate_all(
        "cells => cells.map(c => getComputedStyle(c, '::before').content)"
    )
    assert labels == ['"Date"', '"Description"', '"Amount"', '"Status"', '"Receipt"']
    expect(row).to_contain_text("£4.49")
    expect(row).to_contain_text("Paid")


def test_receipt_prints_without_the_site_chrome_and_saves_without_javascript(
    open_page: PageOpener, live_portal: LivePortal, clock: FakeClock
) -> None:
    charge_the_monthly_plan(live_portal, clock)
    page = open_page(java_script_enabled=False)
    sign_in(page)
    page.goto("/account/billing")
    page.locator("tr.line").first.get_by_role("link", name=re.compile(r"^Receipt \d+$")).click()
    expect(page.get_by_role("heading", name="Receipt", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Save this receipt")).to_be_visible()
    expect(page.get_by_role("button", name="Print")).to_be_hidden()  # no JS, no Print button

    page.emulate_media(media="print")

    expect(page.locator("header.top")).to_be_hidden()
    expect(page.locator("footer.foot")).to_be_hidden()
    expect(page.get_by_role("link", name="Save this receipt")).to_be_hidden()
    expect(page.locator("article.receipt")).to_contain_text("Larkspur Security")
    expect(page.locator("article.receipt")).to_contain_text("Visa ending 4242")
