"""Customer accounts: who signs in, and how we write to them."""

from __future__ import annotations

from dataclasses import dataclass

from fairsub.domain.errors import InvalidInput

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    email: str
    name: str
    region: str
    locale: str
    timezone: str


def normalize_email(text: str) -> str:
    """Lower-cased and trimmed; a light shape check only, since the real check is the
    email we send. Keeps error messages identical for unknown and malformed addresses."""
    email = text.strip().lower()
    local, _, domain = email.partition("@")
    # No space, tab, line break or other control character: an address with a CR/LF in it
    # could never be mailed (the relay retried it for ever) and must not reach a header.
    unprintable = any(ch.isspace() or not ch.isprintable() for ch in email)
    if not local or "." not in domain or "@" in domain or unprintable or len(email) > 254:
        raise InvalidInput("Enter the email address you use for your subscription.")
    return email


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput("That password is too long.", field="password")
