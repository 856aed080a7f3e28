"""The Stripe gateway, on the official SDK: a charge is a PaymentIntent, a refund a Refund.

- charge: a PaymentIntent created and confirmed off-session (confirm, off_session, no redirects)
  with the Stripe idempotency key "fairsub-charge:<key>" and the bare key in
  metadata["fairsub_key"]. Stripe forgets idempotency keys after 24 hours, so charge() first
  searches for a PaymentIntent carrying the key; search lags writes by about a minute, which
  the idempotency key covers. Between the two, one key never charges twice, at any age.
  Refunds likewise use "fairsub-refund:<key>" (Stripe's keys are one namespace per account)
  and are looked for among the charge's refunds first.
- card tokens: "cus_...:pm_..." (a PaymentMethod attached to a Customer, which Stripe needs
  to charge it again off-session; what store_card returns) or a bare "pm_..." (no customer).
- store_card: in live mode card numbers never reach fairsub; customers type them into
  Stripe Elements and the app keeps the resulting customer and payment method, so
  store_card raises InvalidInput. With a test key (sk_test_/rk_test_) it accepts Stripe's
  test numbers (TEST_PAYMENT_METHODS) and attaches the matching test PaymentMethod to a new
  Customer, so the portal works end to end against a Stripe test account.
- errors: a card error is a declined ChargeResult (its decline_code, "card_declined" for a
  generic decline). Rate limits, and 5xx or lost connections on reads, raise
  GatewayUnavailable. A lost connection or 5xx while creating a charge or refund raises
  GatewayTimeout, because Stripe documents a 5xx as "outcome unknown": ask lookup_charge.
  A key reused with different parameters raises InvalidInput. A wrong, revoked or restricted
  API key (Stripe's 401 AuthenticationError or 403 PermissionError, on any call) raises
  GatewayRefusedCredentials naming FAIRSUB_STRIPE_API_KEY, never the key: Stripe did nothing,
  so it is a GatewayUnavailable (the caller keeps the idempotency key and tries again later,
  records no outcome) and not a decline, whose ChargeResult would end the attempt, nor a
  GatewayTimeout, whose outcome would be unknown; its own class lets the command line and
  the portal say it is a setting to fix. Anything else (a malformed request) is a bug and
  propagates as the SDK raised it.
- amounts: Money's minor units, except ISK, which Stripe still counts in hundredths
  (whole krónur, times 100). Stripe wants three-decimal amounts (KWD, BHD, JOD, OMR, TND)
  to end in 0; others are refused with InvalidInput before anything is sent.
- pending: a PaymentIntent still "processing" makes charge/lookup_charge raise
  GatewayTimeout (not known yet); a "pending" refund counts as succeeded.
- lookup_charge and charge need Stripe Search, which Stripe does not offer in India.
- ledger: every PaymentIntent and Refund in the account, paged with the list API. Those made
  outside fairsub (say, a refund in the Dashboard) have idempotency_key "" so that
  reconciliation shows them as differences.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import stripe

from fairsub.adapters.clock import SystemClock
from fairsub.adapters.payments.cards import check_card
from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money
from fairsub.services.ports import (
    CardDetails,
    ChargeResult,
    Clock,
    GatewayLedgerEntry,
    GatewayRefusedCredentials,
    GatewayTimeout,
    GatewayUnavailable,
    RefundResult,
    StoredCard,
)

METADATA_KEY = "fairsub_key"
CHARGE_KEY_PREFIX = "fairsub-charge:"
REFUND_KEY_PREFIX = "fairsub-refund:"
PAGE = 100

TEST_PAYMENT_METHODS: dict[str, str] = {
    "4242424242424242": "pm_card_visa",
    "5555555555554444": "pm_card_mastercard",
    "378282246310005": "pm_card_amex",
    "4000000000000002": "pm_card_chargeDeclined",
    "4000000000009995": "pm_card_chargeDeclinedInsufficientFunds",
    "4000000000000119": "pm_card_chargeDeclinedProcessingError",
}
BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "Amex"}

# Stripe's API units per Money minor unit, where the two differ.
STRIPE_FACTOR = {"ISK": 100}
THREE_DECIMAL = frozenset({"KWD", "BHD", "JOD", "OMR", "TND"})


class StripeGateway:
    name = "stripe"

    def __init__(
        self,
        api_key: str,
        *,
        http_client: stripe.HTTPClient | None = None,
        clock: Clock | None = None,
        max_network_retries: int = 2,
    ) -> None:
        # The SDK's own retries resend the same idempotency key, so they cannot double-charge.
        self._client = stripe.StripeClient(
            api_key, http_client=http_client, max_network_retries=max_network_retries
        )
        self._test_mode = api_key.startswith(("sk_test_", "rk_test_"))
        self._clock = clock or SystemClock()

    def store_card(self, card: CardDetails) -> StoredCard:
        checked = check_card(card, self._clock.now())
        if not self._test_mode:
            raise InvalidInput(
                "Card details for Stripe are entered in Stripe's own payment form; "
                "fairsub never receives card numbers."
            )
        test_method = TEST_PAYMENT_METHODS.get(checked.number)
        if test_method is None:
            raise InvalidInput(
                "In Stripe test mode, use one of Stripe's test cards, such as 4242 4242 4242 4242."
            )
        with _translated(mutating=False):
            customer = self._client.v1.customers.create(
                params={"description": "fairsub card holder"}
            )
            method = self._client.v1.payment_methods.attach(
                test_method, params={"customer": customer.id}
            )
        details = method.card
        if details is None:
            raise GatewayUnavailable("Stripe returned a payment method without card details.")
        return StoredCard(
            token=f"{customer.id}:{method.id}",
            brand=BRANDS.get(details.brand, details.brand.title()),
            last4=details.last4,
            expires=f"{details.exp_month:02d}/{details.exp_year}",
        )

    def charge(
        self, idempotency_key: str, amount: Money, card_token: str, description: str
    ) -> ChargeResult:
        stripe_amount = _to_stripe(amount)
        earlier = self.lookup_charge(idempotency_key)
        if earlier is not None:
            if earlier.amount != amount:
                raise InvalidInput(
                    f"Idempotency key {idempotency_key!r} was already used for a charge of "
                    f"{earlier.amount.plain()}."
                )
            return earlier
        customer, _, method = card_token.rpartition(":")
        params: stripe.params.PaymentIntentCreateParams = {
            "amount": stripe_amount,
            "currency": amount.currency.lower(),
            "payment_method": method,
            # No redirects: off-session there is nobody to redirect, and no return_url.
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "confirm": True,
            "off_session": True,
            "description": description,
            "metadata": {METADATA_KEY: idempotency_key},
        }
        if customer:
            params["customer"] = customer
        try:
            with _translated(mutating=True):
                intent = self._client.v1.payment_intents.create(
                    params=params, options={"idempotency_key": CHARGE_KEY_PREFIX + idempotency_key}
                )
        except stripe.CardError as error:
            declined = error.error.payment_intent if error.error else None
            return ChargeResult(
                idempotency_key,
                False,
                declined.id if declined else None,
                amount,
                _decline_reason(error.error.decline_code if error.error else None, error.code),
            )
        except stripe.InvalidRequestError as error:
            if error.code == "resource_missing" and error.param in ("payment_method", "customer"):
                return ChargeResult(idempotency_key, False, None, amount, "card_not_found")
            raise
        return _charge_result(idempotency_key, intent)

    def lookup_charge(self, idempotency_key: str) -> ChargeResult | None:
        escaped = idempotency_key.replace("\\", "\\\\").replace("'", "\\'")
        with _translated(mutating=False):
            found = list(
                self._client.v1.payment_intents.search(
                    params={"query": f"metadata['{METADATA_KEY}']:'{escaped}'", "limit": PAGE}
                ).auto_paging_iter()
            )
        if not found:
            return None
        # There should be one; if a dashboard user made more, a success is the one that counts.
        found.sort(key=lambda intent: (intent.status != "succeeded", intent.created))
        return _charge_result(idempotency_key, found[0])

    def refund(self, idempotency_key: str, charge_ref: str, amount: Money) -> RefundResult:
        def refused(reason: str) -> RefundResult:
            return RefundResult(idempotency_key, False, None, amount, reason)

        stripe_amount = _to_stripe(amount)
        with _translated(mutating=False):
            try:
                intent = self._client.v1.payment_intents.retrieve(charge_ref)
            except stripe.InvalidRequestError as error:
                if error.code == "resource_missing":
                    return refused("charge_not_found")
                raise
            if intent.status != "succeeded":
                return refused("charge_not_succeeded")
            if intent.currency.upper() != amount.currency:
                return refused("currency_mismatch")
            # Stripe forgets idempotency keys after 24 hours; the refund's metadata does not.
            for earlier in self._client.v1.refunds.list(
                params={"payment_intent": charge_ref, "limit": PAGE}
            ).auto_paging_iter():
                if _fairsub_key(earlier.metadata) == idempotency_key:
                    return _refund_result(idempotency_key, earlier, amount)
        try:
            with _translated(mutating=True):
                made = self._client.v1.refunds.create(
                    params={
                        "payment_intent": charge_ref,
                        "amount": stripe_amount,
                        "metadata": {METADATA_KEY: idempotency_key},
                    },
                    options={"idempotency_key": REFUND_KEY_PREFIX + idempotency_key},
                )
        except stripe.InvalidRequestError as error:
            if error.code in ("amount_too_large", "charge_already_refunded"):
                return refused("amount_too_large")
            raise
        return _refund_result(idempotency_key, made, amount)

    def ledger(self) -> Iterator[GatewayLedgerEntry]:
        with _translated(mutating=False):
            for intent in self._client.v1.payment_intents.list(
                params={"limit": PAGE}
            ).auto_paging_iter():
                yield GatewayLedgerEntry(
                    "charge",
                    _fairsub_key(intent.metadata),
                    _from_stripe(intent.amount, intent.currency),
                    intent.status == "succeeded",
                    intent.id,
                )
            for refund in self._client.v1.refunds.list(params={"limit": PAGE}).auto_paging_iter():
                yield GatewayLedgerEntry(
                    "refund",
                    _fairsub_key(refund.metadata),
                    _from_stripe(refund.amount, refund.currency),
                    refund.status in ("succeeded", "pending"),
                    refund.id,
                )


@contextmanager
def _translated(*, mutating: bool) -> Iterator[None]:
    """Stripe's failures in the port's terms. `mutating`: a create whose outcome matters."""
    try:
        yield
    except (stripe.AuthenticationError, stripe.PermissionError) as error:
        # Stripe's own message may quote part of the key: it stays in the cause, unshown.
        what = (
            "refused the API key (wrong or revoked)"
            if isinstance(error, stripe.AuthenticationError)
            else "says the API key lacks a permission fairsub needs (a restricted key?)"
        )
        raise GatewayRefusedCredentials(
            f"Stripe {what}; check FAIRSUB_STRIPE_API_KEY.", setting="FAIRSUB_STRIPE_API_KEY"
        ) from error
    except stripe.IdempotencyError as error:
        raise InvalidInput(
            "This idempotency key was already used for a different request."
        ) from error
    except stripe.RateLimitError as error:
        raise GatewayUnavailable("Stripe is rate limiting; try again later.") from error
    except stripe.APIConnectionError as error:
        if mutating:
            raise GatewayTimeout("The connection to Stripe failed; outcome unknown.") from error
        raise GatewayUnavailable("Stripe could not be reached.") from error
    except stripe.APIError as error:
        if mutating:
            raise GatewayTimeout(
                f"Stripe answered {error.http_status}; outcome unknown."
            ) from error
        raise GatewayUnavailable(f"Stripe answered {error.http_status}.") from error


def _charge_result(idempotency_key: str, intent: stripe.PaymentIntent) -> ChargeResult:
    amount = _from_stripe(intent.amount, intent.currency)
    if intent.status == "succeeded":
        return ChargeResult(idempotency_key, True, intent.id, amount)
    if intent.status in ("requires_payment_method", "canceled"):
        error = intent.last_payment_error
        reason = _decline_reason(error.decline_code, error.code) if error else intent.status
        return ChargeResult(idempotency_key, False, intent.id, amount, reason)
    raise GatewayTimeout(f"Stripe's PaymentIntent {intent.id} is still {intent.status}.")


def _refund_result(idempotency_key: str, refund: stripe.Refund, asked: Money) -> RefundResult:
    amount = _from_stripe(refund.amount, refund.currency)
    if amount != asked:
        raise InvalidInput(
            f"Idempotency key {idempotency_key!r} was already used for a refund of "
            f"{amount.plain()}."
        )
    if refund.status in ("succeeded", "pending"):
        return RefundResult(idempotency_key, True, refund.id, amount)
    return RefundResult(
        idempotency_key, False, refund.id, amount, refund.failure_reason or refund.status
    )


def _fairsub_key(metadata: stripe.StripeObject | None) -> str:
    """The key fairsub put in an object's metadata; "" for objects made outside fairsub."""
    value = metadata[METADATA_KEY] if metadata and METADATA_KEY in metadata else None
    return value if isinstance(value, str) else ""


def _decline_reason(decline_code: str | None, code: str | None) -> str:
    if decline_code and decline_code != "generic_decline":
        return decline_code
    return code or "card_declined"


def _to_stripe(amount: Money) -> int:
    if amount.amount_minor <= 0:
        raise InvalidInput("Amounts charged or refunded must be more than zero.")
    if amount.currency in THREE_DECIMAL and amount.amount_minor % 10:
        raise InvalidInput(f"Stripe takes {amount.currency} amounts only in multiples of 10.")
    return amount.amount_minor * STRIPE_FACTOR.get(amount.currency, 1)


def _from_stripe(stripe_amount: int, currency: str) -> Money:
    code = currency.upper()
    whole, fraction = divmod(stripe_amount, STRIPE_FACTOR.get(code, 1))
    if fraction:
        raise InvalidInput(f"Stripe amount {stripe_amount} {code} is not whole minor units.")
    return Money(whole, code)
