"""Money movement through the actions: confirmation, YES, NO, expiry, refusals,
double taps. Every message is rendered from domain.yml, as the customer reads it."""

from __future__ import annotations

import asyncio

from actions.payments import (
    ActionCancelFlow,
    ActionCancelPending,
    ActionConfirmPending,
    ActionPrepareAirtime,
    ActionPrepareBillPayment,
    ActionPrepareDisconnect,
    ActionPrepareFreeze,
    ActionPrepareTransfer,
    ActionPrepareUnfreeze,
    ActionSetLimit,
)
from tests.shared_fakes import DOMAIN, entity, make_tracker, run

TRANSFER_OUT = {"amount": "10000", "source_account": "checking", "destination_account": "0123456789", "bank": "GTBank"}
TO_SAVINGS = {"amount": "5000", "source_account": "checking", "destination_account": "savings"}


def balance(service, user, account="checking"):
    return next(a.balance_kobo for a in service.balances(user) if a.type == account)


async def prepared(slots):
    outcome = await run(ActionPrepareTransfer(), make_tracker(slots=slots))
    return outcome, outcome.slot("pending_op_id")


async def test_transfer_confirmation_names_amount_source_holder_and_expiry(connected, service):
    outcome, op_id = await prepared(TRANSFER_OUT)

    assert outcome.responses == ["utter_confirm_transfer"]
    holder = service.name_enquiry("0123456789", "GTBank")
    assert "Send *₦10,000* from your *Checking*" in outcome.text
    assert holder in outcome.text and "GTBank" in outcome.text and "******6789" in outcome.text
    assert "expires at 10:35 (5 min)" in outcome.text  # 09:30 UTC + 5 min, in Lagos time
    for variant in DOMAIN["responses"]["utter_confirm_transfer"]:
        assert [b["payload"] for b in variant["buttons"]] == ["/affirm", "/deny"]
    assert op_id
    assert balance(service, connected) == 4_532_050, "nothing moves before YES"
    # the form's slots are cleared so the next flow starts clean
    assert outcome.slot("amount") is None and outcome.slot("destination_account") is None


async def test_yes_executes_once_and_a_second_yes_says_already_done(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)
    yes = make_tracker("yes", "affirm", slots={"pending_op_id": op_id})

    first = await run(ActionConfirmPending(), yes)
    second = await run(ActionConfirmPending(), yes)

    assert first.responses == ["utter_transfer_done"]
    assert "₦10,000" in first.text and "Checking balance: ₦35,320.50" in first.text
    assert second.responses == ["utter_already_done"]
    assert balance(service, connected) == 3_532_050


async def test_concurrent_yes_taps_move_money_once(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)
    yes = make_tracker("yes", "affirm", slots={"pending_op_id": op_id})

    outcomes = await asyncio.gather(*(run(ActionConfirmPending(), yes) for _ in range(12)))

    responses = sorted(o.responses[0] for o in outcomes)
    assert responses.count("utter_transfer_done") == 1
    assert set(responses) - {"utter_transfer_done"} <= {"utter_already_done", "utter_already_handled"}
    assert balance(service, connected) == 3_532_050


async def test_own_account_transfer_moves_between_accounts(connected, service):
    _, op_id = await prepared(TO_SAVINGS)
    done = await run(ActionConfirmPending(), make_tracker("yes", "affirm", slots={"pending_op_id": op_id}))

    assert done.responses == ["utter_transfer_done"]
    assert balance(service, connected, "checking") == 4_532_050 - 500_000
    assert balance(service, connected, "savings") == 12_545_000 + 500_000


async def test_no_cancels_and_a_later_yes_finds_nothing_pending(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)

    no = await run(ActionCancelPending(), make_tracker("no", "deny", slots={"pending_op_id": op_id}))
    late_yes = await run(ActionConfirmPending(), make_tracker("yes", "affirm", slots={"pending_op_id": op_id}))

    assert no.responses == ["utter_cancelled"] and no.slot("pending_op_id") is None
    assert late_yes.responses == ["utter_nothing_pending"]
    assert balance(service, connected) == 4_532_050


async def test_yes_with_nothing_pending_says_so(connected):
    outcome = await run(ActionConfirmPending(), make_tracker("yes", "affirm"))
    assert outcome.responses == ["utter_nothing_pending"]


async def test_no_with_nothing_pending_says_so(connected):
    outcome = await run(ActionCancelPending(), make_tracker("no", "deny"))
    assert outcome.responses == ["utter_nothing_to_cancel"]


async def test_expired_confirmation_moves_nothing(connected, service, clock):
    _, op_id = await prepared(TRANSFER_OUT)
    clock.advance(seconds=service.settings.confirmation_ttl_seconds + 1)

    outcome = await run(ActionConfirmPending(), make_tracker("yes", "affirm", slots={"pending_op_id": op_id}))

    assert outcome.responses == ["utter_confirmation_expired"]
    assert balance(service, connected) == 4_532_050


async def test_insufficient_funds_is_refused_with_the_balance(connected, service):
    outcome, _ = await prepared({**TRANSFER_OUT, "amount": "50000"})
    assert outcome.responses == ["utter_refuse_insufficient_funds"]
    assert "Checking has ₦45,320.50, and this needs ₦50,000" in outcome.text
    assert outcome.slot("pending_op_id") is None


async def test_over_the_daily_limit_is_refused_with_what_is_left(connected, service):
    outcome, _ = await prepared({**TRANSFER_OUT, "source_account": "savings", "amount": "100000"})
    assert outcome.responses == ["utter_confirm_transfer"]  # within ₦500,000
    limit = await run(ActionSetLimit(), make_tracker("set my limit to 50k", "set_limit", [entity("amount", "50000")]))
    await run(
        ActionConfirmPending(), make_tracker("yes", "affirm", slots={"pending_op_id": limit.slot("pending_op_id")})
    )

    refused, _ = await prepared({**TRANSFER_OUT, "source_account": "savings", "amount": "60000"})
    assert refused.responses == ["utter_refuse_limit_exceeded"]
    assert "daily transfer limit of ₦50,000" in refused.text and "₦50,000 left today" in refused.text


async def test_freeze_after_confirmation_shown_blocks_the_yes(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)
    freeze = await run(ActionPrepareFreeze(), make_tracker("i lost my phone", "freeze_account"))
    assert freeze.responses == ["utter_confirm_freeze"]
    frozen = await run(
        ActionConfirmPending(), make_tracker("yes", "affirm", slots={"pending_op_id": freeze.slot("pending_op_id")})
    )
    assert frozen.responses == ["utter_frozen_done"] and "+234 1 700 0000" in frozen.text

    late = await run(ActionConfirmPending(), make_tracker("yes", "affirm", slots={"pending_op_id": op_id}))

    assert late.responses == ["utter_refuse_frozen"]
    assert balance(service, connected) == 4_532_050


async def test_unfreeze_lets_money_move_again(connected, service):
    freeze = await run(ActionPrepareFreeze(), make_tracker("block everything", "freeze_account"))
    await run(
        ActionConfirmPending(), make_tracker("yes", "affirm", slots={"pending_op_id": freeze.slot("pending_op_id")})
    )
    refused, _ = await prepared(TRANSFER_OUT)
    assert refused.responses == ["utter_refuse_frozen"]

    unfreeze = await run(ActionPrepareUnfreeze(), make_tracker("unfreeze", "unfreeze_account"))
    done = await run(
        ActionConfirmPending(), make_tracker("yes", "affirm", slots={"pending_op_id": unfreeze.slot("pending_op_id")})
    )

    assert unfreeze.responses == ["utter_confirm_unfreeze"] and done.responses == ["utter_unfrozen_done"]
    again, _ = await prepared(TRANSFER_OUT)
    assert again.responses == ["utter_confirm_transfer"]


async def test_not_connected_customer_is_told_to_connect(service):
    outcome, _ = await prepared(TRANSFER_OUT)
    assert outcome.responses == ["utter_not_connected"]
    assert outcome.messages[0]["response"] == "utter_not_connected"


async def test_bill_payment_confirm_and_pay(connected, service):
    slots = {"biller": "Ikeja Electric", "customer_ref": "45012345678", "amount": "5000", "source_account": "checking"}
    outcome = await run(ActionPrepareBillPayment(), make_tracker(slots=slots))
    assert outcome.responses == ["utter_confirm_bill"]
    assert "Pay *₦5,000* to *Ikeja Electric" in outcome.text

    paid = await run(
        ActionConfirmPending(), make_tracker("yes", "affirm", slots={"pending_op_id": outcome.slot("pending_op_id")})
    )

    assert paid.responses == ["utter_bill_paid"]
    assert balance(service, connected) == 4_532_050 - 500_000


async def test_airtime_confirm_and_buy(connected, service):
    slots = {"network": "MTN", "phone_number": "08031234567", "amount": "1000", "source_account": "savings"}
    outcome = await run(ActionPrepareAirtime(), make_tracker(slots=slots))
    assert outcome.responses == ["utter_confirm_airtime"]
    assert "Buy *₦1,000* airtime" in outcome.text and "from your *Savings*" in outcome.text

    bought = await run(
        ActionConfirmPending(), make_tracker("yes", "affirm", slots={"pending_op_id": outcome.slot("pending_op_id")})
    )

    assert bought.responses == ["utter_airtime_done"]
    assert balance(service, connected, "savings") == 12_545_000 - 100_000


async def test_incomplete_form_prepares_nothing_and_says_nothing(connected, service):
    outcome = await run(ActionPrepareTransfer(), make_tracker(slots={"amount": "10000"}))
    assert outcome.messages == []
    assert service.latest_pending(connected) is None


async def test_disconnect_needs_yes_and_revokes(connected, service):
    outcome = await run(ActionPrepareDisconnect(), make_tracker("disconnect my bank", "disconnect_bank"))
    assert outcome.responses == ["utter_confirm_disconnect"] and "GTBank" in outcome.text
    assert service.is_connected(connected)

    done = await run(
        ActionConfirmPending(), make_tracker("yes", "affirm", slots={"pending_op_id": outcome.slot("pending_op_id")})
    )

    assert done.responses == ["utter_disconnected"]
    assert not service.is_connected(connected)


async def test_limit_is_shown_without_an_amount(connected):
    outcome = await run(ActionSetLimit(), make_tracker("what is my limit", "set_limit"))
    assert outcome.responses == ["utter_limit_status"]
    assert "limit is ₦500,000" in outcome.text and "₦500,000 is left" in outcome.text


async def test_an_absurd_limit_is_refused(connected):
    outcome = await run(ActionSetLimit(), make_tracker("set limit to 10m", "set_limit", [entity("amount", "10000000")]))
    assert outcome.responses == ["utter_invalid_limit"]
    assert "₦5,000,000" in outcome.text


async def test_cancel_mid_form_stops_it_and_clears_slots(connected):
    outcome = await run(
        ActionCancelFlow(), make_tracker("cancel", "cancel", slots=TO_SAVINGS, active_loop="transfer_form")
    )
    assert outcome.responses == ["utter_cancelled"]
    assert {"event": "active_loop", "name": None} in [
        {k: e.get(k) for k in ("event", "name")} for e in outcome.events if e["event"] == "active_loop"
    ]
    assert outcome.slot("amount") is None


async def test_an_unsure_yes_moves_nothing_and_asks_again(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)
    hmm = make_tracker("hmm", "affirm", slots={"pending_op_id": op_id})
    hmm.latest_message["intent"]["confidence"] = 0.74

    unsure = await run(ActionConfirmPending(), hmm)
    sure = await run(ActionConfirmPending(), make_tracker("yes", "affirm", slots={"pending_op_id": op_id}))

    assert unsure.responses == ["utter_confirm_explicitly"]
    assert sure.responses == ["utter_transfer_done"]
    assert balance(service, connected) == 3_532_050


def voice_yes(op_id: str, *, low_confidence: bool):
    """"yes" as the channel hands over a transcribed voice note."""
    metadata = {"whatsapp": {"type": "audio", "transcribed": True, "low_confidence": low_confidence}}
    events = [{"event": "user", "text": "yes", "metadata": metadata}]
    return make_tracker("yes", "affirm", slots={"pending_op_id": op_id}, events=events)


async def test_a_yes_heard_unclearly_in_a_voice_note_moves_nothing(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)
    before = balance(service, connected)

    unsure = await run(ActionConfirmPending(), voice_yes(op_id, low_confidence=True))
    assert unsure.responses == ["utter_confirm_by_tapping"]
    assert balance(service, connected) == before

    tapped = await run(ActionConfirmPending(), make_tracker("/affirm", "affirm", slots={"pending_op_id": op_id}))
    assert tapped.responses == ["utter_transfer_done"]
    assert balance(service, connected) == 3_532_050


async def test_a_clearly_heard_voice_yes_counts_like_a_typed_one(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)
    clear = await run(ActionConfirmPending(), voice_yes(op_id, low_confidence=False))
    assert clear.responses == ["utter_transfer_done"]
    assert balance(service, connected) == 3_532_050


async def test_an_unknown_outcome_is_not_reported_as_nothing_moved(connected, service, monkeypatch):
    from banking import errors

    _, op_id = await prepared(TRANSFER_OUT)

    def unreachable(user, op):
        raise errors.OutcomeUnknown("the database did not answer")

    monkeypatch.setattr(service, "confirm", unreachable)
    outcome = await run(ActionConfirmPending(), make_tracker("yes", "affirm", slots={"pending_op_id": op_id}))

    assert outcome.responses == ["utter_outcome_unknown"]
    assert "Nothing was moved" not in outcome.text and "check your balance" in outcome.text
