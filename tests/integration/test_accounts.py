"""Signing in, throttling, sessions and password reset."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from fairsub.adapters.passwords import Argon2Hasher
from fairsub.bootstrap import Container
from fairsub.domain.errors import AuthenticationFailed, InvalidInput, TokenInvalid, TooManyAttempts
from fairsub.services import accounts, subscriptions
from fairsub.services.demo import DEMO_EMAIL, DEMO_PASSWORD
from fairsub.services.ports import PasswordHasher
from tests.builders import seeded
from tests.fakes import FakeClock, FakeMailer


def sign_in(
    container: Container,
    email: str = DEMO_EMAIL,
    password: str = DEMO_PASSWORD,
    address: str = "198.51.100.7",
) -> accounts.SignedIn:
    return accounts.sign_in(
        container.uows(),
        container.clock,
        container.hasher,
        email=email,
        password=password,
        address=address,
        user_agent="pytest",
    )


def test_sign_in_gives_a_session_that_finds_the_account(container: Container) -> None:
    data = seeded(container)
    signed_in = sign_in(container, email="  Demo@Example.com ")
    assert len(signed_in.session_token) >= 32  # 256 bits of token_urlsafe
    found = accounts.current_account(container.uows(), container.clock, signed_in.session_token)
    assert found == data.alex


def test_unknown_email_and_wrong_password_get_the_same_answer(container: Container) -> None:
    seeded(container)
    with pytest.raises(AuthenticationFailed) as wrong_password:
        sign_in(container, password="not-the-password")
    with pytest.raises(AuthenticationFailed) as unknown_email:
        sign_in(container, email="nobody@example.com")
    with pytest.raises(AuthenticationFailed) as malformed:
        sign_in(container, email="not an email")
    assert wrong_password.value.message == unknown_email.value.message == malformed.value.message


def test_sign_in_is_throttled_per_account_with_a_clear_message(container: Container) -> None:
    seeded(container)
    for _ in range(accounts.MAX_FAILURES_PER_EMAIL):
        with pytest.raises(AuthenticationFailed):
            sign_in(container, password="wrong-password")
    with pytest.raises(TooManyAttempts, match="Too many sign-in attempts"):
        sign_in(container)  # even the right password waits
    container.clock.advance(minutes=16)  # type: ignore[attr-defined]
    assert sign_in(container).account.email == DEMO_EMAIL


def test_sign_in_is_throttled_per_address_across_accounts(container: Container) -> None:
    seeded(container)
    for n in range(accounts.MAX_FAILURES_PER_ADDRESS):
        with pytest.raises(AuthenticationFailed):
            sign_in(container, email=f"guess{n}@example.com", address="203.0.113.9")
    with pytest.raises(TooManyAttempts):
        sign_in(container, address="203.0.113.9")
    assert sign_in(container, address="203.0.113.10").account.email == DEMO_EMAIL


def test_session_expires_after_30_idle_minutes(container: Container, clock: FakeClock) -> None:
    seeded(container)
    token = sign_in(container).session_token
    clock.advance(minutes=29)
    assert accounts.current_account(container.uows(), clock, token) is not None
    clock.advance(minutes=29)  # active a moment ago: the idle timer restarted
    assert accounts.current_account(container.uows(), clock, token) is not None
    clock.advance(minutes=31)
    assert accounts.current_account(container.uows(), clock, token) is None


def test_session_expires_after_12_hours_however_active(
    container: Container, clock: FakeClock
) -> None:
    seeded(container)
    token = sign_in(container).session_token
    for _ in range(12 * 3 - 1):  # a page every 20 minutes, for 11 h 40 min
        clock.advance(minutes=20)
        assert accounts.current_account(container.uows(), clock, token) is not None
    clock.advance(minutes=20)
    assert accounts.current_account(container.uows(), clock, token) is None


def test_a_session_carried_forward_is_idle_from_the_new_time_and_alone(
    container: Container, clock: FakeClock
) -> None:
    """The demo's clock control: 30 simulated days pass while the customer sits at the page."""
    seeded(container)
    token, other = sign_in(container).session_token, sign_in(container).session_token
    clock.advance(days=30)
    accounts.carry_session_forward(container.uows(), token, timedelta(days=30))

    assert accounts.current_account(container.uows(), clock, token) is not None
    assert accounts.current_account(container.uows(), clock, other) is None  # only that one
    clock.advance(minutes=31)  # idle from the new time on
    assert accounts.current_account(container.uows(), clock, token) is None


def test_sign_out_ends_the_session(container: Container) -> None:
    seeded(container)
    token = sign_in(container).session_token
    accounts.sign_out(container.uows(), token)
    assert accounts.current_account(container.uows(), container.clock, token) is None


def reset_token(mailer: FakeMailer, container: Container) -> str:
    container.relay.drain()
    (message,) = [m for m in mailer.sent if m.subject == "Reset your password"]
    found = re.search(r"/password-reset/([A-Za-z0-9_-]+)", message.text)
    assert found
    return found.group(1)


def test_password_reset_link_works_once(container: Container, mailer: FakeMailer) -> None:
    seeded(container)
    old_session = sign_in(container).session_token
    accounts.request_password_reset(container.uows(), container.clock, email=DEMO_EMAIL)
    token = reset_token(mailer, container)

    accounts.reset_password(
        container.uows(),
        container.clock,
        container.hasher,
        token=token,
        new_password="a-brand-new-passphrase",
    )

    assert sign_in(container, password="a-brand-new-passphrase").account.email == DEMO_EMAIL
    assert accounts.current_account(container.uows(), container.clock, old_session) is None
    with pytest.raises(TokenInvalid, match="already been used"):
        accounts.reset_password(
            container.uows(),
            container.clock,
            container.hasher,
            token=token,
            new_password="yet-another-passphrase",
        )


def test_password_reset_link_expires_after_30_minutes(
    container: Container, mailer: FakeMailer, clock: FakeClock
) -> None:
    seeded(container)
    accounts.request_password_reset(container.uows(), clock, email=DEMO_EMAIL)
    token = reset_token(mailer, container)
    clock.advance(minutes=30)
    with pytest.raises(TokenInvalid, match="expired"):
        accounts.check_reset_token(container.uows(), clock, token)


def test_password_reset_for_an_unknown_email_sends_nothing_and_says_nothing(
    container: Container, mailer: FakeMailer
) -> None:
    seeded(container)
    assert (
        accounts.request_password_reset(
            container.uows(), container.clock, email="nobody@example.com"
        )
        is None
    )
    container.relay.drain()
    assert mailer.sent == []


def test_new_password_must_be_long_enough(container: Container, mailer: FakeMailer) -> None:
    seeded(container)
    accounts.request_password_reset(container.uows(), container.clock, email=DEMO_EMAIL)
    token = reset_token(mailer, container)
    with pytest.raises(InvalidInput, match="at least 10"):
        accounts.reset_password(
            container.uows(), container.clock, container.hasher, token=token, new_password="short"
        )


class SlowHasher:
    """Holds every verify until let go: a password hash that takes as long as a test likes."""

    def __init__(self, real: PasswordHasher) -> None:
        self.real = real
        self.checking = threading.Event()
        self.go_on = threading.Event()

    def hash(self, password: str) -> str:
        return self.real.hash(password)

    def needs_rehash(self, stored: str) -> bool:
        return self.real.needs_rehash(stored)

    def verify(self, stored: str, password: str) -> bool:
        self.checking.set()
        assert self.go_on.wait(10)
        return self.real.verify(stored, password)


@pytest.mark.parametrize("password", [DEMO_PASSWORD, "a-wrong-guess"])
def test_checking_a_password_holds_up_no_one_elses_change(
    container: Container, password: str
) -> None:
    # On SQLite one write happens at a time: a sign-in that checked the password (argon2,
    # tens of milliseconds) inside its write let a few wrong guesses a second stall every
    # customer's turn-off. The check runs outside any transaction.
    data = seeded(container)
    hasher = SlowHasher(container.hasher)
    with ThreadPoolExecutor(2) as pool:
        signing_in = pool.submit(
            accounts.sign_in,
            container.uows(),
            container.clock,
            hasher,
            email=DEMO_EMAIL,
            password=password,
            address="198.51.100.9",
            user_agent="pytest",
        )
        assert hasher.checking.wait(10)
        turning_off = pool.submit(
            subscriptions.turn_off_auto_renew,
            container.uows(),
            container.clock,
            account=data.alex,
            subscription_id=data.monthly.id,
            actor=f"customer:{data.alex.id}",
            channel="portal",
        )
        try:
            assert turning_off.result(timeout=5).reference.startswith("FS-")
        finally:
            hasher.go_on.set()
        if password == DEMO_PASSWORD:
            assert signing_in.result(10).account == data.alex
        else:
            with pytest.raises(AuthenticationFailed):
                signing_in.result(10)


def test_concurrent_wrong_guesses_each_count_towards_the_limit(container: Container) -> None:
    seeded(container)
    guesses = accounts.MAX_FAILURES_PER_EMAIL + 3
    with ThreadPoolExecutor(guesses) as pool:
        outcomes = list(
            pool.map(
                lambda _: _outcome(lambda: sign_in(container, password="wrong-guess")),
                range(guesses),
            )
        )
    assert outcomes.count("AuthenticationFailed") <= accounts.MAX_FAILURES_PER_EMAIL
    with pytest.raises(TooManyAttempts):
        sign_in(container)  # the right password, too late


def _outcome(attempt) -> str:  # type: ignore[no-untyped-def]
    try:
        attempt()
    except (AuthenticationFailed, TooManyAttempts) as error:
        return type(error).__name__
    return "signed in"


def test_reset_emails_to_one_account_are_limited(container: Container, mailer: FakeMailer) -> None:
    seeded(container)
    for _ in range(accounts.MAX_RESETS_PER_ACCOUNT + 4):
        accounts.request_password_reset(container.uows(), container.clock, email=DEMO_EMAIL)
    container.relay.drain()
    assert len(mailer.sent) == accounts.MAX_RESETS_PER_ACCOUNT


def test_production_hasher_is_argon2id_at_19_mib_t2_p1() -> None:
    stored = Argon2Hasher().hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert Argon2Hasher().verify(stored, "correct horse battery staple")
    assert not Argon2Hasher().verify(stored, "wrong")
