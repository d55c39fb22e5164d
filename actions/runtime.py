"""What every action needs: the banking service, the customer's key, and a way to
call the (blocking) banking core without stalling the action server's event loop."""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, TypeVar

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from banking import errors
from banking.config import Settings
from banking.identity import user_key
from banking.money import format_money, format_naira
from banking.service import BankingService

T = TypeVar("T")

LAGOS = timezone(timedelta(hours=1))

_service: BankingService | None = None


def banking() -> BankingService:
    """The process's banking service, built on first use (never at import)."""
    global _service
    if _service is None:
        from banking.factory import service_from_env

        _service = service_from_env()
    return _service


def use_service(service: BankingService | None) -> None:
    """Wires a specific service (tests, alternative providers)."""
    global _service
    _service = service


def settings() -> Settings:
    return banking().settings


def customer(tracker: Tracker) -> str:
    """The customer's stored key: a keyed hash of the WhatsApp sender id."""
    return user_key(tracker.sender_id, settings().user_id_salt)


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs a banking-core call in a worker thread; MongoDB I/O is blocking."""
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(function, *args, **kwargs)
    )


_background: set[asyncio.Task[Any]] = set()


def in_background(coroutine: Any) -> asyncio.Task[Any]:
    """Work that goes on after the action has answered (a chart drawn once the text has gone);
    kept referenced until it ends, since asyncio holds tasks only weakly."""
    task = asyncio.get_running_loop().create_task(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


async def background_done() -> None:
    """Wait for every piece of background work started so far (tests, shutdown)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)


def latest_intent(tracker: Tracker) -> str | None:
    """The intent NLU gave the latest message; nlu_fallback stays nlu_fallback."""
    return (tracker.latest_message.get("intent") or {}).get("name")


def latest_entity(tracker: Tracker, entity: str) -> str | None:
    value = next(tracker.get_latest_entity_values(entity), None)
    return str(value) if value is not None else None


def local_time(moment: datetime) -> str:
    """A time as a Lagos customer reads it, e.g. 14:05."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(LAGOS).strftime("%H:%M")


def local_datetime(moment: datetime) -> str:
    """A day and time as a Lagos customer reads it, e.g. 14:05 on Fri 4 Dec."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    local = moment.astimezone(LAGOS)
    return f"{local:%H:%M} on {local:%a} {local.day} {local:%b}"


def account_label(account_type: str | None) -> str:
    return (account_type or "").capitalize()


def source_label(movement: Any) -> str:
    """The account an operation, payment or receipt takes money from, as the customer reads it."""
    return getattr(movement, "source_label", "") or account_label(movement.source)


def joined(names: List[str]) -> str:
    """"Savings", "Checking and Savings", "A, B and C"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# Which response explains which refusal; the banking core's error tree decides.
REFUSALS: Dict[type, str] = {
    errors.NotConnected: "utter_not_connected",
    errors.AccountFrozen: "utter_refuse_frozen",
    errors.InsufficientFunds: "utter_refuse_insufficient_funds",
    errors.LimitExceeded: "utter_refuse_limit_exceeded",
    errors.UnknownAccount: "utter_refuse_unknown_account",
    errors.InvalidAmount: "utter_refuse_invalid_amount",
    errors.InvalidDetails: "utter_refuse_invalid_details",
    errors.NameEnquiryFailed: "utter_refuse_invalid_details",
    errors.ConfirmationSuperseded: "utter_confirmation_not_open",  # before NothingPending, its parent
    errors.NothingPending: "utter_nothing_pending",
    errors.ChangeAlreadyScheduled: "utter_refuse_change_already_scheduled",
    errors.ConfirmationExpired: "utter_confirmation_expired",
    errors.BillsUnavailable: "utter_refuse_bills_here",  # before ReadOnlyLink, its parent
    errors.ReadOnlyLink: "utter_refuse_read_only_link",
    errors.LinkPending: "utter_bank_link_pending",
    errors.ProviderUnavailable: "utter_provider_unavailable",
    errors.OutcomeUnknown: "utter_outcome_unknown",  # before StorageError, its parent
    errors.StorageError: "utter_provider_unavailable",
}

# A provider failure (banking.hosted.ProviderError) says more than "unavailable" when it can.
PROVIDER_REASONS: Dict[str, str] = {
    "rate_limited": "utter_provider_busy",
    "login_required": "utter_bank_login_required",
}


def utter_refusal(
    dispatcher: CollectingDispatcher,
    error: errors.BankingError,
    *,
    amount_kobo: int | None = None,
    account: str | None = None,
) -> None:
    """Tells the customer exactly why nothing happened."""
    response = PROVIDER_REASONS.get(getattr(error, "reason", ""), "") or next(
        (name for kind, name in REFUSALS.items() if isinstance(error, kind)),
        "utter_provider_unavailable",
    )
    details: Dict[str, Any] = {"detail": str(error) or error.code}
    if isinstance(error, errors.UnknownAccount):
        if error.accounts:  # the accounts this customer really has, not a fixed "Checking and Savings"
            details["accounts"] = joined(list(error.accounts))
        else:  # a reference or record, not an account type: say what was not found
            response = "utter_refuse_invalid_details"
    if isinstance(error, errors.InsufficientFunds):
        details["available"] = format_naira(getattr(error, "available_kobo", 0) or 0)
        details["amount"] = format_naira(amount_kobo or 0)
        details["account"] = getattr(error, "account", "") or account_label(account) or "account"
    change = getattr(error, "change", None)
    if isinstance(error, errors.ChangeAlreadyScheduled) and change is not None:
        details["when"] = local_datetime(change.effective_at)
    if isinstance(error, errors.LimitExceeded):
        details["remaining"] = format_money(error.remaining_kobo or 0, error.currency)
        details["limit"] = format_money(error.limit_kobo or 0, error.currency)
    dispatcher.utter_message(response=response, **details)


async def tell_settled(dispatcher: CollectingDispatcher, user: str) -> None:
    """Settles operations a failure left half-way ("executing" past their lease) and tells the
    customer which way each went: done (with its reference) or expired with nothing moved. With
    Mono, payments waiting at the provider are verified with it too, and the customer hears what
    Mono says of each: done, not paid, or still waiting for their approval (with the link)."""
    try:
        settled = await call(banking().settle_lapsed, user)
    except errors.BankingError:
        return  # the next look settles them; the action's own answer still goes
    for operation in settled:
        dispatcher.utter_message(
            response="utter_settled_executed" if operation.outcome == "executed" else "utter_settled_expired",
            amount=format_naira(operation.amount_kobo), destination=operation.destination_label,
            reference=operation.reference or "",
        )
    try:
        payments = await call(banking().settle_payments, user)
    except errors.BankingError:
        return  # the provider could not be asked now; the payment stays waiting and is asked about next time
    for payment in payments:
        if payment.changed or payment.status == "at_provider":
            tell_payment(dispatcher, payment)


# A payment the provider confirmed after we had said otherwise, or after the customer stopped things.
PAID_AFTER_RESPONSE = {
    "not_paid": "utter_payment_paid_after_all",
    "freeze": "utter_payment_paid_after_freeze",
    "disconnect": "utter_payment_paid_after_disconnect",
}


def tell_payment(dispatcher: CollectingDispatcher, payment: Any) -> None:
    """A payment made at the provider (Mono DirectPay) as the provider last confirmed it: done only
    once the provider's verify said so; not paid, or still waiting for the customer's approval."""
    details: Dict[str, Any] = {"amount": format_naira(payment.amount_kobo), "destination": payment.destination_label,
                               "source": source_label(payment)}
    if payment.status == "executed":
        reference = payment.receipt.reference if payment.receipt is not None else ""
        response = PAID_AFTER_RESPONSE.get(payment.paid_after or "", "utter_payment_done")
        dispatcher.utter_message(response=response, reference=reference, **details)
    elif payment.status == "failed":
        declined = payment.reason in ("failed", "rejected", "declined")
        dispatcher.utter_message(response="utter_payment_declined" if declined else "utter_payment_not_approved",
                                 **details)
    elif payment.url:
        dispatcher.utter_message(response="utter_payment_waiting", url=payment.url, **details)
    else:  # started at Mono, but its page is not known here (Mono's verify names none)
        dispatcher.utter_message(response="utter_payment_waiting_at_mono", **details)


FLOW_SLOTS = (
    "amount",
    "source_account",
    "destination_account",
    "bank",
    "biller",
    "customer_ref",
    "network",
    "phone_number",
)
