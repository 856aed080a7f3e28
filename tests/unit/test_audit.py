"""The audit log's hash chain: any edit to an entry shows in its hash and every later one."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairsub.domain.audit import GENESIS, AuditEntry, around_seq, canonical, chain_hash


def entry(**overrides: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "actor": "account:3",
        "channel": "portal",
        "action": "portal:subscription:auto_renew_off",
        "subject": "subscription:7",
        "account_id": 3,
        "at": datetime(2025, 2, 10, 9, 30, tzinfo=UTC),
        "before": {"status": "active", "auto_renew": True},
        "after": {"status": "canceled", "auto_renew": False, "reference": "FS-10K3-M0QW"},
        "reason": None,
    }
    return AuditEntry(**(fields | overrides))


def chain(entries: list[AuditEntry]) -> list[str]:
    hashes, previous = [], GENESIS
    for seq, item in enumerate(entries, start=1):
        previous = chain_hash(previous, item, seq)
        hashes.append(previous)
    return hashes


def test_canonical_is_deterministic() -> None:
    assert canonical(entry(), 1) == canonical(entry(), 1)


def test_canonical_does_not_depend_on_dict_key_order() -> None:
    one = entry(before={"status": "active", "auto_renew": True})
    other = entry(before={"auto_renew": True, "status": "active"})

    assert canonical(one, 1) == canonical(other, 1)


def test_canonical_is_compact_json_of_every_field_and_the_sequence_number() -> None:
    body = json.loads(canonical(entry(), 5))

    assert body == {
        "seq": 5,
        **{f.name: getattr(entry(), f.name) for f in dataclasses.fields(AuditEntry)},
        "at": "2025-02-10T09:30:00+00:00",
    }


def written_before_the_split(entry: AuditEntry, seq: int) -> bytes:
    """The canonical form as chains already stored were hashed: it must never change."""
    body = {"seq": seq, **{f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}}
    body["at"] = entry.at.isoformat()
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


texts = st.text(max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
snapshots = st.none() | st.dictionaries(
    st.sampled_from(["seq", "subject", "status"]) | texts, json_values, max_size=4
)


@given(
    actor=texts,
    action=texts,
    subject=texts,
    account_id=st.none() | st.integers(min_value=1),
    before=snapshots,
    after=snapshots,
    reason=st.none() | texts,
    seq=st.integers(min_value=1, max_value=10**12),
)
def test_the_seq_goes_between_the_two_parts_and_the_form_is_the_one_chains_were_written_in(
    actor: str,
    action: str,
    subject: str,
    account_id: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str | None,
    seq: int,
) -> None:
    item = entry(
        actor=actor,
        action=action,
        subject=subject,
        account_id=account_id,
        before=before,
        after=after,
        reason=reason,
    )
    prefix, suffix = around_seq(item)

    assert canonical(item, seq) == f"{prefix}{seq}{suffix}".encode()
    assert canonical(item, seq) == written_before_the_split(item, seq)
    assert (prefix + suffix).isascii()


def test_a_hash_is_sha256_hex_and_the_chain_starts_from_genesis() -> None:
    assert GENESIS == "0" * 64
    assert re.fullmatch(r"[0-9a-f]{64}", chain_hash(GENESIS, entry(), 1))


CHANGES: dict[str, Any] = {
    "actor": "support:alice",
    "channel": "api",
    "action": "portal:subscription:auto_renew_on",
    "subject": "subscription:8",
    "account_id": None,
    "at": datetime(2025, 2, 10, 9, 30, tzinfo=UTC) + timedelta(microseconds=1),
    "before": None,
    "after": {"status": "canceled", "auto_renew": False, "reference": "FS-10K3-M0QX"},
    "reason": "customer asked by email",
}


def test_every_field_of_an_entry_is_covered_by_the_hash() -> None:
    assert set(CHANGES) == {f.name for f in dataclasses.fields(AuditEntry)}


@pytest.mark.parametrize(("field", "value"), CHANGES.items(), ids=list(CHANGES))
def test_changing_any_field_changes_the_hash(field: str, value: Any) -> None:
    original = entry()
    edited = dataclasses.replace(original, **{field: value})

    assert chain_hash(GENESIS, edited, 1) != chain_hash(GENESIS, original, 1)


def test_the_hash_depends_on_the_sequence_number_and_the_previous_hash() -> None:
    first = chain_hash(GENESIS, entry(), 1)

    assert chain_hash(GENESIS, entry(), 2) != first
    assert chain_hash("f" * 64, entry(), 1) != first


def test_editing_an_earlier_entry_changes_every_later_hash() -> None:
    entries = [entry(subject=f"subscription:{n}") for n in range(4)]
    tampered = [*entries]
    tampered[1] = dataclasses.replace(entries[1], reason="edited later")

    original_hashes, tampered_hashes = chain(entries), chain(tampered)

    assert original_hashes[0] == tampered_hashes[0]
    assert all(a != b for a, b in zip(original_hashes[1:], tampered_hashes[1:], strict=True))
