"""Questioning a charge in a real browser, on a 375 px phone, with JavaScript off."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.e2e.live_portal import LivePortal, wait_until
from tests.e2e.test_browser_journey import sign_in
from tests.e2e.test_statements_browser import PHONE, charge_the_monthly_plan
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from tests.e2e.conftest import PageOpener, SmtpInbox

pytestmark = pytest.mark.browser


def test_a_customer_questions_a_charge_on_a_phone_and_gets_a_reference_and_an_email(
    open_page: PageOpener, live_portal: LivePortal, clock: FakeClock, inbox: SmtpInbox
) -> None:
    charge_the_monthly_plan(live_portal, clock)
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True, java_script_enabled=False)
    sign_in(page)
    page.goto("/account/billing")

    page.get_by_role("link", name=re.compile(r"^I don't recognise this charge of £4\.49")).click()
    expect(page.get_by_role("heading", name="I don't recognise this charge")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.get_by_role("button", name="Send").click()  # no reason chosen: still the form
    expect(page).to_have_url(re.compile(r"/question$"))
    page.get_by_label("I don't know what this charge is").check()
    page.get_by_label("Anything else we should know?").fill("Never saw it before.")
    page.get_by_role("button", name="Send").click()

    expect(page.get_by_role("heading", name="We have your question")).to_be_visible()
    reference = page.locator(".case-reference").inner_text()
    assert re.fullmatch(r"FS-[0-9A-Z]{4}-[0-9A-Z]{4}", reference)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.get_by_role("link", name="Billing history").click()
    expect(page.locator(".open-cases")).to_contain_text(reference)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    wait_until(lambda: inbox.with_subject(reference), "the case email")
    (mail,) = inbox.with_subject(reference)
    assert mail["To"] == "demo@example.com"
