"""Reference numbers: FS-XXXX-XXXX in Crockford base32 with a check character."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairsub.domain import references
from fairsub.domain.errors import InvalidInput
from fairsub.domain.references import (
    ALPHABET,
    is_valid_reference,
    new_reference,
    normalize_reference,
)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SHAPE = re.compile(r"FS-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")
KNOWN = "FS-10K3-M0QW"  # a valid reference with the digits people mistype as letters
BACKGROUND = "7K3MQ9T"

payloads = st.text(alphabet=ALPHABET, min_size=7, max_size=7)


def shown(code: str) -> str:
    """The eight characters as printed for a customer."""
    return f"FS-{code[:4]}-{code[4:]}"


def complete(payload: str) -> str:
    """The payload plus the one check character that makes it valid (public API only)."""
    return next(payload + c for c in ALPHABET if is_valid_reference(shown(payload + c)))


def test_the_alphabet_is_crockford_base32() -> None:
    assert ALPHABET == CROCKFORD


def test_new_references_have_the_printed_shape_and_are_valid() -> None:
    for _ in range(200):
        reference = new_reference()
        assert SHAPE.fullmatch(reference), reference
        assert normalize_reference(reference) == reference


def test_twenty_thousand_new_references_are_all_different() -> None:
    references = [new_reference() for _ in range(20_000)]
    assert len(set(references)) == len(references)


@given(payloads)
def test_exactly_one_check_character_completes_any_payload(payload: str) -> None:
    valid = [c for c in ALPHABET if is_valid_reference(shown(payload + c))]
    assert len(valid) == 1


# What the check character catches


@given(payloads)
def test_every_single_character_substitution_is_caught(payload: str) -> None:
    code = complete(payload)
    for position, wrong in product(range(8), ALPHABET):
        if wrong == code[position]:
            continue
        typo = code[:position] + wrong + code[position + 1 :]
        with pytest.raises(InvalidInput, match="typing mistake"):
            normalize_reference(shown(typo))


def codes_covering_every_pair_at(position: int) -> Iterator[str]:
    """Valid codes in which the characters at `position` and `position + 1` take every
    ordered pair of alphabet characters. For the pair ending on the check character, the
    first character is varied until the check character has taken every value."""
    for a, b in product(ALPHABET, repeat=2):
        if position + 1 < 7:
            yield complete(BACKGROUND[:position] + a + b + BACKGROUND[position + 2 :])
        else:
            yield complete(b + BACKGROUND[1:position] + a)


def swapped(code: str, position: int) -> str:
    return code[:position] + code[position + 1] + code[position] + code[position + 2 :]


def missed_transpositions(position: int) -> set[tuple[str, str]]:
    pairs_seen = set()
    missed = set()
    for code in codes_covering_every_pair_at(position):
        pair = (code[position], code[position + 1])
        pairs_seen.add(pair)
        if pair[0] != pair[1] and is_valid_reference(shown(swapped(code, position))):
            missed.add(pair)
    assert len(pairs_seen) == len(ALPHABET) ** 2  # the search really was exhaustive
    return missed


# Luhn mod 32 cannot see a swap of the first and last alphabet characters ("0" and "Z"),
# the same blind spot as "09" <-> "90" in credit card numbers; references.py says so.
LUHN_BLIND_SPOT = {("0", "Z"), ("Z", "0")}


@pytest.mark.parametrize("position", range(7))
def test_every_other_adjacent_transposition_is_caught(position: int) -> None:
    assert missed_transpositions(position) <= LUHN_BLIND_SPOT


def test_swapping_neighbouring_0_and_z_is_the_one_documented_blind_spot() -> None:
    code = complete("0Z" + BACKGROUND[2:])
    assert is_valid_reference(shown(swapped(code, 0)))
    assert "except 0 and Z" in " ".join(references.__doc__.split())  # type: ignore[union-attr]


# Reading back what a person typed


@pytest.mark.parametrize(
    "typed",
    [
        "FS-10K3-M0QW",
        "fs-10k3-m0qw",
        "  FS-10K3-M0QW\n",
        "FS 10K3 M0QW",
        "fs 10k3 m0qw",
        "FS10K3M0QW",
        "FS-10K3M0QW",
        "FS-1OK3-MOQW",
        "FS-I0K3-M0QW",
        "FS-L0K3-M0QW",
        "fs-l0k3-moqw",
        "fs i o k 3 m o q w",
    ],
)
def test_normalize_forgives_case_spaces_dashes_and_look_alike_letters(typed: str) -> None:
    assert normalize_reference(typed) == KNOWN
    assert is_valid_reference(typed)


def test_normalize_reads_u_as_v() -> None:
    assert normalize_reference("fs-0011-zzu8") == "FS-0011-ZZV8"


@pytest.mark.parametrize(
    "typed",
    ["", "FS-", "FS-10K3-M0Q", "FS-10K3-M0QWX", "FS-10K3-M0Q!", "FS_10K3_M0QW", "FS-10K3-M0Q#"],
)
def test_malformed_references_are_refused_with_the_expected_shape(typed: str) -> None:
    with pytest.raises(InvalidInput, match="FS-7K3M-Q9TZ"):
        normalize_reference(typed)
    assert not is_valid_reference(typed)


@given(payloads)
def test_a_normalized_reference_normalizes_to_itself(payload: str) -> None:
    reference = shown(complete(payload))
    assert normalize_reference(reference) == reference
    assert normalize_reference(reference.lower().replace("-", " ")) == reference
