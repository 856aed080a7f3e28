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


def around_seq(entry: AuditEntry) -> tuple[str, str]:
    """The entry's canonical form before and after its seq, which goes between them.

    The form is the entry as JSON with sorted keys, so "seq" and "subject" are the last
    two; the split lets a database put in the seq (and link the hash) as it takes the
    chain's head, in the same statement. Pure ASCII: JSON escapes everything else."""
    rest = {
        "actor": entry.actor,
        "channel": entry.channel,
        "action": entry.action,
        "account_id": entry.account_id,
        "at": entry.at.isoformat(),
        "before": entry.before,
        "after": entry.after,
        "reason": entry.reason,
    }
    head = json.dumps(rest, sort_keys=True, separators=(",", ":"), default=str)
    return head[:-1] + ',"seq":', ',"subject":' + json.dumps(entry.subject) + "}"


def canonical(entry: AuditEntry, seq: int) -> bytes:
    before, after = around_seq(entry)
    return f"{before}{seq}{after}".encode()


def chain_hash(previous: str, entry: AuditEntry, seq: int) -> str:
    """sha256 over the previous entry's hash (hex) followed by this entry's canonical form."""
    return hashlib.sha256(previous.encode() + canonical(entry, seq)).hexdigest()
