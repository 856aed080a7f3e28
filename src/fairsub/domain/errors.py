"""Every error fairsub raises on purpose, in one tree.

Each entrypoint maps these to its own language: the API to RFC 9457 problem JSON,
the portal to the form again with the message, the CLI to one line on stderr and exit 2.
`code` is stable and documented; `status` is the HTTP status the API and portal use.
"""

from __future__ import annotations


class FairsubError(Exception):
    """Base of the tree. The message is safe to show to the person who caused it."""

    code = "fairsub_error"
    status = 400
    field: str | None = None  # the form field to correct, when one is at fault

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(FairsubError):
    """Input that does not parse or is out of range (a bad email, a bad date)."""

    code = "invalid_input"
    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(FairsubError):
    """The thing does not exist, or belongs to someone else: the two look the same."""

    code = "not_found"
    status = 404


class InvalidTransition(FairsubError):
    """A status change the lifecycle does not allow (e.g. renewing an expired subscription)."""

    code = "invalid_transition"
    status = 409


class NotAllowed(FairsubError):
    """The action exists but not for this subscription (e.g. one bought through a reseller)."""

    code = "not_allowed"
    status = 409


class AuthenticationFailed(FairsubError):
    """Email and password do not match. Deliberately says nothing about which was wrong."""

    code = "authentication_failed"
    status = 401


class TooManyAttempts(FairsubError):
    """Sign-in throttled for this account or address."""

    code = "too_many_attempts"
    status = 429

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class TokenInvalid(FairsubError):
    """A password-reset link that is unknown, used or expired."""

    code = "token_invalid"
    status = 400


class CsrfFailed(FairsubError):
    """A form arrived without the token of the page that showed it."""

    code = "csrf_failed"
    status = 403
