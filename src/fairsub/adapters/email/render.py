"""Turning an outbox row into an email with a plain-text and an HTML part."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from fairsub.adapters import display
from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money
from fairsub.services.ports import EmailMessage

SUBJECTS = {
    "auto_renew_off": "Auto-renew is off for {product} (reference {reference})",
    "auto_renew_on": "Auto-renew is back on for {product}",
    "password_reset": "Reset your password",
    "renewal_charged": "Receipt {invoice_number}: {product} renewed",
    "payment_failed": "Payment for {product} did not go through",
    "purchase_confirmed": "Your {product} order — receipt {invoice_number}",
    "purchase_failed": "Your {product} order did not go through",
    "renewal_reminder": "{product} renews on {renews_on} for {amount}",
    "trial_reminder": "Your {product} trial ends on {trial_ends_on}",
    "price_increase_notice": "{product}: new price {new_amount} from {effective_on}",
    "refund_confirmed": "{product} cancelled — {amount} refund on its way — reference {reference}",
    "charge_case_opened": "We received your question about a charge — case {reference}",
    "charge_case_refunded": "Case {reference}: {refund_amount} is on its way back to your card",
    "charge_case_rejected": "Case {reference}: the outcome of your question about a charge",
    "last_renewal_declined": "Nothing charged: {product} ended on {ends_at} ({reference})",
    "withdrawal_received": "We received your withdrawal from {product} — reference {reference}",
    "subscription_ended": "{product} has ended: we could not take the payment",
}


# Payload keys that hold an amount. The outbox keeps amounts locale-free (Money.plain:
# 'GBP 79.99'); the email shows them as the portal does, in the reader's locale ('£79.99').
MONEY_KEYS = frozenset(
    {
        "amount",
        "charge_in_flight",
        "kept_amount",
        "new_amount",
        "old_amount",
        "paid",
        "price",
        "refund_amount",
    }
)


def _localized(payload: dict[str, Any], locale: str) -> dict[str, Any]:
    return {
        key: _amount(value, locale) if key in MONEY_KEYS else value
        for key, value in payload.items()
    }


def _amount(value: Any, locale: str) -> Any:
    """An amount in the reader's locale; anything else (None, text from an older
    release) as it is, so the email still goes out."""
    if not isinstance(value, str):
        return value
    try:
        return display.money(Money.from_plain(value), locale)
    except InvalidInput:
        return value


@dataclass(frozen=True, slots=True)
class Site:
    base_url: str
    vendor: str
    sender: str
    message_domain: str


def _subject_value(value: Any, day: Any, key: str) -> Any:
    """Dates travel as ISO text; in a subject line they read as the customer's date."""
    if isinstance(value, str) and len(value) >= 19 and value[4:5] == "-" and value[10:11] == "T":
        try:
            display.parse_iso(value)
        except ValueError:
            return value
        return day(key)
    return value


class EmailRenderer:
    def __init__(self, site: Site) -> None:
        self.site = site
        self._env = Environment(
            loader=FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # The templates ship with the package: no need to stat them before each email.
            auto_reload=False,
        )

    def render(
        self,
        message_id: int,
        kind: str,
        recipient: str,
        payload: dict[str, Any],
        written_at: datetime,
    ) -> EmailMessage:
        locale, timezone = payload["locale"], payload["timezone"]

        # Each is formatted once and shown in both parts: Babel's formatting was a sixth
        # of the relay's work for a turn-off's email, done twice over.
        @cache
        def when(key: str) -> str:
            return display.local_datetime(display.parse_iso(payload[key]), timezone, locale)

        @cache
        def day(key: str) -> str:
            return display.local_date(display.parse_iso(payload[key]), timezone, locale)

        def link(path: str) -> str:
            return self.site.base_url.rstrip("/") + path

        values = _localized(payload, locale)
        context = {**values, "site": self.site, "when": when, "day": day, "link": link}
        return EmailMessage(
            to=recipient,
            subject=SUBJECTS[kind].format(
                **{k: _subject_value(v, day, k) for k, v in values.items()}
            ),
            text=self._env.get_template(f"{kind}.txt").render(context),
            html=self._env.get_template(f"{kind}.html").render(context),
            message_id=f"<outbox-{message_id}@{self.site.message_domain}>",
            written_at=written_at,
        )
