"""Cards on file: seeing them, and adding one that then pays for every direct subscription.

A new card also retries, at once, every payment that failed: each past-due subscription
becomes due for a retry now, and the next billing pass (the worker runs one every few
seconds to a minute) charges it with the new card. Retrying here, inside the request,
would put a gateway call on the customer's page for a charge they did not ask to make now.
"""

from __future__ import annotations

from dataclasses import dataclass

from fairsub.domain.subscriptions import PaymentMethod, Status, Subscription
from fairsub.services import audit
from fairsub.services.ports import CardDetails, Clock, PaymentGateway, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class CardOnFile:
    id: int
    card: PaymentMethod
    expires: str  # "MM/YYYY"


# A subscription that has ended (or was never bought: its first payment was declined)
# is charged to nothing, so the cards page does not list it.
ENDED = frozenset({Status.EXPIRED, Status.REFUNDED})


@dataclass(frozen=True, slots=True)
class Wallet:
    cards: list[CardOnFile]
    subscriptions: list[Subscription]  # direct ones still running: which card each is charged to

    @property
    def retrying(self) -> int:
        """Past-due subscriptions a new card is tried on (add_card makes them due at once)."""
        return sum(1 for s in self.subscriptions if s.status is Status.PAST_DUE and s.auto_renew)


@dataclass(frozen=True, slots=True)
class CardAdded:
    card: CardOnFile
    used_for: list[int]  # subscription ids now charged to it
    retrying: list[int]  # past-due subscription ids whose payment is retried now


def wallet(uows: UnitOfWorkFactory, account_id: int) -> Wallet:
    """The cards on file are those a running subscription is charged to; with none, the
    newest card. A card replaced by a newer one, or tried only for a purchase that was
    declined, pays for nothing and is not offered again (it stays on record for refunds
    and statements)."""
    with uows().read() as uow:
        every = [
            CardOnFile(id_, card, expires)
            for id_, card, expires in uow.payment_methods.for_account(account_id)
        ]
        paying = uow.payment_methods.paying(account_id)
        subscriptions = [
            s
            for s in uow.subscriptions.for_account(account_id)
            if s.reseller is None and s.status not in ENDED
        ]
    cards = [c for c in every if c.id in paying] or every[:1]
    return Wallet(cards, subscriptions)


def add_card(
    uows: UnitOfWorkFactory,
    clock: Clock,
    gateway: PaymentGateway,
    *,
    account_id: int,
    card: CardDetails,
    actor: str,
    channel: str,
) -> CardAdded:
    """Keep a new card and charge every direct subscription of the account to it from now
    on. Raises InvalidInput, storing nothing, for a card the gateway refuses."""
    stored = gateway.store_card(card)  # outside the transaction: a slow gateway holds no lock
    with uows().write() as uow:
        now = clock.now()
        method_id = uow.payment_methods.add(account_id, stored, gateway.name, now)
        used_for = uow.payment_methods.use_for_subscriptions(account_id, method_id)
        retrying = uow.billing.retry_past_due_now(account_id, now)
        audit.record(
            uow,
            actor=actor,
            channel=channel,
            action=f"{channel}:payment_method:added",
            subject=f"payment_method:{method_id}",
            account_id=account_id,
            at=now,
            after={
                "card": f"{stored.brand} {stored.last4}",
                "expires": stored.expires,
                "subscriptions": used_for,
                "retrying": retrying,
            },
        )
        uow.commit()
    return CardAdded(
        CardOnFile(method_id, PaymentMethod(stored.brand, stored.last4), stored.expires),
        used_for,
        retrying,
    )
