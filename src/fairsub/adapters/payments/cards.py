"""What a gateway checks before it keeps a card: the number's checksum, the expiry, the CVC.

Shared by the sandbox and the Stripe adapter (in test mode), so both refuse the same
typing mistakes with the same customer-facing messages.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from fairsub.domain.errors import InvalidInput
from fairsub.services.ports import CardDetails

# How far ahead an expiry may be before it looks like a typing mistake.
MAX_YEARS_AHEAD = 20


@dataclass(frozen=True, slots=True)
class CheckedCard:
    """A card that passed the checks. `number` is digits only; never store it."""

    number: str
    brand: str
    last4: str
    expires: str  # "MM/YYYY"


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def brand_of(digits: str) -> str:
    """Visa, Mastercard or Amex by the number's prefix; "Card" for anything else."""
    if digits.startswith("4"):
        return "Visa"
    if digits[:2] in ("34", "37"):
        return "Amex"
    if 51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720:
        return "Mastercard"
    return "Card"


def check_card(card: CardDetails, now: datetime) -> CheckedCard:
    """The card's digits, brand and expiry, or InvalidInput saying what to correct."""
    # Full-width digits (typed with a Japanese or Chinese input method on) are the same
    # digits: NFKC makes them ASCII. Any other character is not part of a card number.
    digits = unicodedata.normalize("NFKC", card.number).replace(" ", "").replace("-", "")
    if not (digits.isascii() and digits.isdigit()) or not 12 <= len(digits) <= 19:
        raise InvalidInput(
            "Enter the card number as printed on the card: 12 to 19 digits.", field="card_number"
        )
    if not luhn_valid(digits):
        raise InvalidInput(
            "That card number is not valid. Please check it and try again.", field="card_number"
        )
    brand = brand_of(digits)
    if not 1 <= card.exp_month <= 12:
        raise InvalidInput("The expiry month must be between 01 and 12.", field="expiry")
    year = card.exp_year + 2000 if 0 <= card.exp_year < 100 else card.exp_year
    if (year, card.exp_month) < (now.year, now.month):
        raise InvalidInput(
            "That card has expired. Please use a card that is still valid.", field="expiry"
        )
    if year > now.year + MAX_YEARS_AHEAD:
        raise InvalidInput(
            "Please check the expiry year: it is too far in the future.", field="expiry"
        )
    cvc_length = 4 if brand == "Amex" else 3
    cvc = unicodedata.normalize("NFKC", card.cvc)
    if not (cvc.isascii() and cvc.isdigit() and len(cvc) == cvc_length):
        where = "on the front of the card" if brand == "Amex" else "on the back of the card"
        raise InvalidInput(f"The security code is the {cvc_length} digits {where}.", field="cvc")
    return CheckedCard(
        number=digits, brand=brand, last4=digits[-4:], expires=f"{card.exp_month:02d}/{year}"
    )
