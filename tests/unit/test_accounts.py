"""Account input checks: email shape and password length."""

from __future__ import annotations

import pytest

from fairsub.domain.accounts import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    check_new_password,
    normalize_email,
)
from fairsub.domain.errors import InvalidInput

SAME_MESSAGE_FOR_EVERY_BAD_EMAIL = "Enter the email address you use for your subscription."


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("erika@example.com", "erika@example.com"),
        ("  Erika@Example.COM\n", "erika@example.com"),
        ("first.last+billing@mail.example.co.uk", "first.last+billing@mail.example.co.uk"),
    ],
)
def test_emails_are_stored_trimmed_and_lower_cased(typed: str, stored: str) -> None:
    assert normalize_email(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "erika",
        "@example.com",
        "erika@localhost",
        "erika@",
        "eri ka@example.com",
        # Control characters: a CR/LF could never be mailed and must not reach a header.
        "gx@example.com\r\nBcc:y@evil.example",
        "g\x00x@example.com",
        "g\tx@example.com",
        "g\x1bx@example.com",
        "a@b@example.com",
        "x@" + "a" * 250 + ".com",
    ],
)
def test_malformed_emails_are_refused_with_one_message(typed: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize_email(typed)
    assert refused.value.message == SAME_MESSAGE_FOR_EVERY_BAD_EMAIL


@pytest.mark.parametrize("length", [MIN_PASSWORD_LENGTH, 64, MAX_PASSWORD_LENGTH])
def test_passwords_within_the_limits_are_accepted(length: int) -> None:
    check_new_password("p" * length)


@pytest.mark.parametrize(
    ("length", "message"),
    [
        (0, "at least 10"),
        (MIN_PASSWORD_LENGTH - 1, "at least 10"),
        (MAX_PASSWORD_LENGTH + 1, "too long"),
    ],
)
def test_passwords_outside_the_limits_are_refused(length: int, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_new_password("p" * length)
