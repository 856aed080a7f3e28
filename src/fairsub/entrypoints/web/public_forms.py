"""What the pages anyone may send without signing in share (the withdrawal function and
the German cancellation button): the shared messages in German, and dates and times for
a reader who may not be signed in."""

from __future__ import annotations

from fairsub.domain.accounts import Account
from fairsub.entrypoints.web.pages import Formatter
from fairsub.services import public_forms

# The services speak English; the German pages say the same in German.
GERMAN_ERRORS = {
    public_forms.NAME_MISSING: "Bitte geben Sie Ihren Namen ein.",
    public_forms.EMAIL_MISSING: "Bitte geben Sie die E-Mail-Adresse Ihres Kontos ein.",
    public_forms.CONTRACT_MISSING: "Bitte geben Sie die Belegnummer aus Ihrer Kaufbestätigung "
    "(zum Beispiel 1042) oder eine Referenz wie FS-7K3M-Q9TZ ein.",
}


def reader_format(customer: Account | None, locale: str, timezone: str) -> Formatter:
    """The signed-in customer's own country and zone; otherwise the page's (its language's
    country: Berlin time on the German pages). Always in the page's language."""
    language = locale.partition("_")[0]
    if customer is not None:
        return Formatter(customer.locale, customer.timezone, language)
    return Formatter(locale, timezone, language)
