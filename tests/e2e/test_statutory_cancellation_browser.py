"""The German cancellation button in a real browser against the real server, SMTP included
(C2-C4): from the footer of the first page, on a 375 px phone, without signing in, to the
acknowledgement, the email with its reference, and the dashboard saying Auto-renew Off."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.e2e.live_portal import LivePortal, wait_until
from tests.e2e.test_browser_journey import card, fact, text_of
from tests.integration.test_withdrawal import JANA, buy, customer

if TYPE_CHECKING:
    from tests.e2e.conftest import PageOpener, SmtpInbox
    from tests.fakes import FakeClock

pytestmark = pytest.mark.browser

SUBJECT = re.compile(r"^Auto-renew is off for .+ \(reference (FS-[0-9A-Z]{4}-[0-9A-Z]{4})\)$")
PHONE = {"viewport": {"width": 375, "height": 740}, "is_mobile": True, "has_touch": True}


def test_c2_c3_c4_cancel_from_the_footer_without_signing_in_then_see_it_everywhere(
    live_portal: LivePortal, open_page: PageOpener, inbox: SmtpInbox, clock: FakeClock
) -> None:
    container = live_portal.container
    jana = customer(container)
    bought = buy(container, jana)
    clock.advance(days=5)
    page = open_page(**PHONE)

    page.goto("/")  # the front page: nobody is signed in
    page.get_by_role("contentinfo").get_by_role("link", name="Verträge hier kündigen").click()

    expect(page).to_have_url(re.compile(r"/vertraege-kuendigen$"))  # C3: nothing in between
    expect(page.get_by_role("heading", name="Verträge hier kündigen")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    expect(page.get_by_label("Ordentliche Kündigung", exact=True)).to_be_checked()
    expect(page.get_by_label("Zum nächstmöglichen Zeitpunkt")).to_be_checked()
    page.get_by_label("Ihr Name").fill("Jana Neu")
    page.get_by_label("E-Mail-Adresse Ihres Kontos").fill(JANA)
    page.get_by_label("Vertrag: Belegnummer oder Referenz").fill(str(bought.invoice_number))
    button = page.get_by_role("button", name="jetzt kündigen", exact=True)
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    button.click()

    status = page.get_by_role("status")
    expect(status).to_contain_text("Ihre Kündigung ist eingegangen")
    expect(fact(status, "Eingegangen")).to_have_text("2. Dezember 2026, 13:00:00 MEZ")
    expect(fact(status, "Art der Kündigung")).to_have_text("Ordentliche Kündigung")
    expect(fact(status, "Gewünschtes Ende")).to_have_text("zum nächstmöglichen Zeitpunkt")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    wait_until(lambda: inbox.with_subject("Auto-renew is off"), "the email", timeout=30)
    (mail,) = inbox.with_subject("Auto-renew is off")
    assert mail["To"] == JANA
    found = SUBJECT.match(str(mail["Subject"]))
    assert found, mail["Subject"]
    text = text_of(mail, "plain")
    assert re.search(r"Request received:\s+2 December 2026, 13:00:00 CET", text)
    assert "Ordinary termination (ordentliche Kündigung)" in text
    with container.uows().read() as uow:
        cancellation = uow.cancellations.open_for(bought.subscription_id)
    assert cancellation is not None and cancellation.reference == found.group(1)

    page.goto("/login")
    page.get_by_label("Email").fill(JANA)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(fact(card(page, "Larkspur Antivirus"), "Auto-renew")).to_have_text("Off")
