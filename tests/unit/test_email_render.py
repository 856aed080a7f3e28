"""What an email says, from its outbox payload: amounts in the reader's locale."""

from datetime import UTC, datetime

import pytest

from fairsub.adapters.email.render import SUBJECTS, EmailRenderer, Site

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


LONG_PRODUCT = {
    "product": "Larkspur Identity Guard Premium",
    "plan": "Premium Family Annual",
}
LATER = "2027-11-29T12:00:00+00:00"
DECLARATION = (
    "Extraordinary termination (außerordentliche Kündigung) of the contract for "
    "Larkspur Identity Guard Premium (Identity Guard Family Annual), customer number "
    "4711, bought on 2026-11-29, for this reason: Der Dienst ist seit drei Wochen nicht "
    "erreichbar und der Kundendienst antwortet nicht. Wished end: 2027-01-15. "
    "Name: Maximiliane Schönberger-Waldhausen. Email: m.schoenberger-waldhausen@example.de."
)
CASE = {
    "reference": "FS-AAAA-BBBB",
    "invoice_number": 1234567,
    "charged_at": WHEN,
    "card": "Mastercard ending 4444",
    "case_path": "/account/billing/cases/FS-AAAA-BBBB",
    "turn_off_path": "/account/subscriptions/1/turn-off",
    "reason": "I was charged after I turned off auto-renew or cancelled",
    "note": "Ich habe das Abo am 3. November gekündigt und trotzdem wurde mein Konto "
    "belastet. Bitte erstatten Sie den Betrag auf meine Karte zurück.",
}
REFUND = {"arrives_from": WHEN, "arrives_by": LATER, "refunded_earlier": False}
PURCHASE = {
    "invoice_number": 1234567,
    "price": "EUR 1179.99",
    "term": "year",
    "auto_renew": True,
    "trial_ends_at": None,
    "last_free_day": None,
    "next_charge_at": LATER,
    "ends_at": LATER,
    "refund_days": 30,
    "refund_after_renewal": True,
    "withdrawal_days": 14,
    "immediate_start": True,
    "withdrawal_right_waived": True,
    "withdraw_path": "/withdraw",
    "turn_off_path": "/account/subscriptions/1/turn-off",
    "receipt_path": "/account/billing/receipts/1234567",
}
WITHDRAWAL = {
    "reference": "FS-AAAA-BBBB",
    "declaration": DECLARATION,
    "received_at": WHEN,
    "purchased_at": WHEN,
    "receipt_number": 1234567,
    "ends_at": LATER,
    "trial": False,
    "paid": "EUR 1179.99",
    "refund_amount": "EUR 1150.90",
    "kept_amount": "EUR 29.09",
    "full_refund": False,
    "waived_full_refund": True,
    "card": "Mastercard ending 4444, Visa ending 4242",
    "refund_by": LATER,
    "arrival_business_days": "5 to 10 or 3 to 5",
}
TURNED_OFF = {
    "reference": "FS-AAAA-BBBB",
    "received_at": WHEN,
    "ends_at": LATER,
    "charge_in_flight": None,
    "confirmation_path": "/account/cancellations/FS-AAAA-BBBB",
}
EVERY_EMAIL: dict[str, tuple[str, dict[str, object]]] = {
    "auto_renew_off": ("auto_renew_off", TURNED_OFF),
    "auto_renew_off, charge in flight": (
        "auto_renew_off",
        {**TURNED_OFF, "charge_in_flight": "EUR 1179.99"},
    ),
    "auto_renew_off, extraordinary": (
        "auto_renew_off",
        {**TURNED_OFF, "extraordinary": True, "wished_end": WHEN, "declaration": DECLARATION},
    ),
    "auto_renew_off, wished end": (
        "auto_renew_off",
        {**TURNED_OFF, "extraordinary": False, "wished_end": WHEN, "declaration": DECLARATION},
    ),
    "auto_renew_on": ("auto_renew_on", {"price": "EUR 1179.99", "renews_at": WHEN}),
    "password_reset": ("password_reset", {"reset_path": "/password-reset/abc"}),
    "renewal_charged": ("renewal_charged", {"amount": "EUR 1179.99"}),
    "renewal_charged, last": ("renewal_charged", {"auto_renew": False}),
    "payment_failed, retry": (
        "payment_failed",
        {
            "amount": "EUR 1179.99",
            "reason": "declined by your bank",
            "retry_at": WHEN,
            "ends_at": LATER,
            "payment_path": "/account/payment-methods",
        },
    ),
    "payment_failed, last": (
        "payment_failed",
        {
            "amount": "EUR 1179.99",
            "reason": "declined by your bank",
            "retry_at": None,
            "ends_at": LATER,
            "payment_path": "/account/payment-methods",
        },
    ),
    "purchase_confirmed": ("purchase_confirmed", PURCHASE),
    "purchase_confirmed, trial": (
        "purchase_confirmed",
        {**PURCHASE, "trial_ends_at": WHEN, "last_free_day": WHEN, "immediate_start": False},
    ),
    "purchase_confirmed, one term": (
        "purchase_confirmed",
        {**PURCHASE, "auto_renew": False, "refund_after_renewal": False, "withdrawal_days": None},
    ),
    "purchase_confirmed, not waived": (
        "purchase_confirmed",
        {**PURCHASE, "withdrawal_right_waived": False},
    ),
    "purchase_failed": (
        "purchase_failed",
        {
            "amount": "EUR 1179.99",
            "reason": "declined by your bank",
            "plans_path": "/plans",
        },
    ),
    "renewal_reminder": (
        "renewal_reminder",
        {
            "amount": "EUR 1179.99",
            "frequency": "yearly",
            "renews_on": WHEN,
            "turn_off_path": "/account/subscriptions/1/turn-off",
        },
    ),
    "trial_reminder": (
        "trial_reminder",
        {
            "amount": "EUR 1179.99",
            "frequency": "yearly",
            "renews_on": WHEN,
            "trial_ends_on": WHEN,
            "turn_off_path": "/account/subscriptions/1/turn-off",
        },
    ),
    "price_increase_notice": (
        "price_increase_notice",
        {
            "old_amount": "EUR 1179.99",
            "new_amount": "EUR 1299.99",
            "frequency": "yearly",
            "effective_on": WHEN,
            "turn_off_path": "/account/subscriptions/1/turn-off",
        },
    ),
    "refund_confirmed": (
        "refund_confirmed",
        {
            **TURNED_OFF,
            "amount": "EUR 1179.99",
            "full": True,
            "reason": "Pro-rata refund: 10 of the 12 months paid for by the renewal on "
            "2026-11-29 are unused, so 10/12 of EUR 1179.99 comes back.",
            "ended_at": WHEN,
            "arrives_from": WHEN,
            "arrives_by": LATER,
            "card": "Mastercard ending 4444",
            "refund_status": "requested",
            "arrival_business_days": "5 to 10",
        },
    ),
    "charge_case_opened": ("charge_case_opened", {**CASE, "amount": "EUR 1179.99"}),
    "charge_case_refunded": (
        "charge_case_refunded",
        {
            **CASE,
            **REFUND,
            "amount": "EUR 1179.99",
            "refund_amount": "EUR 1179.99",
            "automatic": False,
            "turn_off_reference": None,
            "turn_off_received_at": None,
            "resolution_note": "You turned auto-renew off on 3 November by email to our "
            "support team; we should have recorded it then, and we are sorry we did not.",
        },
    ),
    "charge_case_refunded, automatic": (
        "charge_case_refunded",
        {
            **CASE,
            **REFUND,
            "amount": "EUR 1179.99",
            "refund_amount": "EUR 1179.99",
            "automatic": True,
            "turn_off_reference": "FS-CCCC-DDDD",
            "turn_off_received_at": WHEN,
            "resolution_note": None,
        },
    ),
    "charge_case_rejected": (
        "charge_case_rejected",
        {
            **CASE,
            "amount": "EUR 1179.99",
            "resolution_note": "The charge is the yearly renewal you agreed to at checkout; "
            "auto-renew was still on when it was made, and you used the service since.",
        },
    ),
    "last_renewal_declined": (
        "last_renewal_declined",
        {
            "amount": "EUR 1179.99",
            "reference": "FS-AAAA-BBBB",
            "ends_at": WHEN,
            "confirmation_path": "/account/cancellations/FS-AAAA-BBBB",
        },
    ),
    "withdrawal_received": ("withdrawal_received", WITHDRAWAL),
    "withdrawal_received, full": (
        "withdrawal_received",
        {**WITHDRAWAL, "full_refund": True, "waived_full_refund": False},
    ),
    "withdrawal_received, refunded before": (
        "withdrawal_received",
        {**WITHDRAWAL, "full_refund": False, "waived_full_refund": False},
    ),
    "withdrawal_received, trial": ("withdrawal_received", {**WITHDRAWAL, "trial": True}),
    "subscription_ended": (
        "subscription_ended",
        {"ended_at": WHEN, "plans_path": "/plans", "statement_path": "/account/billing"},
    ),
    "subscription_ended, no amount": (
        "subscription_ended",
        {
            "amount": None,
            "ended_at": WHEN,
            "plans_path": "/plans",
            "statement_path": "/account/billing",
        },
    ),
}


def test_every_email_kind_is_covered_below() -> None:
    assert {kind for kind, _ in EVERY_EMAIL.values()} == set(SUBJECTS)


@pytest.mark.parametrize("locale", ["en_GB", "de_DE", "en_US"])
@pytest.mark.parametrize("case", sorted(EVERY_EMAIL))
def test_every_plain_text_email_fits_a_78_column_reader(case: str, locale: str) -> None:
    """The purchase confirmation ran to 126 characters a line, a withdrawal's declaration
    to 177, a failed payment to 109 and the refund and case emails to about 88, so a
    plain-text reader broke them mid-sentence; no line but a lone link is longer than 78
    now, with a long product name, a German customer's declaration and note, and every
    branch of each email."""
    kind, extra = EVERY_EMAIL[case]
    payload = {**renewal("EUR 1179.99", locale), **LONG_PRODUCT, **extra}
    payload["name"] = "Maximiliane"
    email = EmailRenderer(DEMO_SITE).render(1, kind, "a@example.com", payload, WRITTEN)

    lines = email.text.splitlines()
    a_link = [line for line in lines if line.startswith(BASE) and " " not in line]
    long = [line for line in lines if len(line) > 78 and line not in a_link]
    assert long == []
