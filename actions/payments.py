"""Money movement: ask for a YES, then execute it exactly once.

Each prepare action turns a completed form into a pending operation in the
banking core and shows the confirmation (amount, source, destination, expiry)
with Yes/No buttons. Only `action_confirm_pending`, run on an affirm, executes it,
and only the operation that confirmation named (`pending_op_id`).
"""

from __future__ import annotations

import contextlib
import functools
import re
from abc import ABC, abstractmethod
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.feedback import ask_for_feedback
from actions.forms import reference_name
from actions.runtime import (
    FLOW_SLOTS,
    banking,
    call,
    customer,
    latest_intent,
    local_datetime,
    local_time,
    source_label,
    tell_payment,
    tell_settled,
    utter_refusal,
)
from banking import errors
from banking.models import ProviderPayment
from banking.money import format_money, format_naira, parse_amount_kobo

RESET_FLOW = [SlotSet(name, None) for name in FLOW_SLOTS]

CONFIRMATION_RESPONSE = {
    "transfer": "utter_confirm_transfer",
    "bill": "utter_confirm_bill",
    "airtime": "utter_confirm_airtime",
    "freeze": "utter_confirm_freeze",
    "unfreeze": "utter_confirm_unfreeze",
    "disconnect": "utter_confirm_disconnect",
    "set_limit": "utter_confirm_set_limit",
}

# Mono DirectPay (MONO_DIRECTPAY=on) collects into the operator's own account, not the recipient's:
# its confirmations say so instead of "send to".
DIRECTPAY_CONFIRMATION = {
    "transfer": "utter_confirm_transfer_directpay",
    "airtime": "utter_confirm_airtime_directpay",
}

DONE_RESPONSE = {
    "transfer": "utter_transfer_done",
    "bill": "utter_bill_paid",
    "airtime": "utter_airtime_done",
    "freeze": "utter_frozen_done",
    "unfreeze": "utter_unfrozen_done",
    "disconnect": "utter_disconnected",
    "set_limit": "utter_limit_changed",
}


def ask_for_yes(dispatcher: CollectingDispatcher, operation: Any, currency: str = "NGN",
                **extra: Any) -> List[EventType]:
    """Shows the confirmation of a pending operation and remembers which one it is.

    Its Yes/No buttons carry the operation's reference (``op_ref``), so a tap can only ever
    answer this confirmation; a typed YES answers it only in the very next turn
    (``open_confirmation``).
    """
    ttl_minutes = max(1, round(banking().settings.confirmation_ttl_seconds / 60))
    cooling_off_hours = banking().settings.security_cooling_off_hours
    response = CONFIRMATION_RESPONSE[operation.kind]
    if operation.kind in DIRECTPAY_CONFIRMATION and banking().pays_at_provider:
        response = DIRECTPAY_CONFIRMATION[operation.kind]  # says where DirectPay really puts the money
    if operation.kind == "set_limit" and extra.get("raising"):
        response = "utter_confirm_raise_limit"
    extra.pop("raising", None)
    dispatcher.utter_message(
        response=response,
        amount=format_money(operation.amount_kobo, currency),
        source=source_label(operation),
        destination=operation.destination_label,
        expires_at=local_time(operation.expires_at),
        ttl_minutes=ttl_minutes,
        cooling_off_hours=cooling_off_hours,
        op_ref=operation.op_id,
        **extra,
    )
    return [SlotSet("pending_op_id", operation.op_id)]


def open_confirmation(tracker: Tracker) -> str | None:
    """The operation whose confirmation the bot showed in the turn just before the latest message.

    Only that one may be answered: any other customer turn in between closes it, so a YES
    said to something else ("Anything else?" -> "yes") never moves money.
    """
    op_id = tracker.get_slot("pending_op_id")
    if not op_id:
        return None
    users = [index for index, event in enumerate(tracker.events) if event.get("event") == "user"]
    if not users:
        return None
    previous = users[-2] if len(users) > 1 else -1
    for event in tracker.events[previous + 1:users[-1]]:
        if event.get("event") == "slot" and event.get("name") == "pending_op_id" and event.get("value") == op_id:
            return op_id
    return None


def answered_ref(tracker: Tracker) -> str | None:
    """The operation a Yes/No button named (``/affirm{"op_ref": ...}``); None for a typed answer."""
    value = next(tracker.get_latest_entity_values("op_ref"), None)
    return value if isinstance(value, str) and value else None


class PrepareMoneyMovement(Action, ABC):
    """Base of the three money forms' submit actions."""

    form_slots: tuple = ()

    @abstractmethod
    async def prepare(self, tracker: Tracker, user: str, amount_kobo: int) -> Any:
        """Asks the banking core for a pending operation built from the form's slots."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if any(tracker.get_slot(slot) is None for slot in self.form_slots):
            return RESET_FLOW  # the form stopped early and already said why
        amount_kobo = parse_amount_kobo(str(tracker.get_slot("amount")))
        source = tracker.get_slot("source_account")
        await tell_settled(dispatcher, customer(tracker))  # an earlier one a failure left half-way
        try:
            operation = await self.prepare(tracker, customer(tracker), amount_kobo or 0)
        except errors.BankingError as error:
            utter_refusal(dispatcher, error, amount_kobo=amount_kobo, account=source)
            return [*RESET_FLOW, SlotSet("pending_op_id", None)]
        return [*RESET_FLOW, *ask_for_yes(dispatcher, operation)]


class ActionPrepareTransfer(PrepareMoneyMovement):
    form_slots = ("amount", "source_account", "destination_account")

    def name(self) -> str:
        return "action_prepare_transfer"

    async def prepare(self, tracker: Tracker, user: str, amount_kobo: int) -> Any:
        destination = tracker.get_slot("destination_account")
        source = tracker.get_slot("source_account")
        if destination.isdigit():
            return await call(
                banking().prepare_transfer, user, amount_kobo, source,
                account_number=destination, bank=tracker.get_slot("bank"),
            )
        return await call(banking().prepare_transfer, user, amount_kobo, source, to_account_type=destination)


class ActionPrepareBillPayment(PrepareMoneyMovement):
    form_slots = ("biller", "customer_ref", "amount", "source_account")

    def name(self) -> str:
        return "action_prepare_bill_payment"

    async def prepare(self, tracker: Tracker, user: str, amount_kobo: int) -> Any:
        return await call(
            banking().prepare_bill, user, amount_kobo, tracker.get_slot("source_account"),
            tracker.get_slot("biller"), tracker.get_slot("customer_ref"),
        )


class ActionPrepareAirtime(PrepareMoneyMovement):
    form_slots = ("network", "phone_number", "amount", "source_account")

    def name(self) -> str:
        return "action_prepare_airtime"

    async def prepare(self, tracker: Tracker, user: str, amount_kobo: int) -> Any:
        return await call(
            banking().prepare_airtime, user, amount_kobo, tracker.get_slot("source_account"),
            tracker.get_slot("network"), tracker.get_slot("phone_number"),
        )


# A YES moves money only when NLU is sure of it (or it is the Yes button, 1.0):
# fillers such as "hmm" or "haha" land on affirm at 0.6-0.8, real ones at 0.88+.
EXPLICIT_YES_CONFIDENCE = 0.85


def is_explicit_yes(tracker: Tracker) -> bool:
    """A Yes tap (its payload names the operation), or a typed affirm the model is sure of that
    has a word in it: an emoji or punctuation alone ("❌", "🤔", "!!") never moves money."""
    intent = tracker.latest_message.get("intent") or {}
    if intent.get("name") != "affirm" or float(intent.get("confidence") or 0) < EXPLICIT_YES_CONFIDENCE:
        return False
    return answered_ref(tracker) is not None or has_a_word(tracker.latest_message.get("text") or "")


def has_a_word(text: str) -> bool:
    return re.search(r"[^\W\d_]", text) is not None


def is_unsure_voice_note(tracker: Tracker) -> bool:
    """Whether the latest message is a voice note the transcriber was unsure of (the WhatsApp
    channel's ``{"whatsapp": {"transcribed", "low_confidence"}}`` message metadata)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            channel = (event.get("metadata") or {}).get("whatsapp") or {}
            return bool(channel.get("transcribed") and channel.get("low_confidence"))
    return False


class ActionConfirmPending(Action):
    """Runs on every affirm: executes the one operation whose confirmation was just shown."""

    def name(self) -> str:
        return "action_confirm_pending"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        open_op = open_confirmation(tracker)
        target = answered_ref(tracker) or tracker.get_slot("pending_op_id")
        if not target:
            dispatcher.utter_message(response="utter_nothing_pending")
            return []
        if target != open_op:
            return await explain_not_open(dispatcher, tracker, target, open_op)
        if not is_explicit_yes(tracker):
            dispatcher.utter_message(response="utter_confirm_explicitly", op_ref=target)
            return [SlotSet("pending_op_id", target)]  # still open for the customer's clear answer
        if is_unsure_voice_note(tracker):  # "I heard: yes" is not a YES the customer gave
            dispatcher.utter_message(response="utter_confirm_by_tapping", op_ref=target)
            return [SlotSet("pending_op_id", target)]
        try:
            receipt = await call(banking().confirm, customer(tracker), target)
        except errors.AlreadyExecuted as done:
            utter_already_done(dispatcher, done.receipt)
            return []
        except errors.PaymentAtProvider as waiting:  # a second YES: the one payment already started
            return utter_payment_started(dispatcher, waiting.payment)
        except errors.BankingError as error:
            utter_refusal(dispatcher, error)
            return [SlotSet("pending_op_id", None)]
        if isinstance(receipt, ProviderPayment):
            return utter_payment_started(dispatcher, receipt)
        utter_receipt(dispatcher, receipt)
        if receipt.kind in ("freeze", "disconnect"):
            await warn_of_waiting_payments(dispatcher, customer(tracker))
        return ask_for_feedback(dispatcher, tracker, receipt)


async def warn_of_waiting_payments(dispatcher: CollectingDispatcher, user: str) -> None:
    """A freeze or disconnect cannot stop a payment already waiting on Mono's page (Mono offers no
    cancel for it): the customer hears of each one, and not to approve it if it was not them."""
    try:
        waiting = await call(banking().waiting_payments, user)
    except errors.BankingError:
        return
    for payment in waiting:
        dispatcher.utter_message(response="utter_payment_still_waiting_at_mono",
                                 amount=format_naira(payment.amount_kobo), destination=payment.destination_label,
                                 source=source_label(payment))


def utter_payment_started(dispatcher: CollectingDispatcher, payment: Any) -> List[EventType]:
    """Mono DirectPay: the payment waits for the customer's approval on Mono's page; nothing is done
    until Mono confirms it (EXTERNAL_payment_updated, or the next look), so no receipt and no "sent"."""
    if payment is None:
        dispatcher.utter_message(response="utter_already_handled")
    elif payment.status != "at_provider" or not payment.url:  # found at Mono after a failure: as Mono has it
        tell_payment(dispatcher, payment)
    else:
        dispatcher.utter_message(response="utter_payment_pending", amount=format_naira(payment.amount_kobo),
                                 source=source_label(payment), destination=payment.destination_label,
                                 url=payment.url)
    return [SlotSet("pending_op_id", None)]


class ActionPaymentUpdated(Action):
    """EXTERNAL_payment_updated: Mono's webhook says a DirectPay payment moved on. The webhook is not
    believed: Mono is asked (verify by reference) and the customer hears what Mono confirms, once."""

    def name(self) -> str:
        return "action_payment_updated"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        reference = next(tracker.get_latest_entity_values("payment_ref"), None)
        if not isinstance(reference, str) or not reference:
            return []
        try:
            payment = await call(banking().settle_payment, customer(tracker), reference)
        except errors.BankingError:
            return []  # Mono could not be asked now: the payment stays waiting; the next look settles it
        if payment is not None and payment.changed:
            tell_payment(dispatcher, payment)
        return []


async def explain_not_open(
    dispatcher: CollectingDispatcher, tracker: Tracker, target: str, open_op: str | None
) -> List[EventType]:
    """A YES for a confirmation that is not the open one: nothing executes, and the customer hears why."""
    user = customer(tracker)
    status = await call(banking().operation_status, user, target)
    if status in ("at_provider", "failed", "executed"):  # a payment at Mono: what Mono confirms of it
        try:
            payment = await call(banking().settle_payment, user, target)
        except errors.BankingError as error:
            utter_refusal(dispatcher, error)
            return []
        if payment is not None:
            tell_payment(dispatcher, payment)
            return []
    if status in ("executed", "executing"):
        utter_already_done(dispatcher, await call(banking().executed_receipt, user, target))
        return []
    if open_op is not None:  # a Yes for another (or no known) confirmation while one waits: show it
        operation = await call(banking().pending_operation, user, open_op)
        if operation is not None:
            known = status is not None
            dispatcher.utter_message(
                response="utter_yes_for_another_confirmation" if known else "utter_yes_not_recognised")
            return ask_for_yes(dispatcher, operation)
    if status == "pending":  # the conversation moved on since it was shown
        with contextlib.suppress(errors.BankingError):
            await call(banking().cancel, user, target, "closed")
        dispatcher.utter_message(response="utter_confirmation_closed")
    elif status == "expired":
        dispatcher.utter_message(response="utter_confirmation_expired")
    elif status in ("cancelled", "superseded", "refused"):
        dispatcher.utter_message(response="utter_confirmation_not_open")
    else:
        dispatcher.utter_message(response="utter_nothing_pending")
    return [SlotSet("pending_op_id", None)] if target == tracker.get_slot("pending_op_id") else []


def utter_already_done(dispatcher: CollectingDispatcher, receipt: Any) -> None:
    reference = getattr(receipt, "reference", None) if receipt else None
    if reference:
        dispatcher.utter_message(response="utter_already_done", reference=reference)
    else:
        dispatcher.utter_message(response="utter_already_handled")


def utter_receipt(dispatcher: CollectingDispatcher, receipt: Any) -> None:
    """The done message; for an unfreeze or a raise waiting out its cooling-off, when it takes effect."""
    effective_at = getattr(receipt, "effective_at", None)
    if effective_at is not None:
        response = "utter_unfreeze_scheduled" if receipt.kind == "unfreeze" else "utter_limit_raise_scheduled"
        dispatcher.utter_message(response=response, when=local_datetime(effective_at),
                                 amount=format_naira(receipt.amount_kobo))
        return
    dispatcher.utter_message(response=DONE_RESPONSE[receipt.kind], **receipt_details(receipt))


def receipt_details(receipt: Any) -> Dict[str, Any]:
    settings = banking().settings
    return {
        "amount": format_naira(receipt.amount_kobo),
        "source": source_label(receipt),
        "destination": receipt.destination_label,
        "reference": receipt.reference,
        "new_balance": format_naira(receipt.new_balance_kobo) if receipt.new_balance_kobo is not None else "",
        "bank": receipt.destination_label,
        "support_phone": settings.support_phone,
    }


class ActionCancelPending(Action):
    """Runs on deny/cancel outside a form: drops the operation awaiting a YES, or else a
    scheduled unfreeze or limit raise (cancelling those only ever keeps money safer)."""

    def name(self) -> str:
        return "action_cancel_pending"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        user = customer(tracker)
        pending = tracker.get_slot("pending_op_id")
        ref = answered_ref(tracker)
        if ref and ref != pending:  # a No tapped on an older confirmation leaves the current one alone
            dispatcher.utter_message(response="utter_confirmation_not_open")
            return []
        if not pending:
            return await cancel_scheduled(dispatcher, user)
        try:
            await call(banking().cancel, user, pending)
        except errors.AlreadyExecuted:  # too late for that one; a change it scheduled can still be stopped
            return [SlotSet("pending_op_id", None), *await cancel_scheduled(dispatcher, user, "utter_already_handled")]
        except errors.BankingError:
            return [SlotSet("pending_op_id", None), *await cancel_scheduled(dispatcher, user)]
        dispatcher.utter_message(response="utter_cancelled")
        return [SlotSet("pending_op_id", None)]


async def cancel_scheduled(
    dispatcher: CollectingDispatcher, user: str, nothing_response: str = "utter_nothing_to_cancel"
) -> List[EventType]:
    """Stops a scheduled unfreeze or limit raise; ``nothing_response`` when there is none."""
    try:
        cancelled = await call(banking().cancel_scheduled_changes, user)
    except errors.BankingError:
        cancelled = []
    if not cancelled:
        dispatcher.utter_message(response=nothing_response)
        return []
    for change in cancelled:
        dispatcher.utter_message(
            response="utter_unfreeze_cancelled" if change.kind == "unfreeze" else "utter_limit_raise_cancelled",
            amount=format_naira(change.new_limit_kobo or 0),
        )
    return []


class ActionCancelFlow(Action):
    """Stops the form under way (cancel, NO, or an emergency) with nothing moved."""

    def name(self) -> str:
        return "action_cancel_flow"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        if latest_intent(tracker) in ("cancel", "deny"):
            dispatcher.utter_message(response="utter_cancelled")
        return [*RESET_FLOW, SlotSet("requested_slot", None), ActiveLoop(None)]


class ActionAskCustomerRef(Action):
    """Asks for the meter, smartcard or account number by the biller's own name for it."""

    def name(self) -> str:
        return "action_ask_customer_ref"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        biller = tracker.get_slot("biller")
        dispatcher.utter_message(
            response="utter_ask_customer_ref", biller=biller, ref_name=reference_name(biller or "")
        )
        return []


class ActionPrepareFreeze(Action):
    """Emergency stop: asks for the YES that freezes every account at once."""

    kind = "freeze"

    def name(self) -> str:
        return "action_prepare_freeze"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        service = banking()
        method = {"freeze": service.prepare_freeze, "unfreeze": service.prepare_unfreeze,
                  "disconnect": service.prepare_disconnect}[self.kind]
        try:
            operation = await call(method, customer(tracker))
        except errors.BankingError as error:
            utter_refusal(dispatcher, error)
            return [SlotSet("pending_op_id", None)]
        return ask_for_yes(dispatcher, operation, bank=operation.destination_label)


class ActionPrepareUnfreeze(ActionPrepareFreeze):
    kind = "unfreeze"

    def name(self) -> str:
        return "action_prepare_unfreeze"


class ActionPrepareDisconnect(ActionPrepareFreeze):
    kind = "disconnect"

    def name(self) -> str:
        return "action_prepare_disconnect"


class ActionSetLimit(Action):
    """Shows the daily transfer limit, or asks for a YES to change it."""

    def name(self) -> str:
        return "action_set_limit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        user = customer(tracker)
        amount = next(tracker.get_latest_entity_values("amount"), None)
        try:
            status = await call(banking().get_limit, user)
            if not banking().provider_moves_money:  # Plaid (and Mono without DirectPay): nothing to limit here
                dispatcher.utter_message(response="utter_limit_read_only_link")
                return []
            money = functools.partial(format_money, currency=status.currency)  # the link's own currency
            if amount is None:
                dispatcher.utter_message(
                    response="utter_limit_status",
                    limit=money(status.limit_kobo),
                    spent=money(status.spent_today_kobo),
                    remaining=money(status.remaining_kobo),
                )
                if status.scheduled_limit_kobo is not None and status.limit_changes_at is not None:
                    dispatcher.utter_message(response="utter_limit_raise_scheduled",
                                             amount=money(status.scheduled_limit_kobo),
                                             when=local_datetime(status.limit_changes_at))
                return []
            operation = await call(banking().prepare_set_limit, user, parse_amount_kobo(str(amount)) or 0)
        except errors.InvalidAmount:
            dispatcher.utter_message(response="utter_invalid_limit", min_limit=money(100),
                                     max_limit=money(banking().max_daily_limit_kobo))
            return []
        except errors.BankingError as error:
            utter_refusal(dispatcher, error)
            return []
        return ask_for_yes(dispatcher, operation, status.currency, old_limit=money(status.limit_kobo),
                           raising=operation.amount_kobo > status.limit_kobo)
