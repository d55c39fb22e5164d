"""A DirectPay payment Mono reports paid after we had settled it otherwise: recorded as not paid
(a first verdict of failed or abandoned, then the customer came back to Mono's page), or still
waiting at Mono when the customer froze their accounts or disconnected the bank. The money has
moved: it is recorded once (today's spending takes it), audited, and the customer is told the
truth once. Real HTTP to the fake Mono on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actions import runtime
from actions.accounts import ActionCheckBalance
from actions.payments import (
    ActionConfirmPending,
    ActionPaymentUpdated,
    ActionPrepareDisconnect,
    ActionPrepareFreeze,
    ActionPrepareTransfer,
)
from banking.service import BankingService
from checks.action_runner import DOMAIN, entity, make_tracker, reply_to_confirmation, run
from checks.clock import Clock
from sandbox.fake_mono import FakeMono
from tests.provider_customers import mono_services

TRANSFER_OUT = {"amount": "10000", "source_account": "savings", "destination_account": "0123456780",
                "bank": "Zenith Bank"}


@pytest.fixture
def service(db: Any, clock: Clock, mono: FakeMono,
            mono_customer: Callable[[BankingService], BankingService]) -> Iterator[BankingService]:
    with mono_services(db, clock, mono, "paid-after") as build:
        yield mono_customer(build())


@pytest.fixture
def user() -> str:
    return runtime.customer(make_tracker())


async def at_mono() -> str:
    """A ₦10,000 transfer confirmed with YES: waiting for the customer's approval on Mono's page."""
    shown = await run(ActionPrepareTransfer(), make_tracker(slots=TRANSFER_OUT))
    op_id = shown.slot("pending_op_id")
    yes = reply_to_confirmation(op_id, "Yes", entities=[entity("op_ref", op_id)])
    assert (await run(ActionConfirmPending(), yes)).responses == ["utter_payment_pending"]
    return op_id


def payment_news(op_id: str) -> Any:
    return make_tracker(intent="EXTERNAL_payment_updated", entities=[entity("payment_ref", op_id)])


def outcomes(db: Any, op_id: str) -> list[tuple[str, Any]]:
    return [(r["outcome"], r.get("reason")) for r in db["audit"].find({"op_id": op_id}, sort=[("seq", 1)])]


@pytest.mark.parametrize("first", ["failed", "abandoned"])
async def test_a_payment_recorded_unpaid_then_paid_at_mono_is_executed_and_told_once(
        service: BankingService, mono: FakeMono, db: Any, user: str, first: str) -> None:
    op_id = await at_mono()
    mono.payments[op_id]["status"] = first
    told = await run(ActionPaymentUpdated(), payment_news(op_id))
    assert told.responses in (["utter_payment_declined"], ["utter_payment_not_approved"])
    assert service.get_limit(user).spent_today_kobo == 0  # the reservation went back

    mono.payments[op_id]["status"] = "successful"  # the customer came back to Mono's page and approved it
    told = await run(ActionPaymentUpdated(), payment_news(op_id))
    assert told.responses == ["utter_payment_paid_after_all"]
    assert "Correction" in told.text and "paid after all" in told.text and "₦10,000" in told.text
    assert f"Ref: SBX-{op_id[:16].upper()}" in told.text
    assert service.operation_status(user, op_id) == "executed"
    assert service.executed_receipt(user, op_id) is not None
    assert service.get_limit(user).spent_today_kobo == 1_000_000  # today's limit takes it again
    assert ("executed", "paid_after_not_paid") in outcomes(db, op_id)

    assert (await run(ActionPaymentUpdated(), payment_news(op_id))).messages == []  # a second webhook
    balance = await run(ActionCheckBalance(), make_tracker("my balance", "check_balance"))
    assert balance.responses == ["utter_balances"]  # told once, not again on the next look
    assert service.get_limit(user).spent_today_kobo == 1_000_000
    assert [o for o in outcomes(db, op_id) if o[0] == "executed"] == [("executed", "paid_after_not_paid")]


async def test_a_customer_s_question_finds_a_late_payment_too(service: BankingService, mono: FakeMono,
                                                              user: str) -> None:
    op_id = await at_mono()
    mono.payments[op_id]["status"] = "abandoned"
    await run(ActionPaymentUpdated(), payment_news(op_id))
    mono.payments[op_id]["status"] = "successful"  # Mono's webhook for it never came
    answer = await run(ActionCheckBalance(), make_tracker("my balance", "check_balance"))
    assert answer.responses == ["utter_payment_paid_after_all", "utter_balances"]
    assert service.operation_status(user, op_id) == "executed"


async def test_a_payment_still_unpaid_at_mono_stays_failed(service: BankingService, mono: FakeMono,
                                                           user: str) -> None:
    op_id = await at_mono()
    mono.payments[op_id]["status"] = "failed"
    await run(ActionPaymentUpdated(), payment_news(op_id))
    again = await run(ActionPaymentUpdated(), payment_news(op_id))
    assert again.messages == [] and service.operation_status(user, op_id) == "failed"
    assert service.get_limit(user).spent_today_kobo == 0


async def test_a_late_payment_is_no_longer_asked_about_after_the_window(
        service: BankingService, mono: FakeMono, clock: Clock, user: str) -> None:
    from banking.confirmations import LATE_PAYMENT_WINDOW

    op_id = await at_mono()
    mono.payments[op_id]["status"] = "failed"
    await run(ActionPaymentUpdated(), payment_news(op_id))
    clock.advance(seconds=LATE_PAYMENT_WINDOW.total_seconds() + 60)
    mono.payments[op_id]["status"] = "successful"
    answer = await run(ActionCheckBalance(), make_tracker("my balance", "check_balance"))
    assert answer.responses == ["utter_balances"] and service.operation_status(user, op_id) == "failed"


async def stop_with(action: Any, intent: str) -> Any:
    """A freeze or a disconnect, confirmed with YES: what the customer reads after it."""
    shown = await run(action, make_tracker(intent.replace("_", " "), intent))
    op_id = shown.slot("pending_op_id")
    return await run(ActionConfirmPending(), reply_to_confirmation(op_id, "Yes", entities=[entity("op_ref", op_id)]))


@pytest.mark.parametrize(("action", "intent", "done", "paid"), [
    (ActionPrepareFreeze(), "freeze_account", "utter_frozen_done", "utter_payment_paid_after_freeze"),
    (ActionPrepareDisconnect(), "disconnect_bank", "utter_disconnected", "utter_payment_paid_after_disconnect"),
])
async def test_a_payment_waiting_at_mono_is_flagged_on_a_stop_and_told_if_paid_afterwards(
        service: BankingService, mono: FakeMono, db: Any, user: str, action: Any, intent: str, done: str,
        paid: str) -> None:
    op_id = await at_mono()
    stopped = await stop_with(action, intent)
    assert stopped.responses[:2] == [done, "utter_payment_still_waiting_at_mono"]
    warning = stopped.texts[1]
    assert "still waiting on Mono's page" in warning and "₦10,000" in warning
    assert "If it wasn't you, don't approve it there" in warning
    kind = intent.split("_")[0]
    assert ("flagged", kind) in outcomes(db, op_id)

    mono.payments[op_id]["status"] = "successful"  # approved on Mono's page after the stop
    told = await run(ActionPaymentUpdated(), payment_news(op_id))
    assert told.responses == [paid]
    assert "AFTER you" in told.text and "₦10,000" in told.text and "Ref: SBX-" in told.text
    assert ("executed", f"paid_after_{kind}") in outcomes(db, op_id)
    assert service.operation_status(user, op_id) == "executed"
    assert (await run(ActionPaymentUpdated(), payment_news(op_id))).messages == []  # told once


async def test_a_freeze_with_nothing_waiting_says_only_that_it_is_frozen(service: BankingService) -> None:
    stopped = await stop_with(ActionPrepareFreeze(), "freeze_account")
    assert "utter_payment_still_waiting_at_mono" not in stopped.responses
    assert stopped.responses[0] == "utter_frozen_done"


def test_the_stop_warnings_exist_in_english_and_pidgin() -> None:
    for name in ("utter_payment_still_waiting_at_mono", "utter_payment_paid_after_freeze",
                 "utter_payment_paid_after_disconnect", "utter_payment_paid_after_all"):
        variants = DOMAIN["responses"][name]
        assert [v.get("condition") is not None for v in variants] == [True, False], name
