"""Compliance C30-C31: is this phone number, address or link really ours?"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairsub.domain.contacts import ContactKind, OfficialChannels, check_contact

PHONE = "+1 800 555 0100"


def channels(**overrides: Any) -> OfficialChannels:
    fields: dict[str, Any] = {
        "domains": ("larkspur.example",),
        "emails": ("support@larkspur.example", "no-reply@larkspur.example"),
        "phones": (PHONE,),
        "origins": ("http://127.0.0.1:8000",),
    }
    return OfficialChannels(**(fields | overrides))


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("support@larkspur.example", ContactKind.EMAIL),
        ("No-Reply@Larkspur.Example", ContactKind.EMAIL),
        ("  mailto:support@larkspur.example ", ContactKind.EMAIL),
        ("https://larkspur.example/account", ContactKind.LINK),
        ("https://LARKSPUR.EXAMPLE/", ContactKind.LINK),
        ("https://larkspur.example./account", ContactKind.LINK),
        ("larkspur.example/account/subscriptions", ContactKind.LINK),
        ("https://portal.larkspur.example/cancel?ref=FS-10K3-M0QW", ContactKind.LINK),
        ("http://127.0.0.1:8000/account", ContactKind.LINK),
        (PHONE, ContactKind.PHONE),
        ("+1 (800) 555-0100", ContactKind.PHONE),
        ("1-800-555-0100", ContactKind.PHONE),
        ("18005550100", ContactKind.PHONE),
    ],
)
def test_c31_official_channels_are_recognised(text: str, kind: ContactKind) -> None:
    verdict = check_contact(text, channels())

    assert verdict.kind is kind
    assert verdict.official is True


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("https://larkspur.example.evil.com/cancel", ContactKind.LINK),
        ("larkspur.example.evil.com", ContactKind.LINK),
        ("https://evil-larkspur.example/refund", ContactKind.LINK),
        ("evil-larkspur.example", ContactKind.LINK),
        ("https://notlarkspur.example", ContactKind.LINK),
        ("http://larkspur.example/account", ContactKind.LINK),
        ("http://portal.larkspur.example/account", ContactKind.LINK),
        ("ftp://larkspur.example/", ContactKind.LINK),
        ("https://larkspur.example@evil.com/cancel", ContactKind.LINK),
        ("https://support:secret@larkspur.example/", ContactKind.LINK),
        ("https://evil.com/larkspur.example", ContactKind.LINK),
        ("https://evil.com/?next=https://larkspur.example", ContactKind.LINK),
        ("http://127.0.0.1:8001/account", ContactKind.LINK),
        ("https://127.0.0.1:8000/account", ContactKind.LINK),
        ("1-800-LARKSPUR", ContactKind.LINK),
        ("larkspur.example@evil.com", ContactKind.EMAIL),
        ("support@larkspur.example.evil.com", ContactKind.EMAIL),
        ("support@evil-larkspur.example", ContactKind.EMAIL),
        ("billing@larkspur.example", ContactKind.EMAIL),
        ("+1 800 555 0199", ContactKind.PHONE),
        ("800-555-0100", ContactKind.PHONE),
        ("+44 20 7946 0000", ContactKind.PHONE),
        ("+1 800 555 0100 1", ContactKind.PHONE),
    ],
)
def test_c30_lookalikes_and_unknown_contacts_are_not_official(text: str, kind: ContactKind) -> None:
    verdict = check_contact(text, channels())

    assert verdict.kind is kind
    assert verdict.official is False


@pytest.mark.parametrize(
    "text", ["https://evil.com\\.larkspur.example/cancel", "evil.com\\.larkspur.example"]
)
def test_c30_a_backslash_cannot_smuggle_another_host_past_the_check(text: str) -> None:
    # Browsers read "\\" as "/": https://evil.com\\.larkspur.example opens evil.com.
    assert check_contact(text, channels()).official is False


def test_c30_a_non_numeric_port_is_not_ours() -> None:
    assert check_contact("https://larkspur.example:evil.com/x", channels()).official is False


@pytest.mark.parametrize(
    "text", ["https://[larkspur.example/", "[larkspur.example", "https://larkspur.example]/"]
)
def test_c30_a_broken_ipv6_bracket_is_not_ours(text: str) -> None:
    verdict = check_contact(text, channels())
    assert (verdict.kind, verdict.official) == (ContactKind.LINK, False)


@given(st.text(max_size=200))
def test_c30_any_text_gets_a_verdict(text: str) -> None:
    # The check is public and takes anything typed: it answers, it never fails.
    verdict = check_contact(text, channels())
    assert verdict.official in (True, False)


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    """Five to fifteen digits, written the ways people write phone numbers."""
    digits = draw(st.text(alphabet="0123456789", min_size=5, max_size=15))
    separators = st.sampled_from(["", "", " ", "-", ".", "(", ")", " / "])
    after = draw(st.lists(separators, min_size=len(digits), max_size=len(digits)))
    plus = draw(st.sampled_from(["", "+", "00"]))
    return plus + "".join(d + s for d, s in zip(digits, after, strict=True))


@given(phone_numbers())
def test_c30_with_no_official_phones_every_phone_number_is_not_official(text: str) -> None:
    verdict = check_contact(text, channels(phones=()))

    assert verdict.kind is ContactKind.PHONE
    assert verdict.official is False


def test_c30_the_former_official_number_is_not_official_once_unconfigured() -> None:
    assert check_contact(PHONE, channels(phones=())).official is False


def test_an_email_is_shown_lower_cased_without_mailto() -> None:
    verdict = check_contact("mailto:Support@Larkspur.Example", channels())

    assert verdict.shown == "support@larkspur.example"


def test_a_link_or_number_is_shown_as_typed_without_surrounding_space() -> None:
    assert check_contact("  https://Larkspur.example/x ", channels()).shown == (
        "https://Larkspur.example/x"
    )
    assert check_contact(" +1 (800) 555-0100 ", channels()).shown == "+1 (800) 555-0100"
