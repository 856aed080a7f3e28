"""Withdrawing in a real browser against the real server, SMTP included (C24, C25): from
any page's footer, without signing in, on a desktop and on a 375 px phone."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.live_portal import LivePortal, wait_until
from tests.integration.test_withdrawal import JANA, buy, customer

if TYPE_CHECKING:
    from tests.e2e.conftest import PageOpener, SmtpInbox
    from tests.fakes import FakeClock

pytestmark = pytest.mark.browser

NEUTRAL = (
    "If these details match a contract that can still be withdrawn from, we have sent the "
    "confirmation to the email address on the account."
)
SUBJECT = "We received your withdrawal from Larkspur Antivirus"


def withdraw_from_the_footer(page: Page, receipt_number: int) -> None:
    page.goto("/login")  # any page: nobody is signed in
    page.get_by_role("contentinfo").get_by_role("link", name="Withdraw from contract here").click()
    expect(page).to_have_url(re.compile(r"/withdraw$"))
    expect(page.get_by_role("heading", name="Withdraw from contract here")).to_be_visible()
    page.get_by_label("Your name").fill("Jana Neu")
    page.get_by_label("Email address of your account").fill(JANA)
    page.get_by_label("Receipt number or reference").fill(f"receipt {receipt_number}")
    page.get_by_label("Reason (optional)").fill("Bought the wrong plan")
    page.get_by_role("button", name="Confirm withdrawal").click()
    expect(page.get_by_role("status")).to_contain_text(NEUTRAL)


def test_c24_c25_withdraw_from_the_footer_without_signing_in_and_get_the_email(
    live_portal: LivePortal, open_page: PageOpener, inbox: SmtpInbox, clock: FakeClock
) -> None:
    container = live_portal.container
    jana = customer(container)
    bought = buy(container, jana)
    clock.advance(days=5)

    withdraw_from_the_footer(open_page(), bought.invoice_number)

    wait_until(lambda: inbox.with_subject(SUBJECT), "the withdrawal email", timeout=30)
    (mail,) = inbox.with_subject(SUBJECT)
    assert mail["To"] == JANA
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert re.search(r"Received:\s+2 December 2026, 13:00:00 CET", text)  # date, time, zone
    assert "Reason: Bought the wrong plan" in text and "39,99\xa0€" in text
    with container.uows().read() as uow:
        (refund,) = uow.refunds.for_account(jana.id)
    assert refund.reference is not None and refund.reference in str(mail["Subject"])


def test_c24_the_withdrawal_page_fits_a_phone_and_works_in_german(
    live_portal: LivePortal, open_page: PageOpener, inbox: SmtpInbox
) -> None:
    container = live_portal.container
    bought = buy(container, customer(container))
    page = open_page(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page.goto("/withdraw")
    page.get_by_role("contentinfo").get_by_role("link", name="Vertrag widerrufen").click()

    expect(page.get_by_role("heading", name="Vertrag widerrufen")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    button = page.get_by_role("button", name="Widerruf bestätigen")
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    page.get_by_label("Ihr Name").fill("Jana Neu")
    page.get_by_label("E-Mail-Adresse Ihres Kontos").fill(JANA)
    page.get_by_label("Belegnummer oder Referenz").fill(str(bought.invoice_number))
    button.click()

    expect(page.get_by_role("status")).to_contain_text("Bestätigung an die E-Mail-Adresse")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    wait_until(lambda: inbox.with_subject(SUBJECT), "the withdrawal email", timeout=30)
