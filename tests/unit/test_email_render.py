"""What an email says, from its outbox payload: amounts in the reader's locale."""

from datetime import UTC, datetime

import pytest

from fairsub.adapters.email.render import EmailRenderer, Site

SITE = Site("http://127.0.0.1:8000", "Larkspur Security", "no-reply@larkspur.example", "ex")
WRITTEN = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def renewal(amount: object, locale: str) -> dict[str, object]:
    return {
        "locale": locale,
        "timezone": "Europe/London",
        "name": "Alex",
        "product": "Larkspur 360",
        "plan": "360 Annual",
        "amount": amount,
        "invoice_number": 7,
        "period_start": "2026-11-29T12:00:00+00:00",
        "period_end": "2027-11-29T12:00:00+00:00",
        "auto_renew": True,
        "subscription_path": "/account/subscriptions/1",
        "statement_path": "/account/billing",
    }


@pytest.mark.parametrize(
    ("locale", "plain", "shown"),
    [
        ("en_GB", "GBP 79.99", "£79.99"),
        ("de_DE", "EUR 79.99", "79,99\xa0€"),
        ("en_US", "EUR 79.99", "€79.99"),
        ("ja_JP", "JPY 4800", "¥4,800"),
    ],
)
def test_an_amount_is_shown_as_the_portal_shows_it_to_that_reader(
    locale: str, plain: str, shown: str
) -> None:
    email = EmailRenderer(SITE).render(
        1, "renewal_charged", "a@example.com", renewal(plain, locale), WRITTEN
    )

    assert f"We charged {shown}." in email.text
    assert shown in email.html
    assert plain not in email.text + email.html


@pytest.mark.parametrize("amount", ["79.99 pounds", None])
def test_an_amount_in_another_form_goes_out_as_it_is_rather_than_not_at_all(
    amount: object,
) -> None:
    email = EmailRenderer(SITE).render(
        1, "renewal_charged", "a@example.com", renewal(amount, "en_GB"), WRITTEN
    )

    assert f"We charged {amount}." in email.text


BASE = SITE.base_url
TURN_OFF = f"{BASE}/account/subscriptions/1/turn-off"
WHEN = "2026-12-29T12:00:00+00:00"
ONE_CLICK_EMAILS = {
    "auto_renew_on": {"price": "GBP 79.99", "renews_at": WHEN},
    "renewal_charged": {},
    "payment_failed": {
        "reason": "card declined",
        "retry_at": WHEN,
        "ends_at": WHEN,
        "payment_path": "/account/payment-methods",
    },
    "charge_case_rejected": {
        "reference": "FS-AAAA-BBBB",
        "charged_at": WHEN,
        "reason": "Something else",
        "resolution_note": "It was right.",
        "turn_off_path": "/account/subscriptions/1/turn-off",
    },
}


@pytest.mark.parametrize("kind", sorted(ONE_CLICK_EMAILS))
def test_a_one_click_turn_off_link_leads_to_the_one_click(kind: str) -> None:
    """These emails promised 'turn auto-renew off in one click' but linked to the
    subscription page or the dashboard, from where it took two; the link now opens the
    confirmation whose one button turns it off."""
    payload = {**renewal("GBP 79.99", "en_GB"), **ONE_CLICK_EMAILS[kind]}
    email = EmailRenderer(SITE).render(1, kind, "a@example.com", payload, WRITTEN)

    lines = email.text.splitlines()
    promises = [i for i, line in enumerate(lines) if "one click" in line or "stop trying" in line]
    assert promises
    for i in promises:
        assert lines[i + 1] == TURN_OFF
    assert f'href="{TURN_OFF}"' in email.html


DEMO_SITE = Site(BASE, "Larkspur Security", "Larkspur Security <no-reply@larkspur.example>", "ex")


def test_the_plain_text_footer_and_short_emails_fit_a_78_column_reader() -> None:
    """The footer's promise (we never ask you to call a number to cancel or get a
    refund) ran to 86 and 87 characters a line, so plain-text readers broke it
    mid-sentence; no line but a link's is longer than 78 now (RFC 5322, 2.1.1)."""
    payloads = {
        "password_reset": {"reset_path": "/password-reset/abc"},
        "auto_renew_on": {"price": "GBP 79.99", "renews_at": WHEN},
        "auto_renew_off": {
            "reference": "FS-AAAA-BBBB",
            "received_at": WHEN,
            "ends_at": "2027-11-29T12:00:00+00:00",
            "charge_in_flight": None,
            "confirmation_path": "/account/cancellations/FS-AAAA-BBBB",
        },
    }
    for kind, extra in payloads.items():
        payload = {**renewal("GBP 79.99", "en_GB"), "product": "Larkspur Identity Guard"}
        payload["plan"] = "Identity Guard Monthly"
        email = EmailRenderer(DEMO_SITE).render(
            1, kind, "a@example.com", {**payload, **extra}, WRITTEN
        )

        long = [line for line in email.text.splitlines() if len(line) > 78 and BASE not in line]
        assert long == [], kind
        assert "We never ask you to call a phone number to cancel" in email.text
