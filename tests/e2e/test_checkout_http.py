"""Buying and paying in the portal over HTTP, with the sandbox gateway as the bank:
disclosures before card fields, an unticked auto-renew choice, bad cards, new customers,
payment methods, and the C6 count of steps to buy versus steps to turn auto-renew off."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from fairsub.adapters.db.tables import consents, subscriptions
from fairsub.adapters.payments.sandbox import SandboxGateway
from fairsub.adapters.payments.stripe import StripeGateway
from fairsub.bootstrap import Container
from fairsub.entrypoints.relay_process import Relay
from fairsub.entrypoints.web.app import create_app
from tests.builders import Demo, seeded
from tests.conftest import make_container
from tests.e2e.test_portal_http import csrf, sign_in
from tests.fakes import FakeClock, FakeMailer
from tests.integration.stripe_fake import FakeStripe

SAM = "sam@example.com"


@pytest.fixture
def shop(
    sqlite_url: str, tmp_path: Path, clock: FakeClock, mailer: FakeMailer
) -> Iterator[tuple[TestClient, Container, Demo, SandboxGateway]]:
    bank = SandboxGateway(tmp_path / "sandbox.db", clock)
    container = make_container(sqlite_url, tmp_path, clock, mailer, gateway=bank)
    data = seeded(container)
    with TestClient(create_app(container, relay=Relay.OFF), follow_redirects=False) as client:
        yield client, container, data, bank
    container.close()


def count(container: Container, table, **where: object) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with container.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def charges(bank: SandboxGateway) -> list[tuple[str, bool]]:
    return [(e.idempotency_key, e.succeeded) for e in bank.ledger() if e.kind == "charge"]


def save_card(client: TestClient, number: str, expiry: str, cvc: str):  # type: ignore[no-untyped-def]
    """Post the payment methods page's form, as a signed-in customer would."""
    form = {"card_number": number, "expiry": expiry, "cvc": cvc}
    path = "/account/payment-methods"
    return client.post(path, data={"csrf_token": csrf(client, path), **form})


def order_form(client: TestClient, plan: str, region: str = "US", **fields: str) -> dict[str, str]:
    page = client.get(f"/checkout?plan={plan}&region={region}")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    price = re.search(r'name="price_minor" value="(\d+)"', page.text)
    currency = re.search(r'name="currency" value="([A-Z]{3})"', page.text)
    assert token and price and currency, page.text
    data = {
        "csrf_token": token.group(1),
        "plan": plan,
        "terms_version": re.search(r'name="terms_version" value="([^"]+)"', page.text).group(1),  # type: ignore[union-attr]
        "price_minor": price.group(1),
        "currency": currency.group(1),
        "renewal": "renew",
        "accept_terms": "yes",
        "payment_method": "new",
        "card_number": "4242 4242 4242 4242",
        "expiry": "12/30",
        "cvc": "123",
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


# --- the price list and the summary ----------------------------------------------------


def test_price_list_shows_each_regions_prices_in_its_currency(shop) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = shop
    germany = client.get("/plans?region=DE").text
    japan = client.get("/plans?region=JP").text
    assert "39,99\xa0€ per year" in germany and "Larkspur Antivirus" in germany
    assert "¥5,800 per year" in japan
    assert "30-day free trial when bought to renew" in germany
    assert 'href="/checkout?plan=antivirus-annual&amp;region=DE"' in germany


def test_c15_disclosures_stand_next_to_the_choice_and_before_the_card_fields(shop) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = shop
    sign_in(client, SAM)
    page = client.get("/checkout?plan=identity-monthly&region=US").text

    terms = ["price", "frequency", "renewal", "trial", "deadline", "how-to-cancel", "refunds"]
    where = [page.index(f'data-term="{term}"') for term in terms]
    choice = page.index('name="renewal"')
    card = page.index('name="card_number"')
    assert max(where) < choice < card
    assert "$9.99 per month" in page
    assert "Monthly: charged every month" in page
    assert "renews every month at $9.99 until you cancel" in page
    assert "30 days, with automatic renewal only" in page
    assert "December 26, 2026: cancel by then and you pay nothing" in page
    assert "Turn off auto-renew → confirm" in page
    # and again inside the choice itself, right next to the control
    choice_text = page[choice : page.index("</fieldset>", choice)]
    assert "$9.99 every month" in choice_text and "December 26, 2026" in choice_text


def test_c16_auto_renew_is_its_own_unticked_choice_apart_from_the_terms(shop) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = shop
    sign_in(client, SAM)
    page = client.get("/checkout?plan=antivirus-annual&region=US").text

    controls = re.findall(r"<input[^>]+>", page)
    renewal = [c for c in controls if 'name="renewal"' in c]
    terms = [c for c in controls if 'name="accept_terms"' in c]
    assert len(renewal) == 2 and len(terms) == 1
    assert all("checked" not in c for c in renewal + terms)
    assert {re.search(r'value="(\w+)"', c).group(1) for c in renewal} == {"renew", "once"}  # type: ignore[union-attr]
    assert 'type="checkbox"' in terms[0]


def test_an_order_without_a_renewal_choice_is_shown_again_and_charges_nothing(shop) -> None:  # type: ignore[no-untyped-def]
    client, container, _, bank = shop
    sign_in(client, SAM)
    data = order_form(client, "antivirus-annual")
    del data["renewal"]

    response = client.post("/checkout", data=data)

    assert response.status_code == 422
    assert (
        'role="alert"' in response.text
        and "Choose how your subscription continues" in response.text
    )
    assert 'name="card_number"' in response.text  # the form again
    assert charges(bank) == [] and count(container, consents) == 0


def test_a_bad_card_number_shows_the_form_again_and_charges_nothing(shop) -> None:  # type: ignore[no-untyped-def]
    client, container, _, bank = shop
    sign_in(client, SAM)
    before = count(container, subscriptions)

    response = client.post(
        "/checkout", data=order_form(client, "antivirus-annual", card_number="4242424242424241")
    )

    assert response.status_code == 422
    assert "That card number is not valid" in response.text
    assert 'value="renew" required checked' in response.text  # their choices are kept
    assert "4242424242424241" not in response.text  # a card number is never echoed
    assert charges(bank) == []
    assert count(container, subscriptions) == before and count(container, consents) == 0


@pytest.mark.parametrize("chosen", ["\u00b2", "9" * 30, "-1", " 1"])
def test_a_card_choice_that_is_no_card_id_means_the_card_typed_in(shop, chosen: str) -> None:  # type: ignore[no-untyped-def]
    # "²".isdigit() is True and int() of 30 nines does not fit the database: neither may
    # reach it. Not one of the customer's cards, so the card typed in pays.
    client, _, _, bank = shop
    sign_in(client, SAM)
    response = client.post(
        "/checkout", data=order_form(client, "antivirus-annual", payment_method=chosen)
    )
    assert response.status_code == 303, response.text
    assert [ok for _, ok in charges(bank)] == [True]


def test_a_declined_card_shows_the_form_again_and_nothing_is_bought(shop) -> None:  # type: ignore[no-untyped-def]
    client, container, _, bank = shop
    sign_in(client, SAM)

    response = client.post(
        "/checkout", data=order_form(client, "antivirus-annual", card_number="4000000000000002")
    )

    assert response.status_code == 422
    assert "Your card was declined. Nothing was charged" in response.text
    assert [ok for _, ok in charges(bank)] == [False]
    dashboard = client.get("/account").text
    assert "Not bought: payment declined" in dashboard  # listed, saying what happened
    assert count(container, subscriptions, status="expired") == 1


def test_a_revoked_gateway_key_tells_the_customer_to_try_later_and_charges_nothing(
    sqlite_url: str, tmp_path: Path, clock: FakeClock, mailer: FakeMailer
) -> None:
    fake = FakeStripe()
    key = "sk_test_revoked51Hx"
    gateway = StripeGateway(key, http_client=fake, clock=clock, max_network_retries=0)
    container = make_container(sqlite_url, tmp_path, clock, mailer, gateway=gateway)
    seeded(container)
    fake.revoked_keys.add(key)  # then someone rolled the key in Stripe's dashboard
    with TestClient(create_app(container, relay=Relay.OFF), follow_redirects=False) as client:
        sign_in(client, SAM)
        before = count(container, subscriptions)

        response = client.post("/checkout", data=order_form(client, "antivirus-annual"))

        assert response.status_code == 503
        assert "Payments are not available right now. Nothing was charged" in response.text
        assert "try again later" in response.text
        assert "51Hx" not in response.text
        assert count(container, subscriptions) == before and count(container, consents) == 0
        assert fake.payment_intents == {}
    container.close()


def test_a_card_declined_at_checkout_is_not_offered_beside_the_card_that_pays(shop) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = shop
    sign_in(client, SAM)
    bought = client.post("/checkout", data=order_form(client, "antivirus-annual"))
    assert bought.status_code == 303  # a subscription running on the Visa ending 4242
    declined = client.post(
        "/checkout", data=order_form(client, "identity-annual", card_number="4000000000000002")
    )
    assert declined.status_code == 422 and "Your card was declined" in declined.text
    choices = client.get("/checkout?plan=identity-annual&region=US").text
    assert "ending 4242" in choices and "ending 0002" not in choices
    cards = client.get("/account/payment-methods").text
    assert "ending <strong>0002" not in cards
    # Nothing was bought, so nothing is charged to a card for it.
    charged_to = cards[cards.index("What each subscription") :]
    assert "Antivirus Annual" in charged_to and "Identity" not in charged_to


# --- buying end to end -----------------------------------------------------------------


def test_a_new_customer_creates_an_account_in_their_region_buys_and_gets_the_email(
    shop, mailer: FakeMailer
) -> None:  # type: ignore[no-untyped-def]
    client, container, _, bank = shop
    start = client.get("/checkout?plan=antivirus-annual&region=DE")
    assert "Create your account" in start.text and "39,99\xa0€ per year" in start.text
    assert 'href="/login?next=/checkout%3Fplan%3Dantivirus-annual%26region%3DDE"' in start.text
    assert 'name="card_number"' not in start.text

    created = client.post(
        "/checkout/account",
        data={
            "csrf_token": csrf(client, "/checkout?plan=antivirus-annual&region=DE"),
            "plan": "antivirus-annual",
            "region": "DE",
            "email": "jana@example.com",
            "name": "Jana Neu",
            "password": "correct horse battery",
        },
    )
    assert created.status_code == 303
    assert created.headers["location"] == "/checkout?plan=antivirus-annual&region=DE"
    page = client.get(created.headers["location"]).text
    assert "Sign out" in page and "Create your account" not in page
    assert 'name="price_minor" value="3999"' in page and 'name="currency" value="EUR"' in page
    assert "legal right to withdraw within 14 days" in page

    form = order_form(client, "antivirus-annual", currency="EUR")
    form.pop("payment_method")  # a new customer has no cards on file
    placed = client.post("/checkout", data=form)

    assert placed.status_code == 303 and placed.headers["location"].startswith("/checkout/done/")
    done = client.get(placed.headers["location"]).text
    assert "Thank you — your order is complete" in done
    assert "39,99\xa0€" in done and "/turn-off" in done
    assert [ok for _, ok in charges(bank)] == [True]
    container.relay.drain()
    (mail,) = mailer.sent
    assert mail.to == "jana@example.com" and mail.subject.startswith(
        "Your Larkspur Antivirus order"
    )
    assert "/turn-off" in mail.text


def test_new_account_with_a_short_password_shows_the_form_again(shop) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = shop
    response = client.post(
        "/checkout/account",
        data={
            "csrf_token": csrf(client, "/checkout?plan=antivirus-annual&region=US"),
            "plan": "antivirus-annual",
            "region": "US",
            "email": "new@example.com",
            "name": "New",
            "password": "short",
        },
    )
    assert response.status_code == 422
    assert "at least 10 characters" in response.text and 'value="new@example.com"' in response.text
    assert "fairsub_session" not in response.headers.get("set-cookie", "")


def test_signing_in_from_checkout_comes_back_to_it(shop) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = shop
    response = client.post(
        "/login",
        data={
            "email": SAM,
            "password": "fairsub-demo",
            "next": "/checkout?plan=antivirus-annual&region=US",
            "csrf_token": csrf(client, "/login"),
        },
    )
    assert response.headers["location"] == "/checkout?plan=antivirus-annual&region=US"


def test_a_signed_in_customer_pays_their_own_regions_price(shop) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = shop
    sign_in(client)  # Alex, in the United Kingdom
    page = client.get("/checkout?plan=identity-monthly&region=US").text
    assert "£7.99 per month" in page and "Prices are for your account's country" in page


def test_trial_order_lands_on_a_page_that_says_nothing_was_charged(shop) -> None:  # type: ignore[no-untyped-def]
    client, _, _, bank = shop
    sign_in(client, SAM)
    placed = client.post("/checkout", data=order_form(client, "identity-monthly"))
    done = client.get(placed.headers["location"]).text
    assert "Your free trial has started" in done and "Nothing was charged today" in done
    assert "Last day to cancel without charge" in done
    assert charges(bank) == []
    found = re.search(r'href="(/account/billing/receipts/\d+)"', done)
    assert found, done
    receipt = client.get(found.group(1)).text
    assert "No charge" in receipt and "None needed" in receipt  # not "Paid" by "None"


def test_checkout_pages_are_not_cached(shop) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = shop
    assert client.get("/checkout?plan=antivirus-annual&region=US").headers["cache-control"] == (
        "no-store"
    )


# --- C6: turning off is no harder than buying ------------------------------------------


class Forms(HTMLParser):
    """The links and forms of a page, as a browser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.forms: list[dict[str, object]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")
        elif tag == "form":
            self.forms.append({"action": a.get("action"), "fields": {}, "required": set()})
        elif tag in ("input", "select", "textarea") and self.forms and a.get("name"):
            form = self.forms[-1]
            name = a["name"] or ""
            if a.get("type") == "hidden":
                form["fields"][name] = a.get("value") or ""  # type: ignore[index]
            if "required" in a:
                form["required"].add(name)  # type: ignore[union-attr]


@dataclass
class Journey:
    """Counts what a customer does: pages seen, clicks made, required fields filled."""

    client: TestClient
    pages: int = 0
    clicks: int = 0
    required: set[str] = field(default_factory=set)
    html: str = ""

    def _see(self, path: str) -> None:
        response = self.client.get(path)
        assert response.status_code == 200, path
        self.pages += 1
        self.html = response.text

    def open(self, path: str) -> None:
        self._see(path)

    def click(self, href: str) -> None:
        parsed = Forms()
        parsed.feed(self.html)
        assert href in parsed.links, f"no link to {href}"
        self.clicks += 1
        self._see(href)

    def submit(self, action: str, filled: dict[str, str]) -> None:
        parsed = Forms()
        parsed.feed(self.html)
        form = next(f for f in parsed.forms if f["action"] == action)
        required: set[str] = form["required"]  # type: ignore[assignment]
        assert required <= set(filled), f"missing {required - set(filled)}"
        self.required |= required
        self.clicks += 1
        response = self.client.post(action, data={**form["fields"], **filled})  # type: ignore[dict-item]
        assert response.status_code == 303, response.text
        self._see(response.headers["location"])


def test_c6_turning_auto_renew_off_takes_no_more_steps_or_fields_than_buying(shop) -> None:  # type: ignore[no-untyped-def]
    client, container, _, _ = shop
    sign_in(client, SAM)
    (card_id,) = re.findall(
        r'name="payment_method" value="(\d+)"',
        client.get("/checkout?plan=antivirus-monthly&region=US").text,
    )

    buying = Journey(client)
    buying.open("/plans")
    buying.click("/checkout?plan=antivirus-monthly&region=US")
    buying.submit(
        "/checkout", {"renewal": "renew", "accept_terms": "yes", "payment_method": card_id}
    )
    assert "your order is complete" in buying.html
    (bought,) = re.findall(r"/account/subscriptions/(\d+)/turn-off", buying.html)[:1]

    turning_off = Journey(client)
    turning_off.open("/account")
    turning_off.click(f"/account/subscriptions/{bought}/turn-off")
    turning_off.submit(f"/account/subscriptions/{bought}/turn-off", {})
    assert "Auto-renew: Off" in turning_off.html

    assert (buying.pages, buying.clicks, len(buying.required)) == (3, 2, 3)
    assert turning_off.pages <= buying.pages
    assert turning_off.clicks <= buying.clicks
    assert len(turning_off.required) <= len(buying.required)
    assert count(container, subscriptions, status="canceled", auto_renew=False) >= 1


# --- payment methods -------------------------------------------------------------------


def test_payment_methods_page_lists_cards_and_a_new_one_replaces_them(shop) -> None:  # type: ignore[no-untyped-def]
    client, _, data, _ = shop
    sign_in(client)
    page = client.get("/account/payment-methods").text
    assert "Visa ending <strong>4242</strong>, expires 12/2030" in page
    assert '<a href="/account/payment-methods">Payment methods</a>' in page  # in the nav

    added = save_card(client, "5555 5555 5555 4444", "04/31", "321")

    assert added.status_code == 303
    after = client.get(added.headers["location"]).text
    assert "Your new card, Mastercard ending 4444, is saved" in after
    assert "try the failed payment" not in after  # none had failed
    cards = after[after.index("Cards on file") : after.index("What each subscription")]
    assert "Mastercard ending <strong>4444</strong>" in cards
    assert "4242" not in cards  # replaced: it pays for nothing now, so it is not offered
    detail = client.get(f"/account/subscriptions/{data.annual.id}").text
    assert "Mastercard ending 4444" in detail


def test_a_link_to_the_cards_page_cannot_make_it_claim_a_card_was_saved(shop) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = shop
    sign_in(client)
    own = client.get("/account/payment-methods").text
    (card_id,) = re.findall(r'data-card="(\d+)"', own)

    for query in ("added=999999", "added=x", f"added={card_id}0", "added=&retrying=3"):
        page = client.get(f"/account/payment-methods?{query}")
        assert page.status_code == 200, query
        assert "is saved" not in page.text and "try the failed" not in page.text, query
    # The note names the customer's own card, and only says what is true of it.
    page = client.get(f"/account/payment-methods?added={card_id}&retrying=3").text
    assert "Your new card, Visa ending 4242, is saved" in page
    assert "try the failed payment" not in page


def test_a_new_card_says_a_failed_payment_is_tried_again_while_it_is(shop) -> None:  # type: ignore[no-untyped-def]
    client, container, data, _ = shop
    with container.engine.begin() as connection:
        connection.execute(
            update(subscriptions)
            .where(subscriptions.c.id == data.monthly.id)
            .values(status="past_due", failed_attempts=1)
        )
    sign_in(client)

    added = save_card(client, "4242 4242 4242 4242", "04/31", "321")
    page = client.get(added.headers["location"]).text
    assert "We will try the failed payment again with it within a few minutes" in page

    with container.engine.begin() as connection:  # the retry went through
        connection.execute(
            update(subscriptions)
            .where(subscriptions.c.id == data.monthly.id)
            .values(status="active", failed_attempts=0)
        )
    again = client.get(added.headers["location"]).text
    assert "is saved" in again and "try the failed payment" not in again


def test_a_card_the_gateway_refuses_is_shown_with_a_message_and_not_stored(shop) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = shop
    sign_in(client)
    response = save_card(client, "4242424242424242", "01/20", "123")
    assert response.status_code == 422
    assert 'role="alert"' in response.text and "That card has expired" in response.text
    assert response.text.count("ending <strong>") == 1


def test_payment_methods_need_sign_in(shop) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = shop
    response = client.get("/account/payment-methods")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account/payment-methods"
