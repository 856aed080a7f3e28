"""How the billing run's batches move: charged while the database works, recorded while
the next batch is claimed (services.billing has the run itself).

Next to a server database (PostgreSQL) the run mostly waits for the server, so the stages
run on threads of their own and overlap. Next to an embedded one (SQLite) the database's work
is this process's CPU, and a second thread would only take turns with the first at every
call, so there a stage runs in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from fairsub.domain.billing import PaymentAttempt
from fairsub.domain.money import Money
from fairsub.services.billing_outcomes import Claimed, Outcome, RunSummary
from fairsub.services.ports import (
    CardDetails,
    ChargeResult,
    GatewayLedgerEntry,
    GatewayRefusedCredentials,
    GatewayTimeout,
    GatewayUnavailable,
    PaymentGateway,
    RefundResult,
    StoredCard,
)


@dataclass(frozen=True, slots=True)
class Work:
    """One charge to make, with what the claim read and wrote for it."""

    attempt: PaymentAttempt
    description: str
    claimed: Claimed


def charge_attempt(gateway: PaymentGateway, attempt: PaymentAttempt, what: str) -> Outcome:
    """Charge under the attempt's own key. No answer (None) when the gateway timed out or
    could not be reached: the charge may have happened, and the janitor will ask."""
    try:
        return gateway.charge(attempt.idempotency_key, attempt.amount, attempt.payment_token, what)
    except (GatewayTimeout, GatewayUnavailable):
        return None


class CredentialsFuse:
    """A gateway for one run that, once it has refused our credentials, refuses every later
    call the same way without sending it: a bad key does not mend itself mid-run, and a
    thousand requests with it would only get the account rate-limited. The refused calls
    are GatewayUnavailable to their callers, so charges are left for the janitor under the
    same keys; `refused` keeps the first refusal for the run to report."""

    def __init__(self, gateway: PaymentGateway) -> None:
        self._gateway = gateway
        self.name = gateway.name
        self.refused: GatewayRefusedCredentials | None = None

    def _guard(self) -> None:
        if self.refused is not None:  # a fresh one: calls on other threads may raise it too
            raise GatewayRefusedCredentials(str(self.refused), setting=self.refused.setting)

    def _note(self, error: GatewayRefusedCredentials) -> None:
        self.refused = self.refused or error

    def charge(
        self, idempotency_key: str, amount: Money, card_token: str, description: str
    ) -> ChargeResult:
        self._guard()
        try:
            return self._gateway.charge(idempotency_key, amount, card_token, description)
        except GatewayRefusedCredentials as error:
            self._note(error)
            raise

    def lookup_charge(self, idempotency_key: str) -> ChargeResult | None:
        self._guard()
        try:
            return self._gateway.lookup_charge(idempotency_key)
        except GatewayRefusedCredentials as error:
            self._note(error)
            raise

    def store_card(self, card: CardDetails) -> StoredCard:
        return self._gateway.store_card(card)

    def refund(self, idempotency_key: str, charge_ref: str, amount: Money) -> RefundResult:
        return self._gateway.refund(idempotency_key, charge_ref, amount)

    def ledger(self) -> Iterator[GatewayLedgerEntry]:
        return self._gateway.ledger()


def charge(gateway: PaymentGateway, item: Work) -> Outcome:
    return charge_attempt(gateway, item.attempt, item.description)


def charge_all(gateway: PaymentGateway, work: list[Work], in_flight: int) -> list[Outcome]:
    with charging(gateway, in_flight, embedded=False) as send:
        return send(work)()


# Sends a batch to the gateway; what it returns waits for, and gives, the batch's answers.
Sender = Callable[[list[Work]], Callable[[], list[Outcome]]]


@contextmanager
def charging(gateway: PaymentGateway, in_flight: int, *, embedded: bool) -> Iterator[Sender]:
    """Charges on other threads, so the gateway's work overlaps the database's: `in_flight`
    at a time, or with in_flight 1 a whole batch, one charge after another, as one task.

    One at a time next to an embedded database (SQLite), charges are made on this thread
    when the batch is sent instead: SQLite's work is this process's CPU, not a wait, so a
    charging thread would only trade the interpreter lock with this one at every SQLite
    call, which costs more than the overlap gains (about 1,250 against 1,650 renewals/s).
    A server database (PostgreSQL) leaves this thread waiting, and that is when the other
    one charges (853 renewals/s inline against 977 with the thread, N = 100,000)."""
    if in_flight <= 1 and embedded:

        def here(work: list[Work]) -> Callable[[], list[Outcome]]:
            outcomes = [charge(gateway, item) for item in work]
            return lambda: outcomes

        yield here
        return
    with ThreadPoolExecutor(max_workers=max(1, in_flight), thread_name_prefix="charge") as pool:

        def one_by_one(work: list[Work]) -> Callable[[], list[Outcome]]:
            return pool.submit(lambda: [charge(gateway, item) for item in work]).result

        def in_parallel(work: list[Work]) -> Callable[[], list[Outcome]]:
            futures = [pool.submit(charge, gateway, item) for item in work]
            return lambda: [f.result() for f in futures]

        yield one_by_one if in_flight <= 1 else in_parallel


# Records a batch's answers; what it returns waits for, and gives, that batch's summary.
Recorder = Callable[[Callable[[], RunSummary]], Callable[[], RunSummary]]


@contextmanager
def recording(*, embedded: bool) -> Iterator[Recorder]:
    """Records a batch while the next one is claimed. Next to a server database each of the
    two transactions mostly waits for the server, on its own connection, so they overlap:
    one worker on PostgreSQL spent half its time waiting, one transaction after another.
    An embedded database's work is this process's CPU, and its writes take turns anyway,
    so there a batch is recorded in place."""
    if embedded:

        def in_place(task: Callable[[], RunSummary]) -> Callable[[], RunSummary]:
            result = task()
            return lambda: result

        yield in_place
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="record") as pool:
        yield lambda task: pool.submit(task).result
