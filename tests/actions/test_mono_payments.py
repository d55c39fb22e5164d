"""What a Mono customer reads when they send money: the usual confirmation, then after YES a
"pending" message with Mono's page, and the outcome only once Mono's verify confirms it
(EXTERNAL_payment_updated, or the next look). Real HTTP to the fake Mono on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from actions import runtime
from actions.accounts import ActionCheckBalance, ActionShowReceipt
from actions.forms import ValidateBillForm, ValidateTransferForm
from actions.payments import ActionConfirmPending, ActionPaymentUpdated, ActionPrepareTransfer
from banking.service import BankingService
from checks.action_runner import entity, make_tracker, reply_to_confirmation, run
from checks.clock import Clock
from sandbox.fake_mono import FakeMono
from tests.provider_customers import mono_services

TRANSFER_OUT = {"amount": "10000", "source_account": "savings", "destination_account": "0123456780",
                "bank": "Zenith Bank"}


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture
def build(db: Any, clock: Clock, mono: FakeMono) -> Iterator[Callable[..., BankingService]]:
    """Banking services on the fake Mono; keyword options (timeout) for each one's Mono client."""
    with mono_services(db, clock, mono, "action-tests") as make:
        yield make


@pytest.fixture
def service(build: Callable[..., BankingService],
            mono_customer: Callable[[BankingService], BankingService]) -> BankingService:
    """The action server's banking service on Mono, with the customer's GTBank linked through Mono."""
    return mono_customer(build())


async def confirmed() -> tuple[Any, str]:
    """The transfer's confirmation, then a tap on its Yes button."""
    shown = await run(ActionPrepareTransfer(), make_tracker(slots=TRANSFER_OUT))
    op_id = shown.slot("pending_op_id")
    assert shown.responses == ["utter_confirm_transfer_directpay"] and shown.messages[0]["op_ref"] == op_id
    yes = reply_to_confirmation(op_id, "Yes", entities=[entity("op_ref", op_id)])
    return await run(ActionConfirmPending(), yes), op_id


def payment_news(op_id: str) -> Any:
    return make_tracker(intent="EXTERNAL_payment_updated", entities=[entity("payment_ref", op_id)])


async def test_yes_says_pending_with_monos_page_and_never_sent(service: BankingService, mono: FakeMono) -> None:
    outcome, op_id = await confirmed()
    assert outcome.responses == ["utter_payment_pending"]
    assert mono.payment_page_url(op_id) in outcome.text
    assert "Nothing is paid until you approve it there" in outcome.text
    assert "Sent!" not in outcome.text and "confirmed it" not in outcome.text
    assert outcome.slot("pending_op_id") is None
    assert [p["amount"] for p in mono.payments.values()] == [1_000_000]


async def test_a_second_yes_shows_the_same_page_and_starts_nothing_new(service: BankingService,
                                                                       mono: FakeMono) -> None:
    first, op_id = await confirmed()
    again = await run(ActionConfirmPending(), reply_to_confirmation(op_id, "Yes", entities=[entity("op_ref", op_id)]))
    assert again.responses == ["utter_payment_pending"] and mono.payment_page_url(op_id) in again.text
    assert len(mono.payments) == 1


async def test_monos_confirmed_payment_is_told_once_with_its_reference(service: BankingService,
                                                                       mono: FakeMono) -> None:
    _, op_id = await confirmed()
    mono.payments[op_id]["status"] = "successful"
    told = await run(ActionPaymentUpdated(), payment_news(op_id))
    assert told.responses == ["utter_payment_done"]
    assert "✅ Your bank confirmed it: ₦10,000 from your Savings was collected into our account" in told.text
    assert f"Ref: SBX-{op_id[:16].upper()}" in told.text
    assert (await run(ActionPaymentUpdated(), payment_news(op_id))).messages == []  # a second webhook


async def test_a_webhook_mono_s_verify_contradicts_is_not_reported_as_done(service: BankingService,
                                                                          mono: FakeMono) -> None:
    _, op_id = await confirmed()
    mono.payments[op_id]["status"] = "failed"  # whatever the webhook claimed
    told = await run(ActionPaymentUpdated(), payment_news(op_id))
    assert told.responses == ["utter_payment_declined"]
    assert "did not go through" in told.text and "Nothing was paid" in told.text


async def test_a_payment_left_unapproved_is_said_so(service: BankingService, mono: FakeMono) -> None:
    _, op_id = await confirmed()
    mono.payments[op_id]["status"] = "abandoned"
    told = await run(ActionPaymentUpdated(), payment_news(op_id))
    assert told.responses == ["utter_payment_not_approved"] and "was not approved" in told.text


async def test_a_payment_still_waiting_is_left_unsaid_on_the_webhook(service: BankingService) -> None:
    _, op_id = await confirmed()
    assert (await run(ActionPaymentUpdated(), payment_news(op_id))).messages == []


async def test_asking_for_the_balance_while_pending_verifies_it_with_mono(service: BankingService,
                                                                         mono: FakeMono) -> None:
    _, op_id = await confirmed()
    waiting = await run(ActionCheckBalance(), make_tracker("my balance", "check_balance"))
    assert waiting.responses == ["utter_payment_waiting", "utter_balances"]
    assert mono.payment_page_url(op_id) in waiting.text
    mono.payments[op_id]["status"] = "successful"  # approved; Mono's webhook has not come
    done = await run(ActionCheckBalance(), make_tracker("my balance", "check_balance"))
    assert done.responses == ["utter_payment_done", "utter_balances"]


async def test_did_my_transfer_go_through_settles_it_too(service: BankingService, mono: FakeMono) -> None:
    _, op_id = await confirmed()
    mono.payments[op_id]["status"] = "successful"
    answer = await run(ActionShowReceipt(), make_tracker("did my transfer go through?", "get_receipt"))
    assert answer.responses[:2] == ["utter_payment_done", "utter_receipt"]
    assert f"SBX-{op_id[:16].upper()}" in answer.texts[1]


async def test_a_yes_after_expiry_starts_nothing(service: BankingService, mono: FakeMono, clock: Clock) -> None:
    shown = await run(ActionPrepareTransfer(), make_tracker(slots=TRANSFER_OUT))
    op_id = shown.slot("pending_op_id")
    clock.advance(seconds=service.settings.confirmation_ttl_seconds + 1)
    late = await run(ActionConfirmPending(), reply_to_confirmation(op_id, "Yes", entities=[entity("op_ref", op_id)]))
    assert late.responses == ["utter_confirmation_expired"] and not mono.payments


async def test_mono_not_answering_is_a_clear_message_and_nothing_moves(
        build: Callable[..., BankingService], mono: FakeMono, service: BankingService) -> None:
    runtime.use_service(build(timeout=httpx.Timeout(0.3)))
    mono.slow["/v2/payments/initiate"] = 1.5
    outcome, _ = await confirmed()
    assert outcome.responses == ["utter_provider_unavailable"]
    assert "isn't answering right now. Nothing was moved" in outcome.text


async def test_mono_rate_limiting_is_a_busy_message(service: BankingService, mono: FakeMono) -> None:
    mono.fail_next["/v2/payments/initiate"] = [429]
    outcome, _ = await confirmed()
    assert outcome.responses == ["utter_provider_busy"] and "Nothing was changed" in outcome.text


async def test_a_bill_is_refused_at_once_with_mono_and_the_form_ends(service: BankingService) -> None:
    """Mono moves money but has no biller look-up: one message saying bills are not paid here, then no
    question (neither the biller nor the meter number is asked for)."""
    outcome = await run(ValidateBillForm(), make_tracker("pay my dstv", "pay_bill"))
    assert outcome.responses == ["utter_refuse_bills_here"]
    assert "can't pay bills from this bank here" in outcome.text and "Transfers and airtime work" in outcome.text
    assert {"event": "active_loop", "name": None} in [{"event": e["event"], "name": e.get("name")}
                                                      for e in outcome.events]
    assert {(e["name"], e["value"]) for e in outcome.events if e["event"] == "slot"} >= {
        ("biller", None), ("customer_ref", None), ("requested_slot", None)}


async def test_a_bill_refused_by_the_reference_look_up_mid_form_ends_it(service: BankingService) -> None:
    events = [{"event": "user", "text": "1234567890"}, {"event": "slot", "name": "customer_ref", "value": "1234567890"}]
    tracker = make_tracker("1234567890", "inform", slots={"biller": "DStv", "requested_slot": "customer_ref"},
                           active_loop="bill_form", events=events)
    outcome = await run(ValidateBillForm(), tracker)
    assert outcome.responses == ["utter_refuse_bills_here"]
    assert {"event": "active_loop", "name": None} in [{"event": e["event"], "name": e.get("name")}
                                                      for e in outcome.events]


async def test_a_transfer_form_starts_as_usual_with_mono(service: BankingService) -> None:
    outcome = await run(ValidateTransferForm(), make_tracker("send 5k", "transfer_money",
                                                             [entity("amount", "5000")]))
    assert outcome.responses == [] and all(e["event"] != "active_loop" for e in outcome.events)


class Crash(BaseException):
    """The action server process dying: nothing after it runs, no handler catches it."""


def dies_after_mono_accepts(service: BankingService, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next payment is accepted by Mono, then the process dies before recording it."""
    start = service.provider.start_payment

    def accepted_then_crash(**details: Any) -> Any:
        start(**details)
        raise Crash()

    monkeypatch.setattr(service.provider, "start_payment", accepted_then_crash)


async def yes_after_a_crash(service: BankingService, mono: FakeMono, clock: Clock,
                            monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """YES, Mono accepts the payment, the action server dies; it restarts and the customer taps Yes again
    once the dead worker's claim has lapsed: Mono refuses the reference as a duplicate."""
    shown = await run(ActionPrepareTransfer(), make_tracker(slots=TRANSFER_OUT))
    op_id = shown.slot("pending_op_id")
    dies_after_mono_accepts(service, monkeypatch)
    with pytest.raises(Crash):
        await run(ActionConfirmPending(), reply_to_confirmation(op_id, "Yes", entities=[entity("op_ref", op_id)]))
    monkeypatch.undo()  # the restarted process
    clock.advance(minutes=2, seconds=5)  # past the claim's lease, within the confirmation's five minutes
    again = await run(ActionConfirmPending(), reply_to_confirmation(op_id, "Yes", entities=[entity("op_ref", op_id)]))
    return again, op_id


async def test_a_yes_after_a_crash_shows_the_payment_mono_already_holds(
        service: BankingService, mono: FakeMono, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    again, op_id = await yes_after_a_crash(service, mono, clock, monkeypatch)
    assert mono.initiations(op_id) == 2 and len(mono.payments) == 1  # the second was refused as a duplicate
    assert again.responses == ["utter_payment_waiting_at_mono"], again.texts
    assert "already started at Mono" in again.text and "Nothing has been paid yet" in again.text
    # the customer approves on Mono's page: Mono's webhook brings the verified outcome, as for any payment
    mono.payments[op_id]["status"] = "successful"
    told = await run(ActionPaymentUpdated(), payment_news(op_id))
    assert told.responses == ["utter_payment_done"] and "₦10,000" in told.text
    assert service.operation_status(runtime.customer(make_tracker()), op_id) == "executed"


async def test_a_yes_after_a_crash_says_done_when_mono_already_has_it_paid(
        service: BankingService, mono: FakeMono, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = await run(ActionPrepareTransfer(), make_tracker(slots=TRANSFER_OUT))
    op_id = shown.slot("pending_op_id")
    dies_after_mono_accepts(service, monkeypatch)
    with pytest.raises(Crash):
        await run(ActionConfirmPending(), reply_to_confirmation(op_id, "Yes", entities=[entity("op_ref", op_id)]))
    monkeypatch.undo()
    mono.payments[op_id]["status"] = "successful"  # approved on Mono's page while we were down
    clock.advance(minutes=2, seconds=5)
    again = await run(ActionConfirmPending(), reply_to_confirmation(op_id, "Yes", entities=[entity("op_ref", op_id)]))
    assert again.responses == ["utter_payment_done"] and "Your bank confirmed it" in again.text
    assert len(mono.payments) == 1


async def test_a_real_refusal_of_a_new_payment_stays_a_refusal(service: BankingService, mono: FakeMono) -> None:
    mono.fail_next["/v2/payments/initiate"] = [400]
    outcome, op_id = await confirmed()
    assert outcome.responses == ["utter_provider_unavailable"] and op_id not in mono.payments
    assert service.operation_status(runtime.customer(make_tracker()), op_id) == "refused"
