"""The audit log's hash chain: each entry seals the one before it, so an edit shows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """`action` is shaped source:subject:action, e.g. `portal:subscription:auto_renew_off`."""

    actor: str
    channel: str
    action: str
    subject: str
    account_id: int | None
    at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None = None


def canonical(entry: AuditEntry, seq: int) -> bytes:
    body = {
        "seq": seq,
        "actor": entry.actor,
        "channel": entry.channel,
        "action": entry.action,
        "subject": entry.subject,
        "account_id": entry.account_id,
        "at": entry.at.isoformat(),
        "before": entry.before,
        "after": entry.after,
        "reason": entry.reason,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def chain_hash(previous: str, entry: AuditEntry, seq: int) -> str:
    return hashlib.sha256(previous.encode() + canonical(entry, seq)).hexdigest()
