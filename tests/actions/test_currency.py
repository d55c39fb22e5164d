"""A customer whose bank is linked through Plaid reads every amount in dollars: balances,
transaction lists and their totals, receipts and the spending summary; never naira."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from actions import runtime
from actions.accounts import ActionCheckBalance, ActionSearchTransactions, ActionShowReceipt, ActionSpendingSummary
from actions.forms import ValidateAirtimeForm, ValidateTransferForm
from banking import errors
from banking.identity import user_key
from banking.service import BankingService
from checks.action_runner import SENDER, entity, make_tracker, run
from tests.provider_customers import plaid_customer

SALT = "action-tests"
DOLLARS = re.compile(r"\$\d{1,3}(?:,\d{3})*\.\d{2}")


@pytest.fixture
def dollars(db: Any) -> Iterator[BankingService]:
    with plaid_customer(db, user_key(SENDER, SALT), SENDER, salt=SALT) as service:
        runtime.use_service(service)
        yield service
        runtime.use_service(None)


def bullet_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("• ", "▶ "))]


async def test_balances_are_in_dollars(dollars: BankingService) -> None:
    outcome = await run(ActionCheckBalance(), make_tracker("balance", "check_balance"))
    assert "$1,204.10" in outcome.text and "$210.50" in outcome.text and "₦" not in outcome.text


async def test_a_transaction_list_and_its_total_are_in_dollars(dollars: BankingService) -> None:
    text = "show my transactions this month"
    outcome = await run(ActionSearchTransactions(), make_tracker(
        text, "search_transactions", [entity("time_period", "last 30 days", text)]))
    assert outcome.responses == ["utter_transactions"]
    lines = bullet_lines(outcome.text)
    assert lines and all(DOLLARS.search(line) for line in lines), outcome.text
    assert any("-$12.50 " in line for line in lines) and any("+$1,500.00 " in line for line in lines)
    page = dollars.search_transactions(user_key(SENDER, SALT), period_text="last 30 days", limit=10)
    assert page.currency == "USD"
    assert f"Total: ${page.total_kobo // 100:,}.{page.total_kobo % 100:02d}" in outcome.text
    assert "₦" not in outcome.text


async def test_a_search_above_an_amount_counts_dollars(dollars: BankingService) -> None:
    text = "transactions above 30 dollars last month"
    outcome = await run(ActionSearchTransactions(), make_tracker(
        text, "search_transactions", [entity("amount", "30", text), entity("time_period", "last 30 days", text)]))
    amounts = [float(DOLLARS.search(line).group()[1:].replace(",", "")) for line in bullet_lines(outcome.text)]
    assert amounts and min(amounts) >= 30 and "₦" not in outcome.text


async def test_a_receipt_is_in_dollars(dollars: BankingService) -> None:
    outcome = await run(ActionShowReceipt(), make_tracker("receipt pls", "get_receipt"))
    assert outcome.responses == ["utter_receipt"]
    assert DOLLARS.search(outcome.text) and "₦" not in outcome.text


async def test_the_spending_summary_is_in_dollars(dollars: BankingService) -> None:
    outcome = await run(ActionSpendingSummary(), make_tracker("where my money dey go", "spending_insights"))
    assert outcome.responses == ["utter_spending_summary"]
    summary = dollars.spending_summary(user_key(SENDER, SALT), None)
    assert summary.currency == "USD"
    (food,) = bullet_lines(outcome.text)
    assert food.startswith("• Food: $") and "(100%)" in food
    assert "₦" not in outcome.text and outcome.text.count("$") >= 3  # the lines, money out and money in


async def test_a_sandbox_customer_still_reads_naira(db: Any, clock: Any) -> None:
    from banking.config import Settings
    from banking.sandbox import SandboxProvider

    service = BankingService(db, SandboxProvider(), Settings(user_id_salt=SALT), clock=clock)
    runtime.use_service(service)
    try:
        service.connect_bank(user_key(SENDER, SALT), "GTBank")
        listed = await run(ActionSearchTransactions(), make_tracker("my transactions", "search_transactions"))
        summary = await run(ActionSpendingSummary(), make_tracker("where my money dey go", "spending_insights"))
    finally:
        runtime.use_service(None)
    assert "Total: ₦" in listed.text and all("₦" in line for line in bullet_lines(listed.text))
    assert "$" not in listed.text + summary.text and "₦" in summary.text


async def test_a_transfer_from_a_plaid_link_is_refused_at_once_and_the_form_ends(dollars: BankingService) -> None:
    """One clear refusal, before any question; nothing asked again afterwards."""
    with pytest.raises(errors.ReadOnlyLink):
        dollars.name_enquiry("0123456789", "GTBank")  # Plaid has no name enquiry, and moves no money here
    text = "send 5k to 0123456789 gtbank"
    tracker = make_tracker(text, "transfer_money", [entity("amount", "5000"), entity("account_number", "0123456789")])
    outcome = await run(ValidateTransferForm(), tracker)
    assert outcome.responses == ["utter_refuse_read_only_link"]
    assert "can't move money from it here" in outcome.text
    assert form_ended(outcome.events)


async def test_a_read_only_refusal_met_mid_form_ends_it_too(dollars: BankingService) -> None:
    """A name enquiry that finds the link read-only (the form was already under way) stops the form, not
    the question: the customer is not asked for the account again."""
    events = [{"event": "user", "text": "gtb"}, {"event": "slot", "name": "bank", "value": "GTBank"}]
    slots = {"destination_account": "0123456789", "amount": "5000", "requested_slot": "bank"}
    tracker = make_tracker("gtb", "inform", [entity("bank", "GTBank", "gtb", surface="gtb")], slots=slots,
                           active_loop="transfer_form", events=events)
    outcome = await run(ValidateTransferForm(), tracker)
    assert outcome.responses == ["utter_refuse_read_only_link"]
    assert form_ended(outcome.events)


async def test_airtime_from_a_plaid_link_is_refused_at_once(dollars: BankingService) -> None:
    outcome = await run(ValidateAirtimeForm(), make_tracker("buy 1k mtn airtime", "buy_airtime"))
    assert outcome.responses == ["utter_refuse_read_only_link"] and form_ended(outcome.events)


def form_ended(events: list[dict[str, Any]]) -> bool:
    """The loop closed, no question left open, and the form's answers forgotten."""
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    closed = {"event": "active_loop", "name": None} in [{"event": e["event"], "name": e.get("name")} for e in events]
    flow = ("amount", "destination_account", "bank", "customer_ref", "requested_slot")
    return closed and all(name in slots and slots[name] is None for name in flow)
