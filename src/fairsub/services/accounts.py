"""Signing in and out, sessions, and password reset."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fairsub.domain.accounts import Account, check_new_password, normalize_email
from fairsub.domain.catalog import Region
from fairsub.domain.errors import AuthenticationFailed, InvalidInput, TokenInvalid, TooManyAttempts
from fairsub.services import audit
from fairsub.services.notifications import PASSWORD_RESET, enqueue
from fairsub.services.ports import Clock, PasswordHasher, UnitOfWork, WebSession
from fairsub.services.public_forms import plain

SESSION_IDLE = timedelta(minutes=30)
SESSION_ABSOLUTE = timedelta(hours=12)
SESSION_TOUCH_EVERY = timedelta(minutes=1)
RESET_VALID_FOR = timedelta(minutes=30)
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_ADDRESS = 20
# Reset emails to one account per THROTTLE_WINDOW: enough for a lost email or two, and no
# way to flood someone's inbox by asking for theirs over and over.
MAX_RESETS_PER_ACCOUNT = 3

# Verifying against this keeps an unknown email as slow as a wrong password.
_DUMMY_PASSWORD = "fairsub-timing-equaliser"  # noqa: S105 - not a credential


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedIn:
    account: Account
    session_token: str


_dummy_hashes: dict[int, str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A real hash to verify against when the email is unknown, made once per hasher."""
    key = id(hasher)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hasher.hash(_DUMMY_PASSWORD)
    return _dummy_hashes[key]


def sign_in(
    uow: UnitOfWork,
    clock: Clock,
    hasher: PasswordHasher,
    *,
    email: str,
    password: str,
    address: str,
    user_agent: str,
) -> SignedIn:
    now = clock.now()
    try:
        email = normalize_email(email)
    except InvalidInput:
        raise AuthenticationFailed("That email and password do not match.") from None
    # The attempt counts as failed until the password proves otherwise, and is recorded
    # before the password is checked: however many attempts run at once, each is counted
    # (on SQLite the check and the count are one write transaction). The password is checked
    # outside any transaction, so the slow hash never holds up anyone else's write.
    with uow.write():
        uow.sign_in_attempts.take_turn(email, address)
        since = now - THROTTLE_WINDOW
        if (
            uow.sign_in_attempts.failures_for_email(email, since) >= MAX_FAILURES_PER_EMAIL
            or uow.sign_in_attempts.failures_for_address(address, since) >= MAX_FAILURES_PER_ADDRESS
        ):
            minutes = int(THROTTLE_WINDOW.total_seconds() // 60)
            raise TooManyAttempts(
                f"Too many sign-in attempts. Wait {minutes} minutes, or reset your password.",
                retry_after_seconds=int(THROTTLE_WINDOW.total_seconds()),
            )
        found = uow.accounts.by_email(email)
        uow.sign_in_attempts.record(email, address, now, succeeded=False)
        uow.commit()
    stored = found[1] if found else _dummy_hash(hasher)
    if not hasher.verify(stored, password) or found is None:
        raise AuthenticationFailed("That email and password do not match.")
    account = found[0]
    rehashed = hasher.hash(password) if hasher.needs_rehash(stored) else None
    token = secrets.token_urlsafe(32)
    with uow.write():
        if rehashed is not None:
            uow.accounts.set_password_hash(account.id, rehashed)
        uow.sessions.add(WebSession(hash_token(token), account.id, now, now))
        uow.sign_in_attempts.clear_email(email)
        audit.record(
            uow,
            actor=f"customer:{account.id}",
            channel="portal",
            action="portal:account:signed_in",
            subject=f"account:{account.id}",
            account_id=account.id,
            at=now,
            after={"user_agent": user_agent[:200], "address": address},
        )
        uow.commit()
    return SignedIn(account, token)


def current_account(uow: UnitOfWork, clock: Clock, session_token: str) -> Account | None:
    """The account behind a session cookie, or None when it is unknown or has expired."""
    now = clock.now()
    token_hash = hash_token(session_token)
    with uow.read():
        found = uow.sessions.get_with_account(token_hash)
    if found is None:
        return None
    session, account = found
    expired = (
        now - session.last_seen_at >= SESSION_IDLE or now - session.created_at >= SESSION_ABSOLUTE
    )
    if expired:
        with uow.write():
            uow.sessions.delete(token_hash)
            uow.commit()
        return None
    if now - session.last_seen_at > SESSION_TOUCH_EVERY:
        # Only refresh idle time once a minute: a write on every page would serialise reads.
        with uow.write():
            uow.sessions.touch(token_hash, now)
            uow.commit()
    return account


def carry_session_forward(uow: UnitOfWork, session_token: str, by: timedelta) -> None:
    """The test clock moved on by `by` while this person sat at the page (the demo's clock
    control): keep them signed in. The days that passed are the simulation's, not time they
    were away, so their session's start and last use move with the clock."""
    with uow.write():
        uow.sessions.shift(hash_token(session_token), by)
        uow.commit()


def sign_out(uow: UnitOfWork, session_token: str) -> None:
    with uow.write():
        uow.sessions.delete(hash_token(session_token))
        uow.commit()


def request_password_reset(uow: UnitOfWork, clock: Clock, *, email: str) -> None:
    """Always looks the same to the caller, whether or not the account exists."""
    now = clock.now()
    try:
        email = normalize_email(email)
    except InvalidInput:
        return
    with uow.write():
        found = uow.accounts.by_email(email)
        if found is None:
            return
        account = found[0]
        if uow.password_resets.made_since(account.id, now - THROTTLE_WINDOW) >= (
            MAX_RESETS_PER_ACCOUNT
        ):
            return  # the links already sent still work; the answer looks the same
        token = secrets.token_urlsafe(32)
        uow.password_resets.add(hash_token(token), account.id, now, now + RESET_VALID_FOR)
        enqueue(
            uow,
            PASSWORD_RESET,
            account,
            now,
            dedupe_key=f"reset:{hash_token(token)}",
            reset_path=f"/password-reset/{token}",
            expires_at=(now + RESET_VALID_FOR).isoformat(),
        )
        audit.record(
            uow,
            actor=f"customer:{account.id}",
            channel="portal",
            action="portal:account:password_reset_requested",
            subject=f"account:{account.id}",
            account_id=account.id,
            at=now,
        )
        uow.commit()


def check_reset_token(uow: UnitOfWork, clock: Clock, token: str) -> None:
    with uow.read():
        found = uow.password_resets.get(hash_token(token))
    _require_usable(found, clock.now())


def _require_usable(found: tuple[int, datetime, datetime | None] | None, now: datetime) -> int:
    if found is None:
        raise TokenInvalid("That reset link is not valid. Ask for a new one.")
    account_id, expires_at, used_at = found
    if used_at is not None:
        raise TokenInvalid("That reset link has already been used. Ask for a new one.")
    if now >= expires_at:
        raise TokenInvalid("That reset link has expired. Ask for a new one.")
    return account_id


def reset_password(
    uow: UnitOfWork, clock: Clock, hasher: PasswordHasher, *, token: str, new_password: str
) -> None:
    check_new_password(new_password)
    now = clock.now()
    token_hash = hash_token(token)
    check_reset_token(uow, clock, token)  # before the slow hash, which is made outside
    password_hash = hasher.hash(new_password)  # the transaction, holding up no one's write
    with uow.write():
        account_id = _require_usable(uow.password_resets.get(token_hash), now)
        if not uow.password_resets.mark_used(token_hash, now):
            raise TokenInvalid("That reset link has already been used. Ask for a new one.")
        uow.accounts.set_password_hash(account_id, password_hash)
        uow.sessions.delete_for_account(account_id)
        audit.record(
            uow,
            actor=f"customer:{account_id}",
            channel="portal",
            action="portal:account:password_reset",
            subject=f"account:{account_id}",
            account_id=account_id,
            at=now,
        )
        uow.commit()


def create_account(
    uow: UnitOfWork,
    clock: Clock,
    hasher: PasswordHasher,
    *,
    email: str,
    name: str,
    password: str,
    region: Region,
    address: str,
    user_agent: str,
) -> SignedIn:
    """A new customer's account, in the region they buy in (its currency, language and
    time zone), signed in at once."""
    try:
        email = normalize_email(email)
    except InvalidInput:
        raise InvalidInput(
            "Enter your email address, like name@example.com.", field="email"
        ) from None
    name = plain(name)
    if not name or len(name) > 200:
        raise InvalidInput("Enter your name (up to 200 characters).", field="name")
    check_new_password(password)
    password_hash = hasher.hash(password)  # slow on purpose: before the transaction
    with uow.write():
        if uow.accounts.by_email(email) is not None:
            raise InvalidInput(
                "There is already an account with this email address. Sign in to continue.",
                field="email",
            )
        now = clock.now()
        account = uow.accounts.add(
            email, name, password_hash, region.code, region.locale, region.timezone, now
        )
        audit.record(
            uow,
            actor=f"customer:{account.id}",
            channel="portal",
            action="portal:account:created",
            subject=f"account:{account.id}",
            account_id=account.id,
            at=now,
            after={"email": email, "region": region.code, "address": address},
        )
        uow.commit()
    return sign_in(
        uow, clock, hasher, email=email, password=password, address=address, user_agent=user_agent
    )
