"""Checking whether a phone number, address or link belongs to us (C30-C31)."""

from __future__ import annotations

from fairsub.domain.contacts import ContactVerdict, OfficialChannels, check_contact
from fairsub.domain.errors import InvalidInput


def check(text: str, channels: OfficialChannels) -> ContactVerdict:
    if not text.strip():
        raise InvalidInput("Paste the phone number, email address or link you were given.")
    if len(text) > 2000:
        raise InvalidInput("That is too long to be a phone number, address or link.")
    return check_contact(text, channels)
