"""What only the sandbox does: its test cards' tricks, simulated outages, and a ledger file that
several threads and processes share and that outlives the gateway object."""

from __future__ import annotations

import multiprocessing
import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pytest

from fairsub.adapters.payments import sandbox as sandbox_module
from fairsub.adapters.payments.sandbox import SandboxGateway
from fairsub.domain.money import Money
from fairsub.services.ports import CardDetails, GatewayTimeout, GatewayUnavailable
from tests.fakes import FakeClock

TIMEOUT_CARD = "4000 0000 0000 0119"
KEYS = [f"renewal:{n}:2026-11" for n in range(25)]


def card(number: str = "4242 4242 4242 4242") -> CardDetails:
    return CardDetails(number=number, exp_month=12, exp_year=2030, cvc="123")


def eur(cents: int) -> Money:
    return Money(cents, "EUR")


@pytest.fixture
def bank_file(tmp_path: Path) -> Path:
    return tmp_path / "sandbox.db"


@pytest.fixture
def sandbox(bank_file: Path) -> Iterator[SandboxGateway]:
    gateway = SandboxGateway(bank_file, FakeClock())
    yield gateway
    gateway.close()


def test_the_timeout_card_charges_then_loses_the_answer(sandbox: SandboxGateway) -> None:
    token = sandbox.store_card(card(TIMEOUT_CARD)).token
    with pytest.raises(GatewayTimeout):
        sandbox.charge("k", eur(4999), token, "Pro")
    found = sandbox.lookup_charge("k")
    assert found is not None and found.succeeded and found.amount == eur(4999)
    assert sandbox.charge("k", eur(4999), token, "Pro") == found  # the answer, at last
    assert [(e.idempotency_key, e.succeeded) for e in sandbox.ledger()] == [("k", True)]


def test_any_other_number_passing_luhn_succeeds_with_its_brand(sandbox: SandboxGateway) -> None:
    for number, brand in [
        ("5555 5555 5555 4444", "Mastercard"),
        ("2223 0031 2200 3222", "Mastercard"),
        ("3782 822463 10005", "Amex"),
        ("4012 8888 8888 1881", "Visa"),
        ("6011 1111 1111 1117", "Card"),
    ]:
        cvc = "1234" if brand == "Amex" else "123"
        stored = sandbox.store_card(CardDetails(number, 1, 2027, cvc))
        assert (stored.brand, stored.expires) == (brand, "01/2027")
        assert sandbox.charge(number, eur(100), stored.token, "Pro").succeeded


def test_an_unavailable_sandbox_raises_and_records_nothing(bank_file: Path) -> None:
    healthy = SandboxGateway(bank_file, FakeClock())
    token = healthy.store_card(card()).token
    ref = healthy.charge("first", eur(1000), token, "Pro").gateway_ref
    assert ref is not None
    down = SandboxGateway(bank_file, FakeClock(), failure_rate=1.0)
    with pytest.raises(GatewayUnavailable):
        down.charge("second", eur(1000), token, "Pro")
    with pytest.raises(GatewayUnavailable):
        down.refund("refund", ref, eur(1000))
    with pytest.raises(GatewayUnavailable):
        down.lookup_charge("first")
    assert [e.idempotency_key for e in healthy.ledger()] == ["first"]
    assert healthy.lookup_charge("second") is None
    healthy.close()
    down.close()


def test_retrying_through_random_outages_charges_each_key_once(bank_file: Path) -> None:
    flaky = SandboxGateway(bank_file, FakeClock(), failure_rate=0.5, rng=random.Random(7))
    token = flaky.store_card(card()).token
    outages = 0
    for key in KEYS:
        while True:
            try:
                flaky.charge(key, eur(1000), token, "Pro")
                break
            except GatewayUnavailable:
                outages += 1
    assert outages > 0
    assert sorted(e.idempotency_key for e in flaky.ledger()) == sorted(KEYS)
    flaky.close()


def test_latency_is_slept_on_each_charge_refund_and_lookup(
    bank_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("fairsub.adapters.payments.sandbox.time.sleep", slept.append)
    slow = SandboxGateway(bank_file, FakeClock(), latency=0.25)
    token = slow.store_card(card()).token
    ref = slow.charge("k", eur(1000), token, "Pro").gateway_ref
    assert ref is not None
    slow.refund("r", ref, eur(1000))
    slow.lookup_charge("k")
    list(slow.ledger())
    assert slept == [0.25, 0.25, 0.25]
    slow.close()


def test_the_card_number_is_never_stored(sandbox: SandboxGateway, bank_file: Path) -> None:
    sandbox.store_card(card("4000 0000 0000 9995"))
    sandbox.close()
    files = [bank_file, *bank_file.parent.glob("sandbox.db-*")]
    assert b"4000000000009995" not in b"".join(f.read_bytes() for f in files)
    with sqlite3.connect(bank_file) as connection:
        [row] = connection.execute("SELECT * FROM cards").fetchall()
    connection.close()
    assert "4000000000009995" not in repr(row)
    assert "9995" in row and "insufficient_funds" in row


def test_the_ledger_survives_reopening_the_file(bank_file: Path) -> None:
    first = SandboxGateway(bank_file, FakeClock())
    token = first.store_card(card()).token
    charged = first.charge("k", eur(1000), token, "Pro")
    first.close()

    reopened = SandboxGateway(bank_file, FakeClock())
    assert reopened.lookup_charge("k") == charged
    assert reopened.charge("k", eur(1000), token, "Pro") == charged
    assert charged.gateway_ref is not None
    assert reopened.refund("r", charged.gateway_ref, eur(1000)).succeeded
    assert reopened.charge("k2", eur(500), token, "Pro").succeeded  # the card is still there
    assert [e.kind for e in reopened.ledger()] == ["charge", "charge", "refund"]
    reopened.close()


def test_the_ledger_streams_in_batches(
    sandbox: SandboxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox_module, "LEDGER_BATCH", 3)
    token = sandbox.store_card(card()).token
    for n in range(7):
        sandbox.charge(f"k{n}", eur(100 + n), token, "Pro")
    assert [e.idempotency_key for e in sandbox.ledger()] == [f"k{n}" for n in range(7)]


def test_threads_racing_on_one_key_make_one_charge(sandbox: SandboxGateway) -> None:
    token = sandbox.store_card(card()).token
    start = threading.Barrier(8)
    refs: list[str | None] = []

    def charge() -> None:
        start.wait()
        refs.append(sandbox.charge("k", eur(1000), token, "Pro").gateway_ref)

    threads = [threading.Thread(target=charge) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(refs) == 8 and len(set(refs)) == 1
    assert len(list(sandbox.ledger())) == 1


def charge_every_key(path: Path, token: str, start: Any, results: Any) -> None:
    """In a separate process: charge every key in KEYS as soon as the other process does."""
    gateway = SandboxGateway(path, FakeClock())
    start.wait()
    refs = [gateway.charge(key, eur(1000), token, "Pro").gateway_ref for key in KEYS]
    gateway.close()
    results.put(refs)


def test_two_processes_charging_the_same_keys_make_one_charge_each(
    sandbox: SandboxGateway, bank_file: Path
) -> None:
    token = sandbox.store_card(card()).token
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=charge_every_key, args=(bank_file, token, start, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    try:
        answers = [results.get(timeout=60) for _ in workers]
    except Empty:
        pytest.fail("a worker process did not answer")
    finally:
        for worker in workers:
            worker.join(timeout=60)
    results.close()
    results.join_thread()
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert answers[0] == answers[1]
    assert len(set(answers[0])) == len(KEYS)
    assert sorted(e.idempotency_key for e in sandbox.ledger()) == sorted(KEYS)


def test_a_nonsense_simulation_is_refused(bank_file: Path) -> None:
    with pytest.raises(ValueError, match="probability"):
        SandboxGateway(bank_file, FakeClock(), failure_rate=1.5)
    with pytest.raises(ValueError, match="negative"):
        SandboxGateway(bank_file, FakeClock(), latency=-1)
