"""Read-only answers, connecting a bank, handoff and language, as the customer reads them."""

from __future__ import annotations

from rasa_sdk.executor import CollectingDispatcher

from actions.accounts import (
    ActionCheckBalance,
    ActionSearchTransactions,
    ActionShowReceipt,
    ActionSpendingSummary,
)
from actions.payments import ActionConfirmPending, ActionPrepareTransfer
from actions.support import ActionConnectBank, ActionHumanHandoff, ValidatePredefinedSlots
from banking.money import format_naira
from checks.action_runner import DOMAIN, entity, make_tracker, reply_to_confirmation, run


async def test_balances_of_both_accounts_with_masked_numbers(connected):
    outcome = await run(ActionCheckBalance(), make_tracker("my balance", "check_balance"))
    assert outcome.responses == ["utter_balances"]
    assert "Checking" in outcome.text and "₦45,320.50" in outcome.text
    assert "Savings" in outcome.text and "₦125,450" in outcome.text
    assert "******" in outcome.text


async def test_balance_of_one_account(connected):
    text = "savings bal"
    outcome = await run(
        ActionCheckBalance(), make_tracker(text, "check_balance", [entity("account_type", "savings", text)])
    )
    assert "₦125,450" in outcome.text and "₦45,320.50" not in outcome.text


async def test_balance_before_connecting_offers_to_connect(service):
    outcome = await run(ActionCheckBalance(), make_tracker("my balance", "check_balance"))
    assert outcome.responses == ["utter_not_connected"]


async def test_connect_bank_shows_the_new_accounts(service):
    outcome = await run(ActionConnectBank(), make_tracker(slots={"bank": "Zenith Bank"}))
    assert outcome.responses == ["utter_bank_connected"]
    assert "Zenith Bank is connected" in outcome.text and "₦45,320.50" in outcome.text


async def test_search_by_merchant_lists_only_that_merchant(connected, service):
    text = "did i pay uber last month"
    page = service.search_transactions(connected, period_text="last month", merchant="Uber")
    outcome = await run(
        ActionSearchTransactions(),
        make_tracker(
            text,
            "search_transactions",
            [entity("merchant", "Uber", text, surface="uber"), entity("time_period", "last month", text)],
        ),
    )
    if page.items:
        assert outcome.responses == ["utter_transactions"]
        lines = [line for line in outcome.text.splitlines() if line.startswith("• ")]
        assert lines and all("uber" in line.lower() for line in lines)
        assert f"{page.total_count} in total" in outcome.text
    else:
        assert outcome.responses == ["utter_no_transactions"]


async def test_search_for_money_in(connected):
    text = "show me credits this month"
    outcome = await run(
        ActionSearchTransactions(),
        make_tracker(
            text,
            "search_transactions",
            [entity("direction", "credit", text, surface="credits"), entity("time_period", "this month", text)],
        ),
    )
    assert outcome.responses in (["utter_transactions"], ["utter_no_transactions"])
    if outcome.responses == ["utter_transactions"]:
        assert outcome.text.startswith("Money in")
        assert all("+₦" in line for line in outcome.text.splitlines() if line.startswith("• "))


async def test_spending_summary_adds_up(connected, service):
    outcome = await run(ActionSpendingSummary(), make_tracker("where my money dey go", "spending_insights"))
    summary = service.spending_summary(connected, None)
    assert outcome.responses == ["utter_spending_summary"]
    lines = [line for line in outcome.text.splitlines() if line.startswith("• ")]
    assert len(lines) == len(summary.by_category) >= 3
    assert sum(kobo for _, kobo in summary.by_category) == summary.total_debit_kobo
    biggest, kobo = summary.by_category[0]
    assert lines[0].startswith(f"• {biggest.capitalize()}: {format_naira(kobo)}")


async def test_receipt_of_the_latest_transfer(connected):
    prepared = await run(
        ActionPrepareTransfer(),
        make_tracker(slots={"amount": "2000", "source_account": "checking", "destination_account": "savings"}),
    )
    done = await run(
        ActionConfirmPending(), reply_to_confirmation(prepared.slot("pending_op_id"))
    )
    reference = done.messages[0]["reference"]

    receipt = await run(ActionShowReceipt(), make_tracker("receipt pls", "get_receipt"))

    assert receipt.responses == ["utter_receipt"]
    assert reference in receipt.text and "₦2,000" in receipt.text


async def test_handoff_gives_the_contact_and_flags_the_conversation(connected, service, db):
    outcome = await run(ActionHumanHandoff(), make_tracker("i want to talk to a person", "human_handoff"))
    assert outcome.responses == ["utter_handoff"]
    assert service.settings.support_phone in outcome.text and service.settings.support_email in outcome.text
    assert outcome.slot("handoff_requested") is True
    assert db["handoffs"].count_documents({"user": connected, "status": "open"}) == 1


async def test_pidgin_switches_the_language_and_english_switches_back(service):
    slots = ValidatePredefinedSlots()
    pidgin = await slots.extract_language(
        CollectingDispatcher(), make_tracker("abeg wetin be my balance", "check_balance"), DOMAIN
    )
    asked = make_tracker(
        "speak english", "change_language", [entity("language", "english")], slots={"language": "pidgin"}
    )
    english = await slots.extract_language(CollectingDispatcher(), asked, DOMAIN)
    assert pidgin == {"language": "pidgin"}
    assert english == {"language": "english"}


async def test_every_response_an_action_names_exists_in_both_languages():
    import re
    from pathlib import Path

    source = "\n".join(p.read_text() for p in Path("actions").glob("*.py"))
    named = set(re.findall(r'"(utter_\w+)"', source))
    assert named, "actions name their responses"
    for name in named:
        variants = DOMAIN["responses"].get(name)
        assert variants, f"{name} is named by an action but missing from domain.yml"
        conditions = [v.get("condition") for v in variants]
        assert None in conditions and any(c for c in conditions), f"{name} needs English and Pidgin"


async def test_receipt_by_merchant_and_by_reference(connected, service):
    page = service.search_transactions(connected, period_text="past 3 months", merchant="Uber", limit=1)
    text = "send me receipt for my uber ride"
    by_merchant = await run(ActionShowReceipt(), make_tracker(text, "get_receipt", [
        entity("merchant", "Uber", text, surface="uber")]))
    reference = page.items[0].reference
    by_reference = await run(ActionShowReceipt(), make_tracker(f"receipt for {reference.lower()}", "get_receipt"))

    assert by_merchant.responses == ["utter_receipt"] and reference in by_merchant.text
    assert by_reference.responses == ["utter_receipt"] and reference in by_reference.text


async def test_receipt_for_an_unknown_reference(connected):
    outcome = await run(ActionShowReceipt(), make_tracker("receipt SBX-DEADBEEF00", "get_receipt"))
    assert outcome.responses == ["utter_no_receipt"]


async def test_a_transfer_left_half_way_is_settled_and_the_customer_told(connected, service, db, clock):
    prepared = await run(ActionPrepareTransfer(), make_tracker(
        slots={"amount": "2000", "source_account": "checking", "destination_account": "savings"}))
    op_id = prepared.slot("pending_op_id")
    # The worker that claimed the YES died before moving anything; three days pass.
    db["operations"].update_one({"_id": op_id}, {"$set": {"status": "executing", "claimed_at": clock.now,
                                                          "claim": "a-worker-that-died"}})
    clock.advance(days=3)

    outcome = await run(ActionCheckBalance(), make_tracker("what is my balance", "check_balance"))

    assert outcome.responses == ["utter_settled_expired", "utter_balances"]
    assert "₦2,000" in outcome.texts[0] and "did not go through" in outcome.texts[0]
    assert "₦45,320.50" in outcome.texts[1]
    assert service.operation_status(connected, op_id) == "expired"
    again = await run(ActionCheckBalance(), make_tracker("what is my balance", "check_balance"))
    assert again.responses == ["utter_balances"], "told once"


async def test_a_reauth_request_on_the_sandbox_bank_speaks_to_the_customer_not_in_code_names(connected):
    from actions.support import ActionBankUpdated

    text = "bank"
    outcome = await run(ActionBankUpdated(), make_tracker(
        text, "EXTERNAL_bank_updated", [entity("bank_event", "reauth_required", text)]))
    assert outcome.text and "connect_bank" not in outcome.text and "connect bank" in outcome.text


async def test_every_bank_link_message_says_never_to_forward_it():
    for response, warning in (("utter_bank_link_sent", "forward"), ("utter_bank_reauth_link", "forward")):
        variants = DOMAIN["responses"][response]
        assert len(variants) == 2  # English and Pidgin
        for variant in variants:
            assert warning in variant["text"].lower() and "this chat" in variant["text"]
