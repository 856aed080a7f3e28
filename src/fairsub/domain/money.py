"""Money as integer minor units of an ISO 4217 currency. No floats, anywhere."""

from __future__ import annotations

from dataclasses import dataclass

from fairsub.domain.errors import InvalidInput

# Minor-unit exponents for the currencies fairsub sells in. Unknown codes are refused
# rather than guessed, because a wrong exponent is a hundredfold pricing error.
MINOR_UNITS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "SEK": 2, "NOK": 2,
    "DKK": 2, "PLN": 2, "CZK": 2, "BRL": 2, "MXN": 2, "INR": 2,
    "JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0,
    "KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


def minor_units(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise InvalidInput(f"Unknown currency {currency!r}.") from None


@dataclass(frozen=True, slots=True, order=False)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise InvalidInput("Money amounts are whole minor units.")
        minor_units(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: object) -> None:
        if not isinstance(other, Money):
            raise InvalidInput("Money combines only with Money.")
        if self.currency != other.currency:
            raise InvalidInput(f"Cannot mix {self.currency} and {other.currency}.")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor <= other.amount_minor

    def allocate(self, parts: int) -> list[Money]:
        """Split into `parts` amounts that differ by at most one minor unit and sum exactly."""
        if parts < 1:
            raise InvalidInput("Allocate into at least one part.")
        base, remainder = divmod(self.amount_minor, parts)
        return [Money(base + (1 if i < remainder else 0), self.currency) for i in range(parts)]

    @classmethod
    def from_plain(cls, text: str) -> Money:
        """The amount `plain()` wrote: 'EUR 49.99' is Money(4999, 'EUR')."""
        currency, _, number = text.partition(" ")
        exponent = minor_units(currency)
        sign = -1 if number.startswith("-") else 1
        whole, dot, frac = number.removeprefix("-").partition(".")
        if (
            not (whole.isascii() and whole.isdigit())
            or len(frac) != exponent
            or (frac and not (frac.isascii() and frac.isdigit()))
            or bool(dot) != bool(exponent)
        ):
            raise InvalidInput(f"Not an amount as plain() writes one: {text!r}.")
        return cls(sign * (int(whole) * 10**exponent + int(frac or 0)), currency)

    def plain(self) -> str:
        """A locale-free rendering for logs and plain text: 'EUR 49.99', 'JPY 4800'."""
        exponent = minor_units(self.currency)
        sign = "-" if self.amount_minor < 0 else ""
        whole, frac = divmod(abs(self.amount_minor), 10**exponent)
        digits = f"{whole}.{frac:0{exponent}d}" if exponent else str(whole)
        return f"{self.currency} {sign}{digits}"
