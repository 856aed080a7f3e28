"""The error tree: stable codes and HTTP statuses that entrypoints rely on."""

from __future__ import annotations

import pytest

from fairsub.domain import errors
from fairsub.domain.errors import FairsubError, TooManyAttempts

# The documented contract: changing a code breaks API clients, so it is spelled out here.
STABLE = {
    errors.FairsubError: ("fairsub_error", 400),
    errors.InvalidInput: ("invalid_input", 422),
    errors.NotFound: ("not_found", 404),
    errors.InvalidTransition: ("invalid_transition", 409),
    errors.NotAllowed: ("not_allowed", 409),
    errors.AuthenticationFailed: ("authentication_failed", 401),
    errors.TooManyAttempts: ("too_many_attempts", 429),
    errors.TokenInvalid: ("token_invalid", 400),
    errors.CsrfFailed: ("csrf_failed", 403),
}


def test_every_error_in_the_module_is_in_the_documented_tree() -> None:
    defined = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, FairsubError)
    }
    assert defined == set(STABLE)


@pytest.mark.parametrize("error", STABLE, ids=lambda e: e.__name__)
def test_each_error_keeps_its_code_and_a_4xx_status(error: type[FairsubError]) -> None:
    assert (error.code, error.status) == STABLE[error]
    assert 400 <= error.status < 500


def test_codes_are_unique() -> None:
    codes = [code for code, _ in STABLE.values()]
    assert len(set(codes)) == len(codes)


def test_the_message_is_kept_for_the_user() -> None:
    error = errors.NotFound("There is no such subscription on your account.")

    assert error.message == "There is no such subscription on your account."
    assert str(error) == error.message


def test_too_many_attempts_says_when_to_retry() -> None:
    error = TooManyAttempts("Try again in a minute.", retry_after_seconds=60)

    assert error.retry_after_seconds == 60
    assert isinstance(error, FairsubError)
