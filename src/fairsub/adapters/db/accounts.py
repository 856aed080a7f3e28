"""Repositories for accounts, sign-in sessions, sign-in attempts and password resets."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, bindparam, delete, func, insert, select, update

from fairsub.adapters.db.tables import accounts, password_resets, sign_in_attempts, web_sessions
from fairsub.adapters.db.types import new_id
from fairsub.domain.accounts import Account
from fairsub.services.ports import WebSession


def _account(row: Row) -> Account:  # type: ignore[type-arg]
    return Account(row.id, row.email, row.name, row.region, row.locale, row.timezone)


# Built once: on a one-row lookup, building the statement costs more than running it.
_ACCOUNT = select(accounts).where(accounts.c.id == bindparam("account_id"))


class SqlAccounts:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def get(self, account_id: int) -> Account | None:
        row = self._c.execute(_ACCOUNT, {"account_id": account_id}).first()
        return _account(row) if row else None

    def get_many(self, account_ids: Iterable[int]) -> dict[int, Account]:
        ids = sorted(set(account_ids))
        if not ids:
            return {}
        rows = self._c.execute(select(accounts).where(accounts.c.id.in_(ids)))
        return {row.id: _account(row) for row in rows}

    def by_email(self, email: str) -> tuple[Account, str] | None:
        row = self._c.execute(select(accounts).where(accounts.c.email == email)).first()
        return (_account(row), row.password_hash) if row else None

    def add(
        self,
        email: str,
        name: str,
        password_hash: str,
        region: str,
        locale: str,
        timezone: str,
        created_at: datetime,
    ) -> Account:
        result = self._c.execute(
            insert(accounts).values(
                email=email,
                name=name,
                password_hash=password_hash,
                region=region,
                locale=locale,
                timezone=timezone,
                created_at=created_at,
            )
        )
        return Account(new_id(result), email, name, region, locale, timezone)

    def set_password_hash(self, account_id: int, password_hash: str) -> None:
        self._c.execute(
            update(accounts).where(accounts.c.id == account_id).values(password_hash=password_hash)
        )

    def count(self) -> int:
        return int(self._c.execute(select(func.count()).select_from(accounts)).scalar_one())


# Every signed-in page starts with this one: built once, one round trip.
_SESSION_WITH_ACCOUNT = (
    select(
        web_sessions.c.created_at.label("session_created_at"),
        web_sessions.c.last_seen_at,
        accounts.c.id,
        accounts.c.email,
        accounts.c.name,
        accounts.c.region,
        accounts.c.locale,
        accounts.c.timezone,
    )
    .join(accounts, accounts.c.id == web_sessions.c.account_id)
    .where(web_sessions.c.token_hash == bindparam("token_hash"))
)


class SqlSessions:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, session: WebSession) -> None:
        self._c.execute(
            insert(web_sessions).values(
                token_hash=session.token_hash,
                account_id=session.account_id,
                created_at=session.created_at,
                last_seen_at=session.last_seen_at,
            )
        )

    def get(self, token_hash: str) -> WebSession | None:
        row = self._c.execute(
            select(web_sessions).where(web_sessions.c.token_hash == token_hash)
        ).first()
        if row is None:
            return None
        return WebSession(row.token_hash, row.account_id, row.created_at, row.last_seen_at)

    def get_with_account(self, token_hash: str) -> tuple[WebSession, Account] | None:
        row = self._c.execute(_SESSION_WITH_ACCOUNT, {"token_hash": token_hash}).first()
        if row is None:
            return None
        session = WebSession(token_hash, row.id, row.session_created_at, row.last_seen_at)
        return session, _account(row)

    def touch(self, token_hash: str, at: datetime) -> None:
        self._c.execute(
            update(web_sessions)
            .where(web_sessions.c.token_hash == token_hash)
            .values(last_seen_at=at)
        )

    def shift(self, token_hash: str, by: timedelta) -> None:
        session = self.get(token_hash)
        if session is not None:
            self._c.execute(
                update(web_sessions)
                .where(web_sessions.c.token_hash == token_hash)
                .values(created_at=session.created_at + by, last_seen_at=session.last_seen_at + by)
            )

    def delete(self, token_hash: str) -> None:
        self._c.execute(delete(web_sessions).where(web_sessions.c.token_hash == token_hash))

    def delete_for_account(self, account_id: int) -> None:
        self._c.execute(delete(web_sessions).where(web_sessions.c.account_id == account_id))


_TAKE_TURN = select(
    func.pg_advisory_xact_lock(bindparam("kind"), func.hashtext(bindparam("value")))
)


class SqlSignInAttempts:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def take_turn(self, email: str, address: str) -> None:
        # SQLite's write transaction is one at a time already. On PostgreSQL, counting the
        # failures and adding one are not atomic under READ COMMITTED: eight guesses sent at
        # once all counted four and all went ahead. Transaction-scoped advisory locks, keyed
        # by kind (1 email, 2 address) and a hash, always taken email first: no deadlock.
        if self._c.dialect.name == "postgresql":
            for kind, value in ((1, email), (2, address)):
                self._c.execute(_TAKE_TURN, {"kind": kind, "value": value})

    def record(self, email: str, address: str, at: datetime, succeeded: bool) -> None:
        self._c.execute(
            insert(sign_in_attempts).values(
                email=email, address=address, at=at, succeeded=succeeded
            )
        )

    def _failures(self, column: str, value: str, since: datetime) -> int:
        t = sign_in_attempts
        query = (
            select(func.count())
            .select_from(t)
            .where(t.c[column] == value, t.c.at >= since, t.c.succeeded.is_(False))
        )
        return int(self._c.execute(query).scalar_one())

    def failures_for_email(self, email: str, since: datetime) -> int:
        return self._failures("email", email, since)

    def failures_for_address(self, address: str, since: datetime) -> int:
        return self._failures("address", address, since)

    def clear_email(self, email: str) -> None:
        self._c.execute(delete(sign_in_attempts).where(sign_in_attempts.c.email == email))


class SqlPasswordResets:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(
        self, token_hash: str, account_id: int, created_at: datetime, expires_at: datetime
    ) -> None:
        self._c.execute(
            insert(password_resets).values(
                token_hash=token_hash,
                account_id=account_id,
                created_at=created_at,
                expires_at=expires_at,
            )
        )

    def get(self, token_hash: str) -> tuple[int, datetime, datetime | None] | None:
        t = password_resets
        row = self._c.execute(select(t).where(t.c.token_hash == token_hash)).first()
        return (row.account_id, row.expires_at, row.used_at) if row else None

    def made_since(self, account_id: int, since: datetime) -> int:
        t = password_resets
        query = (
            select(func.count())
            .select_from(t)
            .where(t.c.account_id == account_id, t.c.created_at >= since)
        )
        return int(self._c.execute(query).scalar_one())

    def mark_used(self, token_hash: str, at: datetime) -> bool:
        t = password_resets
        result = self._c.execute(
            update(t).where(t.c.token_hash == token_hash, t.c.used_at.is_(None)).values(used_at=at)
        )
        return result.rowcount == 1
