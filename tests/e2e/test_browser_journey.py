"""The customer journey in a real browser against the real server, SMTP included.

Sign in, find the right subscription, turn auto-renew off in two clicks, keep the proof
(page and email with one reference), change your mind, and check a contact.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import func, select

from fairsub.adapters.db.tables import outbox
from fairsub.services.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.e2e.live_portal import LivePortal, wait_until

if TYPE_CHECKING:
    from tests.e2e.conftest import PageOpener, SmtpInbox

pytestmark = pytest.mark.browser

REFERENCE = re.compile(r"^FS-[0-9A-Z]{4}-[0-9A-Z]{4}$")
# A time followed by a zone: "12:00:00 GMT", "13:00:00 CET", "12:00:00 GMT+01:00".
TIME_WITH_ZONE = re.compile(
    r"\d{1,2}:\d{2}(:\d{2})?\s+(UTC|GMT|[A-Z]{3,5})([+-]\d{1,2}(:\d{2})?)?$"
)
# Seven or more digits, optionally split by spaces, dots, dashes or brackets.
PHONE_LIKE = re.compile(r"\+?\(?\d(?:[\s.()-]{0,2}\d){6,}")
URL = re.compile(r"https?://[^\s\"'<>]+")

# The demo customer is in GB (Europe/London); the FakeClock says 27 November 2026, 12:00 UTC.
ANNUAL, MONTHLY, RESOLD = "Larkspur 360", "Larkspur Antivirus", "Larkspur Identity Guard"
RESELLER, ORDER = "Bluebird Software Store", "BB-2026-118204"
RESELLER_URL = "https://store.bluebird.example/account/orders"


class Clicks:
    """Clicks the customer makes, counted (C1 sets a ceiling on them)."""

    def __init__(self) -> None:
        self.count = 0

    def click(self, target: Locator) -> None:
        self.count += 1
        target.click()


def sign_in(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(DEMO_EMAIL)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("heading", name="My subscriptions", exact=True)).to_be_visible()


def card(page: Page, product: str) -> Locator:
    heading = page.get_by_role("heading", name=re.compile(rf"^{re.escape(product)} "))
    return page.locator("li.sub").filter(has=heading)


def fact(scope: Locator, label: str) -> Locator:
    """The value (<dd>) next to the label (<dt>) in a list of facts."""
    return scope.locator(f"xpath=.//dt[normalize-space()='{label}']/following-sibling::dd[1]")


def turn_off_button(scope: Locator) -> Locator:
    return scope.get_by_role("link", name="Turn off auto-renew")


def emails_about(inbox: SmtpInbox, reference: str, timeout: float = 30.0) -> list[EmailMessage]:
    wait_until(lambda: inbox.with_subject(reference), f"the email with {reference}", timeout)
    return inbox.with_subject(reference)


def pending_emails(portal: LivePortal) -> int:
    with portal.container.engine.connect() as connection:
        query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int(connection.execute(query).scalar_one())


def text_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"the email has no text/{subtype} part"
    assert part.get_content_type() == f"text/{subtype}"
    content = part.get_content()
    assert isinstance(content, str)
    return content


def test_dashboard_shows_every_subscription_with_its_terms(page: Page) -> None:
    sign_in(page)

    expect(page.locator("li.sub")).to_have_count(3)
    expected = {
        ANNUAL: ("360 Annual", "£79.99 per year", "7 November 2027", "Visa ending 4242"),
        MONTHLY: ("Antivirus Monthly", "£4.49 per month", "24 December 2026", "Visa ending 4242"),
        RESOLD: ("Identity Guard Annual", "£79.99 per year", "30 June 2027", f"Paid to {RESELLER}"),
    }
    for product, (plan, price, renews, paid_with) in expected.items():
        sub = card(page, product)
        expect(sub.get_by_role("heading")).to_have_text(f"{product} {plan}")
        expect(fact(sub, "Status")).to_have_text("Active")
        expect(fact(sub, "Price")).to_have_text(price)
        expect(fact(sub, "Auto-renew")).to_have_text("On")
        expect(fact(sub, "Renews on")).to_have_text(renews)
        expect(fact(sub, "Payment method")).to_have_text(paid_with)
    expect(fact(card(page, ANNUAL), "Bought from")).to_have_text("Larkspur Security online store")
    expect(fact(card(page, RESOLD), "Bought from")).to_have_text(f"{RESELLER} (order {ORDER})")


def test_turning_auto_renew_off_takes_two_clicks_and_gives_page_and_email_with_one_reference_c1_c10_c11_c30(  # noqa: E501
    page: Page, inbox: SmtpInbox, live_portal: LivePortal
) -> None:
    sign_in(page)
    clicks = Clicks()

    clicks.click(turn_off_button(card(page, ANNUAL)))
    expect(
        page.get_by_role("heading", name="Turn off auto-renew for Larkspur 360?")
    ).to_be_visible()
    expect(page.get_by_text("You keep it until 7 November 2027")).to_be_visible()
    clicks.click(page.get_by_role("button", name="Turn off auto-renew"))

    # C1: one click on the dashboard, at most two more.
    expect(page.get_by_role("heading", name="Done. Auto-renew: Off")).to_be_visible()
    assert clicks.count <= 3, f"{clicks.count} clicks from the dashboard to the confirmation"
    # C10: reference, what was declared, time received with its zone, the exact end.
    proof = page.locator("dl.proof")
    reference = fact(proof, "Reference number").inner_text().strip()
    assert REFERENCE.match(reference), reference
    expect(page).to_have_url(re.compile(rf"/account/cancellations/{reference}$"))
    expect(fact(proof, "Subscription")).to_have_text("Larkspur 360 (360 Annual)")
    expect(fact(proof, "Auto-renew")).to_have_text("Off")
    expect(fact(proof, "Active until")).to_contain_text("7 November 2027")
    expect(fact(proof, "What you declared")).not_to_be_empty()
    received = fact(proof, "Request received").inner_text().strip()
    assert TIME_WITH_ZONE.search(received), f"no time zone in {received!r}"
    assert "27 November 2026" in received
    active_until = fact(proof, "Active until").inner_text().strip()

    # C11: the same proof by email, at once, over real SMTP.
    (email,) = emails_about(inbox, reference)
    assert email["To"] == DEMO_EMAIL
    plain, html = text_of(email, "plain"), text_of(email, "html")
    for body in (plain, html):
        assert reference in body
        assert received in body
        assert active_until in body
    # C30: the email never asks for a call, and every link in it goes to the portal.
    assert "We never ask you to call a phone number" in plain
    for body in (plain, html):
        without_links = URL.sub(" ", body)
        assert not PHONE_LIKE.search(without_links), PHONE_LIKE.search(without_links)
        links = URL.findall(body)
        assert links
        assert all(link.startswith(live_portal.url + "/") for link in links), links

    # Back on the dashboard: off, and active until the end of the paid year.
    page.get_by_role("link", name="Back to my subscriptions").click()
    annual = card(page, ANNUAL)
    expect(fact(annual, "Auto-renew")).to_have_text("Off")
    expect(fact(annual, "Active until")).to_have_text("7 November 2027")
    expect(fact(annual, "Status")).to_have_text("Active until 7 November 2027")
    expect(turn_off_button(annual)).to_have_count(0)

    # Reversible until the term ends.
    annual.get_by_role("link", name="Details").click()
    expect(page.get_by_role("link", name=reference)).to_be_visible()
    page.get_by_role("button", name="Turn auto-renew back on").click()
    expect(page.get_by_role("status")).to_contain_text("Auto-renew is back on")
    page.get_by_role("link", name="My subscriptions").first.click()
    annual = card(page, ANNUAL)
    expect(fact(annual, "Auto-renew")).to_have_text("On")
    expect(fact(annual, "Renews on")).to_have_text("7 November 2027")
    expect(turn_off_button(annual)).to_be_visible()
    wait_until(lambda: inbox.with_subject("back on for Larkspur 360"), "the back-on email", 30)


def test_reseller_subscription_points_to_the_reseller_instead_of_a_turn_off_button(
    page: Page,
) -> None:
    sign_in(page)

    resold = card(page, RESOLD)
    expect(fact(resold, "Bought from")).to_have_text(f"{RESELLER} (order {ORDER})")
    expect(turn_off_button(resold)).to_have_count(0)
    manage = resold.get_by_role("link", name=f"Manage at {RESELLER}")
    expect(manage).to_have_attribute("href", RESELLER_URL)

    resold.get_by_role("link", name="Details").click()
    expect(page.get_by_role("heading", name=f"Bought through {RESELLER}")).to_be_visible()
    expect(page.locator("strong", has_text=ORDER)).to_be_visible()
    expect(page.get_by_role("link", name=f"Go to {RESELLER}")).to_have_attribute(
        "href", RESELLER_URL
    )
    expect(turn_off_button(page.locator("main"))).to_have_count(0)


def test_reload_back_and_resubmit_give_the_same_reference_and_one_email_c10_c11(
    open_page: PageOpener, inbox: SmtpInbox, live_portal: LivePortal
) -> None:
    first = open_page()
    sign_in(first)
    turn_off_button(card(first, ANNUAL)).click()
    # A second tab with the same form open, as when a customer double-checks.
    second = first.context.new_page()
    second.goto(first.url)

    first.get_by_role("button", name="Turn off auto-renew").click()
    reference = fact(first.locator("dl.proof"), "Reference number").inner_text().strip()
    assert REFERENCE.match(reference), reference

    first.reload()
    expect(fact(first.locator("dl.proof"), "Reference number")).to_have_text(reference)
    first.go_back()  # to the form, which is now only a way back to the proof
    expect(fact(first.locator("dl.proof"), "Reference number")).to_have_text(reference)
    second.get_by_role("button", name="Turn off auto-renew").click()
    expect(fact(second.locator("dl.proof"), "Reference number")).to_have_text(reference)

    emails_about(inbox, reference)
    wait_until(lambda: pending_emails(live_portal) == 0, "the outbox to be empty")
    assert len(inbox.with_subject("Auto-renew is off")) == 1


def test_contact_page_lists_official_channels_and_checks_a_contact_c31(page: Page) -> None:
    page.goto("/contact")

    channels = page.locator(
        "section", has=page.get_by_role("heading", name="Our official channels")
    )
    expect(fact(channels, "Websites")).to_contain_text("larkspur.example")
    expect(fact(channels, "Email addresses")).to_contain_text("support@larkspur.example")
    expect(fact(channels, "Phone numbers")).to_contain_text("None")

    field = page.get_by_label("Phone number, email address or link")
    field.fill("https://larkspur.example/account")
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("status")).to_contain_text("Yes, this link is ours")

    page.get_by_label("Phone number, email address or link").fill("+1 555 0100 123")
    page.get_by_role("button", name="Check").click()
    verdict = page.get_by_role("alert")
    expect(verdict).to_contain_text("No, this phone number is not ours")
    expect(verdict).to_contain_text("Do not call it")


def test_dashboard_fits_a_phone_screen_with_the_turn_off_control_in_view_c1(
    open_page: PageOpener,
) -> None:
    page = open_page(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    sign_in(page)

    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    button = turn_off_button(card(page, ANNUAL))
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box

    button.click()
    page.get_by_role("button", name="Turn off auto-renew").click()
    expect(page.get_by_role("heading", name="Done. Auto-renew: Off")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_a_long_scam_link_checked_on_a_phone_wraps_inside_the_screen_c30(
    open_page: PageOpener,
) -> None:
    # Where people paste scam links: one of 120 characters made the page 1,017 px wide.
    page = open_page(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page.goto("/contact")
    link = "https://larkspur-billing-help.example/cancel/refund?session=" + "8f3a9c2e" * 8
    page.get_by_label("Phone number, email address or link").fill(link)
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("alert")).to_contain_text("No, this link is not ours")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_journey_works_without_javascript_c5(open_page: PageOpener) -> None:
    page = open_page(java_script_enabled=False)
    sign_in(page)

    turn_off_button(card(page, MONTHLY)).click()
    page.get_by_role("button", name="Turn off auto-renew").click()

    expect(page.get_by_role("heading", name="Done. Auto-renew: Off")).to_be_visible()
    reference = fact(page.locator("dl.proof"), "Reference number").inner_text().strip()
    assert REFERENCE.match(reference), reference
    page.get_by_role("link", name="Back to my subscriptions").click()
    expect(fact(card(page, MONTHLY), "Auto-renew")).to_have_text("Off")
