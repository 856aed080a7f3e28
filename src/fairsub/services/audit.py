"""Recording and verifying the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fairsub.domain.audit import AuditEntry
from fairsub.services.ports import UnitOfWork


def record(
    uow: UnitOfWork,
    *,
    actor: str,
    channel: str,
    action: str,
    subject: str,
    account_id: int | None,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Append to the audit log inside the caller's transaction (invariant 5)."""
    uow.audit.append(
        AuditEntry(actor, channel, action, subject, account_id, at, before, after, reason)
    )


def verify(
    uow: UnitOfWork, progress: Callable[[int], None] | None = None
) -> tuple[int, int | None]:
    """(entries checked, first broken seq or None)."""
    with uow.read():
        total = uow.audit.count()
        return total, uow.audit.verify(progress)
