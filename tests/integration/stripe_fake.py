"""An in-process Stripe API: a `stripe.HTTPClient` that answers the SDK as api.stripe.com would.

It covers the part of /v1 that fairsub's adapter uses: customers, payment methods
(Stripe's test payment methods such as pm_card_visa, attached to customers), payment
intents (create-and-confirm, retrieve, list, search) and refunds (create, list). Like Stripe:

- an Idempotency-Key replays the first response (a 402 decline included); the same key on
  a different request is a 400 idempotency_error; `forget_idempotency_keys()` plays the
  24 hours after which Stripe forgets them;
- `search_lag = True` keeps new payment intents out of search results, as Stripe's search
  index runs behind writes;
- test payment methods decline as Stripe's do; ISK amounts must be whole hundredths,
  three-decimal ones end in 0; currencies must be lower case;
- lists are newest first and page with starting_after (at most `page_size` per page).

`fail_next(500)`, `fail_next(429)` and `disconnect_next()` make the next request (or the
next one `on="POST /v1/payment_intents"`) fail, either before the work (nothing happened)
or, with after_processing=True, after it (the work happened and only the answer is lost).
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

Body = dict[str, Any]
Response = tuple[int, Body]

# name -> (brand, last4, error code, decline code); a code means the charge is declined.
TEST_PAYMENT_METHODS: dict[str, tuple[str, str, str | None, str | None]] = {
    "pm_card_visa": ("visa", "4242", None, None),
    "pm_card_mastercard": ("mastercard", "4444", None, None),
    "pm_card_amex": ("amex", "0005", None, None),
    "pm_card_chargeDeclined": ("visa", "0002", "card_declined", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "visa",
        "9995",
        "card_declined",
        "insufficient_funds",
    ),
    "pm_card_chargeDeclinedProcessingError": ("visa", "0119", "processing_error", None),
}
THREE_DECIMAL = {"kwd", "bhd", "jod", "omr", "tnd"}
SEARCH = re.compile(r"^metadata\['(\w+)'\]:'((?:[^'\\]|\\.)*)'$")


@dataclass(frozen=True)
class Fault:
    status: int | None  # None: the connection drops
    after_processing: bool
    on: str | None  # "POST /v1/payment_intents": the next such request; None: any request


def error(status: int, type_: str, message: str, **fields: Any) -> Response:
    return status, {"error": {"type": type_, "message": message, **fields}}


def missing(kind: str, ident: str, param: str | None = None) -> Response:
    return error(
        404 if param is None else 400,
        "invalid_request_error",
        f"No such {kind}: '{ident}'",
        code="resource_missing",
        param=param,
    )


def unflatten(pairs: list[tuple[str, str]]) -> Body:
    """Stripe's form encoding (metadata[key]=v, list[0]=v) back into nested dicts."""
    out: Body = {}
    for name, value in pairs:
        head = name.split("[", 1)[0]
        path = [head, *re.findall(r"\[([^\]]*)\]", name)]
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


class FakeStripe(stripe.HTTPClient):
    name = "fairsub-fake-stripe"

    def __init__(self, *, page_size: int = 100) -> None:
        super().__init__()
        self.page_size = page_size
        self.search_lag = False
        self.revoked_keys: set[str] = set()  # refused as a wrong key (401) from now on
        self.customers: dict[str, Body] = {}
        self.payment_methods: dict[str, Body] = {}
        self.payment_intents: dict[str, Body] = {}
        self.refunds: dict[str, Body] = {}
        self.requests: list[tuple[str, str, Body, Mapping[str, str]]] = []
        self._unsearchable: set[str] = set()
        self._idempotent: dict[str, tuple[str, Body, Response]] = {}
        self._faults: list[Fault] = []
        self._created = itertools.count(1_790_000_000)
        self._lock = threading.Lock()

    # --- what a test can tell it -------------------------------------------------------

    def fail_next(
        self, status: int = 500, *, after_processing: bool = False, on: str | None = None
    ) -> None:
        self._faults.append(Fault(status, after_processing, on))

    def disconnect_next(self, *, after_processing: bool = False, on: str | None = None) -> None:
        self._faults.append(Fault(None, after_processing, on))

    def forget_idempotency_keys(self) -> None:
        self._idempotent.clear()

    def index_search(self) -> None:
        self._unsearchable.clear()

    def posts(self, path: str) -> list[tuple[Body, Mapping[str, str]]]:
        return [(p, h) for method, q, p, h in self.requests if method == "POST" and q == path]

    # --- stripe.HTTPClient ---------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        with self._lock:
            status, body, replayed = self._handle(method, url, dict(headers or {}), post_data)
        response_headers = {"Request-Id": f"req_{secrets.token_hex(7)}"}
        if replayed:
            response_headers["Idempotent-Replayed"] = "true"
        return json.dumps(body), status, response_headers

    def close(self) -> None:
        pass

    def _handle(
        self, method: str, url: str, headers: dict[str, str], post_data: Any
    ) -> tuple[int, Body, bool]:
        parts = urlsplit(url)
        form = parts.query if method == "get" else (post_data or "")
        params = unflatten(parse_qsl(form, keep_blank_values=True))
        self.requests.append((method.upper(), parts.path, params, headers))
        fault = self._take_fault(f"{method.upper()} {parts.path}")
        if fault is not None and not fault.after_processing:
            return self._fail(fault)
        key_used = headers.get("Authorization", "").removeprefix("Bearer ")
        if not key_used.startswith("sk_test_") or key_used in self.revoked_keys:
            return (*error(401, "invalid_request_error", "Invalid API Key provided"), False)
        key = headers.get("Idempotency-Key") if method == "post" else None
        replayed = False
        if key is not None and key in self._idempotent:
            path, first_params, response = self._idempotent[key]
            if (path, first_params) != (parts.path, params):
                response = error(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                )
            replayed = True
        else:
            response = self._route(method, parts.path, params)
            if key is not None:
                self._idempotent[key] = (parts.path, params, response)
        if fault is not None:
            return self._fail(fault)
        return (*response, replayed)

    def _take_fault(self, request: str) -> Fault | None:
        for fault in self._faults:
            if fault.on in (None, request):
                self._faults.remove(fault)
                return fault
        return None

    def _fail(self, fault: Fault) -> tuple[int, Body, bool]:
        if fault.status is None:
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
                "Connection to Stripe lost (simulated)", should_retry=True
            )
        if fault.status == 429:
            return (
                *error(429, "invalid_request_error", "Too many requests", code="rate_limit"),
                False,
            )
        return (*error(fault.status, "api_error", "Something went wrong on Stripe's end"), False)

    def _route(self, method: str, path: str, params: Body) -> Response:
        segments = path.strip("/").split("/")[1:]  # drop "v1"
        match method, segments:
            case "post", ["customers"]:
                return self._add(self.customers, "cus", {"object": "customer", **params})
            case "post", ["payment_methods", ident, "attach"]:
                return self._attach(ident, params.get("customer", ""))
            case "get", ["payment_methods", ident]:
                found = self.payment_methods.get(ident)
                return (200, found) if found else missing("PaymentMethod", ident)
            case "post", ["payment_intents"]:
                return self._create_intent(params)
            case "get", ["payment_intents", "search"]:
                return self._search(params)
            case "get", ["payment_intents", ident]:
                found = self.payment_intents.get(ident)
                return (200, found) if found else missing("payment_intent", ident)
            case "get", ["payment_intents"]:
                return self._list(list(self.payment_intents.values()), params, path)
            case "post", ["refunds"]:
                return self._create_refund(params)
            case "get", ["refunds"]:
                refunds = [
                    r
                    for r in self.refunds.values()
                    if params.get("payment_intent") in (None, r["payment_intent"])
                ]
                return self._list(refunds, params, path)
        return error(404, "invalid_request_error", f"Unrecognized request URL ({method} {path})")

    def _add(self, table: dict[str, Body], prefix: str, body: Body) -> Response:
        body = {"id": f"{prefix}_{secrets.token_hex(8)}", "created": next(self._created), **body}
        table[body["id"]] = body
        return 200, body

    def _attach(self, ident: str, customer: str) -> Response:
        if customer not in self.customers:
            return missing("customer", customer, "customer")
        if ident in TEST_PAYMENT_METHODS:
            brand, last4, _, _ = TEST_PAYMENT_METHODS[ident]
            card = {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034}
            return self._add(
                self.payment_methods,
                "pm",
                {
                    "object": "payment_method",
                    "type": "card",
                    "card": card,
                    "customer": customer,
                    "test": ident,
                },
            )
        if ident not in self.payment_methods:
            return missing("PaymentMethod", ident)
        self.payment_methods[ident]["customer"] = customer
        return 200, self.payment_methods[ident]

    def _create_intent(self, p: Body) -> Response:
        amount, currency = int(p["amount"]), p["currency"]
        refusal = self._amount_refusal(amount, currency)
        if refusal is not None:
            return refusal
        if p.get("confirm") != "true" or p.get("off_session") != "true":
            return error(400, "invalid_request_error", "The fake confirms off-session only.")
        method_id, customer = p.get("payment_method", ""), p.get("customer")
        if method_id in TEST_PAYMENT_METHODS:
            test_name = method_id
        elif method_id in self.payment_methods:
            method = self.payment_methods[method_id]
            if method.get("customer") != customer:
                return error(
                    400,
                    "invalid_request_error",
                    "The provided PaymentMethod belongs to another Customer.",
                    param="customer",
                )
            test_name = method["test"]
        else:
            return missing("PaymentMethod", method_id, "payment_method")
        if customer is not None and customer not in self.customers:
            return missing("customer", customer, "customer")
        _, _, code, decline_code = TEST_PAYMENT_METHODS[test_name]
        intent: Body = {
            "object": "payment_intent",
            "amount": amount,
            "currency": currency,
            "customer": customer,
            "payment_method": method_id,
            "description": p.get("description"),
            "metadata": p.get("metadata", {}),
            "status": "succeeded",
            "last_payment_error": None,
        }
        if code is None:
            _, stored = self._add(self.payment_intents, "pi", intent)
            self._unsearchable.update([stored["id"]] if self.search_lag else [])
            return 200, stored
        decline = {
            "type": "card_error",
            "code": code,
            "decline_code": decline_code,
            "message": "Your card was declined.",
        }
        intent |= {"status": "requires_payment_method", "last_payment_error": decline}
        _, stored = self._add(self.payment_intents, "pi", intent)
        self._unsearchable.update([stored["id"]] if self.search_lag else [])
        return 402, {"error": {**decline, "payment_intent": stored}}

    def _amount_refusal(self, amount: int, currency: str) -> Response | None:
        if currency != currency.lower():
            return error(400, "invalid_request_error", "Currency must be lower case.")
        if amount <= 0:
            return error(400, "invalid_request_error", "Amount must be positive.")
        if currency == "isk" and amount % 100:
            return error(
                400,
                "invalid_request_error",
                "Currency ISK has become effectively zero-decimal and charged amounts "
                "must be evenly divisible by 100.",
                code="invalid_charge_amount_no_decimal_compatible",
            )
        if currency in THREE_DECIMAL and amount % 10:
            return error(400, "invalid_request_error", "Amounts must end in 0.")
        return None

    def _search(self, p: Body) -> Response:
        matched = SEARCH.match(p.get("query", ""))
        if matched is None:
            return error(400, "invalid_request_error", "The fake searches metadata only.")
        field, value = matched[1], re.sub(r"\\(.)", r"\1", matched[2])
        found = [
            intent
            for intent in reversed(self.payment_intents.values())
            if intent["metadata"].get(field) == value and intent["id"] not in self._unsearchable
        ]
        start = int(p.get("page", 0))
        limit = min(int(p.get("limit", 10)), self.page_size)
        more = len(found) > start + limit
        return 200, {
            "object": "search_result",
            "url": "/v1/payment_intents/search",
            "data": found[start : start + limit],
            "has_more": more,
            "next_page": str(start + limit) if more else None,
        }

    def _list(self, items: list[Body], p: Body, url: str) -> Response:
        items = items[::-1]
        if "starting_after" in p:
            ids = [item["id"] for item in items]
            items = items[ids.index(p["starting_after"]) + 1 :]
        limit = min(int(p.get("limit", 10)), self.page_size)
        return 200, {
            "object": "list",
            "url": url,
            "data": items[:limit],
            "has_more": len(items) > limit,
        }

    def _create_refund(self, p: Body) -> Response:
        intent = self.payment_intents.get(p.get("payment_intent", ""))
        if intent is None:
            return missing("payment_intent", p.get("payment_intent", ""), "payment_intent")
        if intent["status"] != "succeeded":
            return error(
                400,
                "invalid_request_error",
                "This PaymentIntent has no successful charge to refund.",
                code="payment_intent_unexpected_state",
            )
        refunded = sum(
            r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"]
        )
        amount = int(p.get("amount", intent["amount"] - refunded))
        refusal = self._amount_refusal(amount, intent["currency"])
        if refusal is not None:
            return refusal
        if refunded >= intent["amount"]:
            return error(
                400,
                "invalid_request_error",
                "Charge has already been refunded.",
                code="charge_already_refunded",
            )
        if refunded + amount > intent["amount"]:
            return error(
                400,
                "invalid_request_error",
                "Refund amount is greater than unrefunded amount on charge.",
                code="amount_too_large",
                param="amount",
            )
        return self._add(
            self.refunds,
            "re",
            {
                "object": "refund",
                "amount": amount,
                "currency": intent["currency"],
                "payment_intent": intent["id"],
                "status": "succeeded",
                "metadata": p.get("metadata", {}),
                "failure_reason": None,
            },
        )
