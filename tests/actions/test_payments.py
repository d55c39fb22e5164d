"""Money movement through the actions: confirmation, YES, NO, expiry, refusals,
double taps. Every message is rendered from domain.yml, as the customer reads it."""

from __future__ import annotations

import asyncio

import pytest
from rasa.core.nlg.interpolator import interpolate_text

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
from checks.action_runner import DOMAIN, entity, make_tracker, reply_to_confirmation, run

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
    assert outcome.messages[0]["op_ref"] == op_id
    for variant in DOMAIN["responses"]["utter_confirm_transfer"]:  # as Rasa fills the template in
        payloads = [interpolate_text(b["payload"], {"op_ref": op_id}) for b in variant["buttons"]]
        assert payloads == [f'/affirm{{"op_ref":"{op_id}"}}', f'/deny{{"op_ref":"{op_id}"}}']
    assert op_id
    assert balance(service, connected) == 4_532_050, "nothing moves before YES"
    # the form's slots are cleared so the next flow starts clean
    assert outcome.slot("amount") is None and outcome.slot("destination_account") is None


async def test_yes_executes_once_and_a_second_yes_says_already_done(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)
    yes = reply_to_confirmation(op_id)

    first = await run(ActionConfirmPending(), yes)
    second = await run(ActionConfirmPending(), yes)

    assert first.responses == ["utter_transfer_done", "utter_ask_feedback"]
    assert "₦10,000" in first.text and "Checking balance: ₦35,320.50" in first.text
    assert second.responses == ["utter_already_done"]
    assert balance(service, connected) == 3_532_050


async def test_concurrent_yes_taps_move_money_once(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)
    yes = reply_to_confirmation(op_id)

    outcomes = await asyncio.gather(*(run(ActionConfirmPending(), yes) for _ in range(12)))

    responses = sorted(o.responses[0] for o in outcomes)
    assert responses.count("utter_transfer_done") == 1
    assert set(responses) - {"utter_transfer_done"} <= {"utter_already_done", "utter_already_handled"}
    assert balance(service, connected) == 3_532_050


async def test_own_account_transfer_moves_between_accounts(connected, service):
    _, op_id = await prepared(TO_SAVINGS)
    done = await run(ActionConfirmPending(), reply_to_confirmation(op_id))

    assert done.responses == ["utter_transfer_done", "utter_ask_feedback"]
    assert balance(service, connected, "checking") == 4_532_050 - 500_000
    assert balance(service, connected, "savings") == 12_545_000 + 500_000


async def test_no_cancels_and_a_later_yes_finds_nothing_pending(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)

    no = await run(ActionCancelPending(), reply_to_confirmation(op_id, "no", "deny"))
    late_yes = await run(ActionConfirmPending(), reply_to_confirmation(op_id))

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

    outcome = await run(ActionConfirmPending(), reply_to_confirmation(op_id))

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
        ActionConfirmPending(), reply_to_confirmation(limit.slot("pending_op_id"))
    )

    refused, _ = await prepared({**TRANSFER_OUT, "source_account": "savings", "amount": "60000"})
    assert refused.responses == ["utter_refuse_limit_exceeded"]
    assert "daily transfer limit of ₦50,000" in refused.text and "₦50,000 left today" in refused.text


async def test_freeze_after_confirmation_shown_blocks_the_yes(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)
    freeze = await run(ActionPrepareFreeze(), make_tracker("i lost my phone", "freeze_account"))
    assert freeze.responses == ["utter_confirm_freeze"]
    frozen = await run(
        ActionConfirmPending(), reply_to_confirmation(freeze.slot("pending_op_id"))
    )
    assert frozen.responses == ["utter_frozen_done"] and "+234 1 700 0000" in frozen.text

    late = await run(ActionConfirmPending(), reply_to_confirmation(op_id))

    assert late.responses == ["utter_confirmation_not_open"]  # the freeze replaced it
    assert balance(service, connected) == 4_532_050
    assert service.operation_status(connected, op_id) == "superseded"


async def test_unfreeze_lets_money_move_again(connected, service, clock):
    freeze = await run(ActionPrepareFreeze(), make_tracker("block everything", "freeze_account"))
    await run(
        ActionConfirmPending(), reply_to_confirmation(freeze.slot("pending_op_id"))
    )
    refused, _ = await prepared(TRANSFER_OUT)
    assert refused.responses == ["utter_refuse_frozen"]

    unfreeze = await run(ActionPrepareUnfreeze(), make_tracker("unfreeze", "unfreeze_account"))
    done = await run(
        ActionConfirmPending(), reply_to_confirmation(unfreeze.slot("pending_op_id"))
    )

    assert unfreeze.responses == ["utter_confirm_unfreeze"] and "24 hours after your YES" in unfreeze.text
    assert done.responses == ["utter_unfreeze_scheduled"]
    assert "unfreeze at 10:30 on Sun 16 Mar" in done.text  # 09:30 UTC + 24 h, in Lagos time
    still, _ = await prepared(TRANSFER_OUT)
    assert still.responses == ["utter_refuse_frozen"], "a thief's YES does not unfreeze at once"

    clock.advance(hours=24)
    again, _ = await prepared(TRANSFER_OUT)
    assert again.responses == ["utter_confirm_transfer"]


async def test_cancel_stops_a_scheduled_unfreeze(connected, service, clock):
    freeze = await run(ActionPrepareFreeze(), make_tracker("block everything", "freeze_account"))
    await run(ActionConfirmPending(), reply_to_confirmation(freeze.slot("pending_op_id")))
    unfreeze = await run(ActionPrepareUnfreeze(), make_tracker("unfreeze", "unfreeze_account"))
    await run(ActionConfirmPending(), reply_to_confirmation(unfreeze.slot("pending_op_id")))

    cancelled = await run(ActionCancelPending(), make_tracker("cancel", "cancel"))

    assert cancelled.responses == ["utter_unfreeze_cancelled"]
    clock.advance(hours=25)
    refused, _ = await prepared(TRANSFER_OUT)
    assert refused.responses == ["utter_refuse_frozen"]


async def test_a_raise_waits_and_says_when(connected, service):
    raised = await run(ActionSetLimit(), make_tracker("set my limit to 1m", "set_limit", [entity("amount", "1000000")]))
    assert raised.responses == ["utter_confirm_raise_limit"] and "24 hours after your YES" in raised.text
    done = await run(ActionConfirmPending(), reply_to_confirmation(raised.slot("pending_op_id")))
    assert done.responses == ["utter_limit_raise_scheduled"] and "₦1,000,000" in done.text

    status = await run(ActionSetLimit(), make_tracker("what is my limit", "set_limit"))

    assert status.responses == ["utter_limit_status", "utter_limit_raise_scheduled"]
    assert "₦500,000" in status.texts[0]


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
        ActionConfirmPending(), reply_to_confirmation(outcome.slot("pending_op_id"))
    )

    assert paid.responses == ["utter_bill_paid", "utter_ask_feedback"]
    assert balance(service, connected) == 4_532_050 - 500_000


async def test_airtime_confirm_and_buy(connected, service):
    slots = {"network": "MTN", "phone_number": "08031234567", "amount": "1000", "source_account": "savings"}
    outcome = await run(ActionPrepareAirtime(), make_tracker(slots=slots))
    assert outcome.responses == ["utter_confirm_airtime"]
    assert "Buy *₦1,000* airtime" in outcome.text and "from your *Savings*" in outcome.text

    bought = await run(
        ActionConfirmPending(), reply_to_confirmation(outcome.slot("pending_op_id"))
    )

    assert bought.responses == ["utter_airtime_done", "utter_ask_feedback"]
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
        ActionConfirmPending(), reply_to_confirmation(outcome.slot("pending_op_id"))
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
    hmm = reply_to_confirmation(op_id, "hmm")
    hmm.latest_message["intent"]["confidence"] = 0.74

    unsure = await run(ActionConfirmPending(), hmm)
    sure = await run(ActionConfirmPending(), reply_to_confirmation(op_id))

    assert unsure.responses == ["utter_confirm_explicitly"]
    assert sure.responses == ["utter_transfer_done", "utter_ask_feedback"]
    assert balance(service, connected) == 3_532_050


@pytest.mark.parametrize("symbols", ["❌", "🛑", "🤔", "!!", "...", "👌"])
async def test_an_emoji_or_punctuation_alone_is_no_yes_however_sure_the_model(connected, service, symbols):
    _, op_id = await prepared(TRANSFER_OUT)
    sure_symbols = reply_to_confirmation(op_id, symbols)
    sure_symbols.latest_message["intent"]["confidence"] = 0.99

    outcome = await run(ActionConfirmPending(), sure_symbols)

    assert outcome.responses == ["utter_confirm_explicitly"]
    assert balance(service, connected) == 4_532_050  # nothing moved; the confirmation stays open


def voice_yes(op_id: str, *, low_confidence: bool):
    """"yes" as the channel hands over a transcribed voice note."""
    metadata = {"whatsapp": {"type": "audio", "transcribed": True, "low_confidence": low_confidence}}
    tracker = reply_to_confirmation(op_id)
    tracker.events[-1]["metadata"] = metadata
    return tracker


async def test_a_yes_heard_unclearly_in_a_voice_note_moves_nothing(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)
    before = balance(service, connected)

    unsure = await run(ActionConfirmPending(), voice_yes(op_id, low_confidence=True))
    assert unsure.responses == ["utter_confirm_by_tapping"]
    assert balance(service, connected) == before

    tapped = await run(ActionConfirmPending(), reply_to_confirmation(op_id, "/affirm"))
    assert tapped.responses == ["utter_transfer_done", "utter_ask_feedback"]
    assert balance(service, connected) == 3_532_050


async def test_a_clearly_heard_voice_yes_counts_like_a_typed_one(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)
    clear = await run(ActionConfirmPending(), voice_yes(op_id, low_confidence=False))
    assert clear.responses == ["utter_transfer_done", "utter_ask_feedback"]
    assert balance(service, connected) == 3_532_050


async def test_an_unknown_outcome_is_not_reported_as_nothing_moved(connected, service, monkeypatch):
    from banking import errors

    _, op_id = await prepared(TRANSFER_OUT)

    def unreachable(user, op):
        raise errors.OutcomeUnknown("the database did not answer")

    monkeypatch.setattr(service, "confirm", unreachable)
    outcome = await run(ActionConfirmPending(), reply_to_confirmation(op_id))

    assert outcome.responses == ["utter_outcome_unknown"]
    assert "Nothing was moved" not in outcome.text and "check your balance" in outcome.text


# ------------------------------------------------------------------ a YES answers one confirmation


def tap(op_id, answer="affirm", **kwargs):
    """A tap on the Yes (or No) button of the confirmation of ``op_id``: its payload names the op."""
    text = f'/{answer}{{"op_ref":"{op_id}"}}'
    return reply_to_confirmation(kwargs.pop("open_op", op_id), text, answer, [entity("op_ref", op_id)], **kwargs)


async def test_yes_on_an_older_confirmation_moves_nothing_and_shows_the_open_one(connected, service):
    _, older = await prepared(TRANSFER_OUT)  # ₦10,000
    newer_outcome, newer = await prepared({**TRANSFER_OUT, "amount": "5000"})

    stale = await run(ActionConfirmPending(), tap(older, open_op=newer))

    assert stale.responses == ["utter_yes_for_another_confirmation", "utter_confirm_transfer"]
    assert "₦5,000" in stale.texts[1] and stale.slot("pending_op_id") == newer
    assert balance(service, connected) == 4_532_050
    done = await run(ActionConfirmPending(), tap(newer))
    assert done.responses == ["utter_transfer_done", "utter_ask_feedback"]
    assert balance(service, connected) == 4_532_050 - 500_000, "exactly the amount the customer saw"


async def test_a_yes_after_the_conversation_moved_on_closes_the_confirmation(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)

    late = await run(ActionConfirmPending(), reply_to_confirmation(
        op_id, turns_between=(("thanks", "thank_you"),)))  # "Anything else?" -> "yes"

    assert late.responses == ["utter_confirmation_closed"] and late.slot("pending_op_id") is None
    assert service.operation_status(connected, op_id) == "cancelled"
    assert balance(service, connected) == 4_532_050
    tapped_later = await run(ActionConfirmPending(), tap(op_id, turns_between=(("balance", "check_balance"),)))
    assert tapped_later.responses == ["utter_confirmation_not_open"]
    assert balance(service, connected) == 4_532_050


async def test_the_yes_button_after_another_turn_moves_nothing(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)

    outcome = await run(ActionConfirmPending(), tap(op_id, turns_between=(("what's my balance", "check_balance"),)))

    assert outcome.responses == ["utter_confirmation_closed"]
    assert balance(service, connected) == 4_532_050


async def test_an_unsure_yes_keeps_the_confirmation_open_for_a_clear_one(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)
    hmm = reply_to_confirmation(op_id, "hmm")
    hmm.latest_message["intent"]["confidence"] = 0.74

    unsure = await run(ActionConfirmPending(), hmm)

    assert unsure.responses == ["utter_confirm_explicitly"]
    assert {"event": "slot", "name": "pending_op_id", "value": op_id} in [
        {k: e.get(k) for k in ("event", "name", "value")} for e in unsure.events]


async def test_no_on_an_older_confirmation_leaves_the_open_one(connected, service):
    _, older = await prepared(TRANSFER_OUT)
    _, newer = await prepared({**TRANSFER_OUT, "amount": "5000"})

    outcome = await run(ActionCancelPending(), tap(older, "deny", open_op=newer))

    assert outcome.responses == ["utter_confirmation_not_open"]
    assert service.operation_status(connected, newer) == "pending"


async def test_a_replayed_yes_still_gets_already_done(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)
    await run(ActionConfirmPending(), tap(op_id))

    replayed = await run(ActionConfirmPending(), tap(op_id, turns_between=(("/affirm", "affirm"),)))

    assert replayed.responses == ["utter_already_done"]
    assert balance(service, connected) == 4_532_050 - 1_000_000


async def test_a_yes_naming_no_known_confirmation_moves_nothing_and_says_so(connected, service):
    _, op_id = await prepared(TRANSFER_OUT)

    forged = await run(ActionConfirmPending(), tap("garbage", open_op=op_id))

    assert forged.responses == ["utter_yes_not_recognised", "utter_confirm_transfer"]
    assert balance(service, connected) == 4_532_050
