"""Is this phone number, address or link really ours? (compliance C30-C31)

Scams around cancellation work by putting a fake 'support' contact in front of people.
The official channels are configured; anything else is, by definition, not us.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit


class ContactKind(StrEnum):
    PHONE = "phone number"
    EMAIL = "email address"
    LINK = "link"


@dataclass(frozen=True, slots=True)
class OfficialChannels:
    domains: tuple[str, ...]
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    origins: tuple[str, ...] = ()
    """Exact origins (scheme://host[:port]) that are ours, e.g. a dev server on http."""


@dataclass(frozen=True, slots=True)
class ContactVerdict:
    kind: ContactKind
    shown: str
    official: bool


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _host_is_ours(host: str, domains: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


def check_contact(text: str, channels: OfficialChannels) -> ContactVerdict:
    value = text.strip()
    if "@" in value and "/" not in value:
        address = value.lower().removeprefix("mailto:")
        official = address in {e.lower() for e in channels.emails}
        return ContactVerdict(ContactKind.EMAIL, address, official)
    digits = _digits(value)
    letters = any(ch.isalpha() for ch in value)
    if digits and not letters and len(digits) >= 5:
        official = any(_digits(p) == digits for p in channels.phones if _digits(p))
        return ContactVerdict(ContactKind.PHONE, value, official)
    if "\\" in value or any(ch.isspace() or ord(ch) < 32 for ch in value):
        # Browsers read a backslash as a slash: https://evil.example\.ours.example is evil.
        return ContactVerdict(ContactKind.LINK, value, official=False)
    url = value if "://" in value else "https://" + value
    try:
        # Both raise ValueError on what no browser would open as one of ours: a broken
        # IPv6 bracket ("https://[ours.example/"), a non-numeric port ("ours.example:evil.com").
        parts = urlsplit(url)
        parts.port  # noqa: B018
    except ValueError:
        return ContactVerdict(ContactKind.LINK, value, official=False)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    # Otherwise http:// is never ours: an official link is always served over TLS.
    official = origin in channels.origins or (
        parts.scheme == "https"
        and not parts.username
        and _host_is_ours(parts.hostname or "", tuple(d.lower() for d in channels.domains))
    )
    return ContactVerdict(ContactKind.LINK, value, official)
