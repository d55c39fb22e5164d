"""Form validation: what each answer fills, what it refuses, and the checks that stop
a money form before its first question."""

from __future__ import annotations

from rasa_sdk.executor import CollectingDispatcher

from actions.forms import (
    ValidateAirtimeForm,
    ValidateBillForm,
    ValidateConnectBankForm,
    ValidateTransferForm,
)
from actions.runtime import customer
from checks.action_runner import DOMAIN, entity, make_tracker, run


def sent(dispatcher: CollectingDispatcher) -> list[str]:
    return [m["response"] for m in dispatcher.messages]


async def test_both_accounts_in_one_sentence_fill_source_and_destination(connected):
    text = "move 5k from savings to current"
    tracker = make_tracker(
        text,
        "transfer_money",
        [entity("account_type", "savings", text), entity("account_type", "checking", text, surface="current")],
    )
    form, dispatcher = ValidateTransferForm(), CollectingDispatcher()

    source = await form.extract_source_account(dispatcher, tracker, DOMAIN)
    destination = await form.extract_destination_account(dispatcher, tracker, DOMAIN)

    assert source == {"source_account": "savings"}
    assert destination == {"destination_account": "checking"}


async def test_an_account_number_is_the_destination_and_needs_a_bank(connected):
    text = "send 10k to 0123456789"
    tracker = make_tracker(text, "transfer_money", [entity("account_number", "0123456789", text)])
    form = ValidateTransferForm()

    extracted = await form.extract_destination_account(CollectingDispatcher(), tracker, DOMAIN)
    slots = ["amount", "source_account", "destination_account", "bank"]
    own = make_tracker(slots={"destination_account": "savings"})
    other = make_tracker(slots={"destination_account": "0123456789"})

    assert extracted == {"destination_account": "0123456789"}
    assert await form.required_slots(slots, CollectingDispatcher(), other, DOMAIN) == slots
    assert "bank" not in await form.required_slots(slots, CollectingDispatcher(), own, DOMAIN)


async def test_sending_to_my_savings_takes_it_from_checking(connected):
    dispatcher = CollectingDispatcher()
    result = await ValidateTransferForm().validate_destination_account("savings", dispatcher, make_tracker(), DOMAIN)
    assert result == {"destination_account": "savings", "source_account": "checking"}


async def test_same_source_and_destination_is_refused(connected):
    dispatcher = CollectingDispatcher()
    result = await ValidateTransferForm().validate_destination_account(
        "savings", dispatcher, make_tracker(slots={"source_account": "savings"}), DOMAIN
    )
    assert result == {"destination_account": None}
    assert sent(dispatcher) == ["utter_same_account"]


async def test_a_short_account_number_is_asked_again(connected):
    dispatcher = CollectingDispatcher()
    result = await ValidateTransferForm().validate_destination_account("12345", dispatcher, make_tracker(), DOMAIN)
    assert result == {"destination_account": None}
    assert sent(dispatcher) == ["utter_invalid_account_number"]


async def test_bank_answer_runs_name_enquiry_and_shows_the_holder(connected, service):
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("gtb", "inform", slots={"destination_account": "0123456789"})
    result = await ValidateTransferForm().validate_bank("gtb", dispatcher, tracker, DOMAIN)

    assert result == {"bank": "GTBank"}
    assert sent(dispatcher) == ["utter_account_holder"]
    assert dispatcher.messages[0]["holder"] == service.name_enquiry("0123456789", "GTBank")


async def test_failed_name_enquiry_asks_for_the_number_again(connected):
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("gtb", "inform", slots={"destination_account": "0001234567"})
    result = await ValidateTransferForm().validate_bank("gtb", dispatcher, tracker, DOMAIN)
    assert result == {"bank": None, "destination_account": None}
    assert sent(dispatcher) == ["utter_name_enquiry_failed"]


async def test_unknown_bank_is_asked_again(connected):
    dispatcher = CollectingDispatcher()
    result = await ValidateTransferForm().validate_bank("bank of narnia", dispatcher, make_tracker(), DOMAIN)
    assert result == {"bank": None}
    assert sent(dispatcher) == ["utter_unknown_bank"]


async def test_amounts_are_validated_and_bare_numbers_accepted_when_asked(connected):
    form, dispatcher = ValidateTransferForm(), CollectingDispatcher()
    bare = make_tracker("5000", "inform", slots={"requested_slot": "amount"})

    assert await form.extract_amount(dispatcher, bare, DOMAIN) == {"amount": "5000"}
    assert form.validate_amount("2.5k", dispatcher, bare, DOMAIN) == {"amount": "2500"}
    assert form.validate_amount("plenty money", dispatcher, bare, DOMAIN) == {"amount": None}
    assert sent(dispatcher) == ["utter_invalid_amount"]


async def test_a_balance_question_mid_form_fills_nothing(connected):
    text = "wetin dey my savings"
    tracker = make_tracker(
        text, "check_balance", [entity("account_type", "savings", text)], slots={"requested_slot": "source_account"}
    )
    form = ValidateTransferForm()
    assert await form.extract_source_account(CollectingDispatcher(), tracker, DOMAIN) == {}
    assert await form.extract_destination_account(CollectingDispatcher(), tracker, DOMAIN) == {}


async def test_money_form_does_not_start_without_a_bank(service):
    outcome = await run(ValidateTransferForm(), make_tracker("send 5k", "transfer_money"))
    assert outcome.responses == ["utter_not_connected"]
    assert {"event": "active_loop", "name": None} in [
        {"event": e["event"], "name": e.get("name")} for e in outcome.events
    ]


async def test_money_form_does_not_start_while_frozen(connected, service):
    op = service.prepare_freeze(connected)
    service.confirm(connected, op.op_id)
    outcome = await run(ValidateBillForm(), make_tracker("pay dstv", "pay_bill"))
    assert outcome.responses == ["utter_refuse_frozen"]


async def test_meter_number_is_checked_with_the_biller(connected):
    form, dispatcher = ValidateBillForm(), CollectingDispatcher()
    tracker = make_tracker("45012345678", "inform", slots={"biller": "Ikeja Electric"})

    good = await form.validate_customer_ref("4501 234 5678", dispatcher, tracker, DOMAIN)
    bad = await form.validate_customer_ref("12", dispatcher, tracker, DOMAIN)

    assert good == {"customer_ref": "45012345678"}
    assert bad == {"customer_ref": None}
    assert sent(dispatcher) == ["utter_biller_customer", "utter_invalid_customer_ref"]
    assert dispatcher.messages[1]["ref_name"] == "meter number"


async def test_my_number_means_the_whatsapp_number(connected):
    form = ValidateAirtimeForm()
    tracker = make_tracker("load 1k for my number", "buy_airtime")
    extracted = await form.extract_phone_number(CollectingDispatcher(), tracker, DOMAIN)
    assert form.validate_phone_number(extracted["phone_number"], CollectingDispatcher(), tracker, DOMAIN) == {
        "phone_number": "08031234567"
    }


async def test_bad_phone_and_network_are_asked_again(connected):
    form, dispatcher = ValidateAirtimeForm(), CollectingDispatcher()
    assert form.validate_phone_number("12345", dispatcher, make_tracker(), DOMAIN) == {"phone_number": None}
    assert form.validate_network("vodafone", dispatcher, make_tracker(), DOMAIN) == {"network": None}
    assert sent(dispatcher) == ["utter_invalid_phone_number", "utter_unknown_network"]


async def test_connect_form_stops_when_a_bank_is_already_linked(connected):
    outcome = await run(ValidateConnectBankForm(), make_tracker("connect zenith", "connect_bank"))
    assert outcome.responses == ["utter_already_connected"]
    assert "GTBank is already connected" in outcome.text


async def test_customer_key_is_not_the_phone_number():
    key = customer(make_tracker())
    assert "8031234567" not in key and len(key) == 64


async def test_my_between_the_preposition_and_the_account_is_understood(connected):
    text = "move 20k from my current to my savings"
    tracker = make_tracker(text, "transfer_money", [
        entity("account_type", "checking", text, surface="current"), entity("account_type", "savings", text)])
    form = ValidateTransferForm()
    assert await form.extract_source_account(CollectingDispatcher(), tracker, DOMAIN) == {"source_account": "checking"}
    assert await form.extract_destination_account(CollectingDispatcher(), tracker, DOMAIN) == {
        "destination_account": "savings"}


async def test_a_new_money_form_forgets_answers_from_an_abandoned_one(connected):
    """An amount typed for a transfer the customer walked away from must not pay a bill."""
    stale = {"amount": "2000", "destination_account": "0123456789", "source_account": "checking"}
    fresh = [{"event": "user", "text": "pay my dstv"}, {"event": "slot", "name": "biller", "value": "DStv"}]
    tracker = make_tracker("pay my dstv", "pay_bill", slots={**stale, "biller": "DStv"},
                           active_loop="transfer_form", events=fresh)

    outcome = await run(ValidateBillForm(), tracker)

    cleared = {e["name"] for e in outcome.events if e["event"] == "slot" and e["value"] is None}
    assert {"amount", "destination_account", "source_account"} <= cleared
    assert "biller" not in cleared


async def test_a_running_form_keeps_its_answers(connected):
    tracker = make_tracker("5k", "inform", slots={"biller": "DStv", "customer_ref": "1234567890"},
                           active_loop="bill_form", events=[{"event": "slot", "name": "amount", "value": "5000"}])
    outcome = await run(ValidateBillForm(), tracker)
    cleared = {e["name"] for e in outcome.events if e["event"] == "slot" and e["value"] is None}
    assert not cleared & {"biller", "customer_ref", "amount"}


async def test_a_form_started_over_another_still_checks_the_bank(service):
    """Rasa may hand over a tracker where the new form is already active this turn."""
    events = [{"event": "user", "text": "abeg send 2k"}, {"event": "active_loop", "name": "transfer_form"}]
    tracker = make_tracker("abeg send 2k", "transfer_money", slots={"requested_slot": "bank"},
                           active_loop="transfer_form", events=events)
    outcome = await run(ValidateTransferForm(), tracker)
    assert outcome.responses == ["utter_not_connected"]


async def test_an_answer_that_fills_nothing_gets_the_question_again(connected):
    text = "checking"
    tracker = make_tracker(text, "inform", [entity("account_type", "checking", text)],
                           slots={"requested_slot": "phone_number", "network": "MTN"}, active_loop="airtime_form",
                           events=[{"event": "user", "text": text}])
    outcome = await run(ValidateAirtimeForm(), tracker)
    assert outcome.responses == ["utter_not_an_answer"]
    assert {"event": "slot", "name": "phone_number", "value": None} in [
        {k: e.get(k) for k in ("event", "name", "value")} for e in outcome.events]


async def test_a_balance_question_mid_form_is_left_to_the_digression_rules(connected):
    text = "wetin be my balance"
    tracker = make_tracker(text, "check_balance", slots={"requested_slot": "phone_number", "network": "MTN"},
                           active_loop="airtime_form", events=[{"event": "user", "text": text}])
    outcome = await run(ValidateAirtimeForm(), tracker)
    assert outcome.messages == []


async def test_two_amounts_in_one_message_are_not_chosen_between():
    from actions.forms import ValidateTransferForm

    tracker = make_tracker("send 5k or maybe 3k to my savings", "transfer_money",
                           [entity("account_type", "savings")], active_loop="transfer_form")
    outcome = await run(ValidateTransferForm(), tracker)

    assert "utter_two_amounts" in outcome.responses
    assert "₦3,000 and ₦5,000" in outcome.texts[outcome.responses.index("utter_two_amounts")]
    assert all(e.get("name") != "amount" or e.get("value") is None for e in outcome.events)
