"""Turning an outbox row into an email with a plain-text and an HTML part."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from fairsub.adapters import display
from fairsub.services.ports import EmailMessage

SUBJECTS = {
    "auto_renew_off": "Auto-renew is off — reference {reference}",
    "auto_renew_on": "Auto-renew is back on for {product}",
    "password_reset": "Reset your password",
    "renewal_charged": "Receipt {invoice_number}: {product} renewed",
    "payment_failed": "Payment for {product} did not go through",
}


@dataclass(frozen=True, slots=True)
class Site:
    base_url: str
    vendor: str
    sender: str
    message_domain: str


class EmailRenderer:
    def __init__(self, site: Site) -> None:
        self.site = site
        self._env = Environment(
            loader=FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(
        self, message_id: int, kind: str, recipient: str, payload: dict[str, Any]
    ) -> EmailMessage:
        locale, timezone = payload["locale"], payload["timezone"]

        def when(key: str) -> str:
            return display.local_datetime(display.parse_iso(payload[key]), timezone, locale)

        def day(key: str) -> str:
            return display.local_date(display.parse_iso(payload[key]), timezone, locale)

        def link(path: str) -> str:
            return self.site.base_url.rstrip("/") + path

        context = {**payload, "site": self.site, "when": when, "day": day, "link": link}
        return EmailMessage(
            to=recipient,
            subject=SUBJECTS[kind].format(**payload),
            text=self._env.get_template(f"{kind}.txt").render(context),
            html=self._env.get_template(f"{kind}.html").render(context),
            message_id=f"<outbox-{message_id}@{self.site.message_domain}>",
        )
