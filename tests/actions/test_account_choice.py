"""Which account the money comes from (and goes to) is asked with the customer's real accounts:
the sandbox's Checking and Savings as before, a Mono or Plaid link's own accounts by name and
masked number, and nothing at all when there is only one. Real HTTP to the fake providers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.accounts import ActionCheckBalance, ActionSearchTransactions
from actions.forms import ActionAskDestinationAccount, ActionAskSourceAccount, ValidateAirtimeForm, ValidateTransferForm
from banking.identity import user_key
from banking.service import BankingService
from checks.action_runner import DOMAIN, SENDER, entity, make_tracker, render, run
from checks.clock import Clock
from sandbox.fake_mono import FakeMono
from tests.provider_customers import mono_services, plaid_customer

SALT = "action-tests"
MONO_SAVINGS = "Savings (******6789)"  # the fake Mono's one account: SAVINGS_ACCOUNT 0123456789


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture
def on_mono(db: Any, clock: Clock, mono: FakeMono,
            mono_customer: Callable[[BankingService], BankingService]) -> Iterator[BankingService]:
    """The customer's GTBank linked through Mono (DirectPay on, so money can move): one Savings account."""
    with mono_services(db, clock, mono, SALT) as build:
        yield mono_customer(build())


@pytest.fixture
def on_plaid(db: Any, serve: Callable[[BankingService], BankingService]) -> Iterator[BankingService]:
    """The customer's Plaid item: Plaid Checking ******0000, Plaid Saving ******1111 and Plaid CD ******2222."""
    with plaid_customer(db, user_key(SENDER, SALT), SENDER, salt=SALT) as service:
        yield serve(service)


def pidgin(message: dict[str, Any]) -> str:
    """The Pidgin text of a response, its placeholders filled from the message."""
    variant = next(v for v in DOMAIN["responses"][message["response"]] if "condition" in v)
    return str(variant["text"]).format(**{k: v for k, v in message.items() if k not in ("response", "buttons")})


async def start_transfer(text: str, entities: list[dict[str, Any]] | None = None) -> Any:
    """The transfer form's validation on the customer's first message, as Rasa runs it when the form starts."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(text, "transfer_money", entities or [], slots={"amount": "5000"})
    events = await ValidateTransferForm().run(dispatcher, tracker, DOMAIN)
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    return slots, dispatcher.messages


# ---------------------------------------------------------------- the sandbox: exactly as before


async def test_sandbox_customer_is_asked_checking_or_savings_as_before(connected: str) -> None:
    source = await run(ActionAskSourceAccount(), make_tracker(active_loop="transfer_form"))
    destination = await run(ActionAskDestinationAccount(), make_tracker(active_loop="transfer_form"))

    assert [m["response"] for m in source.messages] == ["utter_ask_source_account"]
    assert source.messages[0].get("buttons") in (None, [])  # the domain's own Checking / Savings buttons only
    assert source.text == "Which account should the money come from?"
    assert [m["response"] for m in destination.messages] == ["utter_ask_destination_account"]
    assert destination.messages[0].get("buttons") in (None, [])
    assert [b["payload"] for b in DOMAIN["responses"]["utter_ask_source_account"][1]["buttons"]] == [
        '/inform{{"account_type":"checking"}}', '/inform{{"account_type":"savings"}}']


async def test_sandbox_customer_still_chooses_and_an_unknown_account_is_answered_as_before(connected: str) -> None:
    slots, messages = await start_transfer("send 5k")
    assert "source_account" not in slots or slots["source_account"] is None  # two accounts: they are asked

    dispatcher = CollectingDispatcher()
    result = await ValidateTransferForm().validate_source_account("domiciliary", dispatcher, make_tracker(), DOMAIN)
    assert result == {"source_account": None}
    assert render(dispatcher.messages[0], {}) == "You have a Checking and a Savings account. Please pick one."

    balance = await run(ActionCheckBalance(), make_tracker("balance of my loan account", "check_balance",
                                                           [entity("account_type", "loan")]))
    assert balance.text == "I can't find that account. You have Checking and Savings."


# ---------------------------------------------------------------- Mono: one Savings account


async def test_mono_customer_with_one_account_is_not_asked_where_the_money_comes_from(on_mono: Any) -> None:
    slots, messages = await start_transfer("send 5k")
    assert slots.get("source_account") == "savings"
    assert not any(m.get("response") == "utter_unknown_account_type" for m in messages)

    airtime = CollectingDispatcher()
    tracker = make_tracker("buy 500 airtime", "buy_airtime", slots={"amount": "500"})
    events = await ValidateAirtimeForm().run(airtime, tracker, DOMAIN)
    assert {"event": "slot", "name": "source_account", "value": "savings"} in [
        {k: e.get(k) for k in ("event", "name", "value")} for e in events]


async def test_mono_customer_who_taps_checking_hears_their_only_account_is_used(on_mono: Any) -> None:
    dispatcher = CollectingDispatcher()
    result = await ValidateTransferForm().validate_source_account("checking", dispatcher, make_tracker(), DOMAIN)

    assert result == {"source_account": "savings"}
    assert render(dispatcher.messages[0], {}) == (
        f"You don't have a Checking account here. The money will come from your only account, {MONO_SAVINGS}.")
    assert "Checking and a Savings" not in render(dispatcher.messages[0], {})
    assert pidgin(dispatcher.messages[0]) == (
        f"You no get Checking account here. The money go comot from your only account, {MONO_SAVINGS}.")


async def test_mono_customer_sending_to_an_own_account_they_do_not_have_gets_a_clear_answer(on_mono: Any) -> None:
    to_checking = CollectingDispatcher()
    missing = await ValidateTransferForm().validate_destination_account(
        "checking", to_checking, make_tracker(slots={"source_account": "savings"}), DOMAIN)
    to_savings = CollectingDispatcher()
    same = await ValidateTransferForm().validate_destination_account(
        "savings", to_savings, make_tracker(slots={"source_account": "savings"}), DOMAIN)
    asked = await run(ActionAskDestinationAccount(), make_tracker(slots={"source_account": "savings"}))

    assert missing == {"destination_account": None}
    assert render(to_checking.messages[0], {}) == "You don't have a Checking account here."
    assert same == {"destination_account": None}
    assert render(to_savings.messages[0], {}) == (
        f"{MONO_SAVINGS} is your only account here, so the money can't go to another account of yours.")
    assert asked.text == "Where should the money go? Send the 10-digit account number."
    assert not asked.messages[0].get("buttons")  # no "My Checking" / "My Savings" they do not have


async def test_mono_customer_asking_for_a_checking_balance_is_told_what_they_have(on_mono: Any) -> None:
    balance = await run(ActionCheckBalance(), make_tracker("my checking balance", "check_balance",
                                                           [entity("account_type", "checking")]))
    assert balance.text == "I can't find that account. You have Savings."


# ---------------------------------------------------------------- Plaid: accounts with their own names
# Plaid's sandbox item: Plaid Checking ******0000, and two accounts that hold savings, Plaid Saving
# ******1111 and Plaid CD ******2222. A second account of a type is shown, never guessed between.

PLAID_LINES = "• Plaid Checking (******0000)\n• Plaid Saving (******1111)\n• Plaid CD (******2222)"


async def test_plaid_customer_is_asked_with_their_accounts_names_and_masked_numbers(on_plaid: Any) -> None:
    asked = await run(ActionAskSourceAccount(), make_tracker(active_loop="transfer_form"))

    assert asked.text == f"Which account should the money come from?\n{PLAID_LINES}"
    assert asked.messages[0]["buttons"] == [
        {"title": "Plaid Checking 0000", "payload": '/inform{"account_type":"checking"}'},
        {"title": "Plaid Saving 1111", "payload": '/inform{"account_type":"savings_1"}'},
        {"title": "Plaid CD 2222", "payload": '/inform{"account_type":"savings_2"}'},
    ]
    assert pidgin(asked.messages[0]).startswith("Which account make I take the money from?\n• Plaid Checking")


async def test_plaid_customer_naming_an_account_they_lack_gets_their_accounts_listed(on_plaid: Any) -> None:
    dispatcher = CollectingDispatcher()
    result = await ValidateTransferForm().validate_source_account("domiciliary", dispatcher, make_tracker(), DOMAIN)
    destination = await run(ActionAskDestinationAccount(), make_tracker(slots={"source_account": "checking"}))

    assert result == {"source_account": None}
    assert render(dispatcher.messages[0], {}) == (
        f"You don't have that account here. Your accounts are:\n{PLAID_LINES}\nPlease pick one.")
    assert [b["title"] for b in dispatcher.messages[0]["buttons"]] == [
        "Plaid Checking 0000", "Plaid Saving 1111", "Plaid CD 2222"]
    assert destination.text.endswith(
        "pick one of your own accounts:\n• Plaid Saving (******1111)\n• Plaid CD (******2222)")
    assert [b["payload"] for b in destination.messages[0]["buttons"]] == [
        '/inform{"account_type":"savings_1"}', '/inform{"account_type":"savings_2"}']


async def test_a_customer_with_two_savings_accounts_is_asked_which_one_never_given_one(on_plaid: Any) -> None:
    dispatcher = CollectingDispatcher()
    result = await ValidateTransferForm().validate_source_account("savings", dispatcher, make_tracker(), DOMAIN)

    assert result == {"source_account": None}
    assert render(dispatcher.messages[0], {}) == (
        "You have 2 Savings accounts here. Which one?\n• Plaid Saving (******1111)\n• Plaid CD (******2222)")
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == [
        '/inform{"account_type":"savings_1"}', '/inform{"account_type":"savings_2"}']
    assert pidgin(dispatcher.messages[0]).startswith("You get 2 Savings accounts here. Which one?")


async def test_the_tapped_button_or_the_typed_last_digits_choose_that_very_account(on_plaid: Any) -> None:
    tapped = await ValidateTransferForm().validate_source_account(
        "savings_2", CollectingDispatcher(), make_tracker(), DOMAIN)
    asked = {"requested_slot": "source_account"}
    typed = await ValidateTransferForm().extract_source_account(
        CollectingDispatcher(), make_tracker("the one ending 2222", "inform", slots=asked), DOMAIN)
    by_name = await ValidateTransferForm().extract_source_account(
        CollectingDispatcher(), make_tracker("from plaid cd", "inform", [entity("account_type", "savings")],
                                             slots=asked), DOMAIN)

    assert tapped == {"source_account": "savings_2"}
    assert typed == {"source_account": "savings_2"}
    assert by_name == {"source_account": "savings_2"}  # the name wins over the type it also says


async def test_sending_to_savings_from_one_of_two_savings_accounts_means_the_other(on_plaid: Any) -> None:
    from_saving = await ValidateTransferForm().validate_destination_account(
        "savings", CollectingDispatcher(), make_tracker(slots={"source_account": "savings_1"}), DOMAIN)
    asked = CollectingDispatcher()
    from_checking = await ValidateTransferForm().validate_destination_account(
        "savings", asked, make_tracker(slots={"source_account": "checking"}), DOMAIN)

    assert from_saving == {"destination_account": "savings_2", "source_account": "savings_1"}
    assert from_checking == {"destination_account": None}
    assert render(asked.messages[0], {}).startswith("You have 2 Savings accounts here. Which one?")


async def test_a_savings_balance_shows_every_savings_account(on_plaid: Any) -> None:
    balance = await run(ActionCheckBalance(), make_tracker("my savings balance", "check_balance",
                                                           [entity("account_type", "savings")]))
    lines = [line for line in balance.text.splitlines() if line.startswith("• ")]
    assert [line.split(":")[0] for line in lines] == ["• Plaid Saving (******1111)", "• Plaid CD (******2222)"]
    assert "$1,000.00" in balance.text and "Plaid Checking" not in balance.text


def test_a_long_account_name_keeps_its_last_digits_on_the_button() -> None:
    from actions.forms import account_button_title
    from banking.models import Account

    title = account_button_title(Account("savings", "Premier Business Savings Plus", "******4321", 0))
    assert len(title) <= 20  # what WhatsApp shows whole on a reply button
    assert title.endswith(" 4321") and title.startswith("Premier")


async def test_the_second_account_of_a_type_can_be_where_the_money_goes(on_plaid: Any) -> None:
    tapped = await ValidateTransferForm().validate_destination_account(
        "savings_2", CollectingDispatcher(), make_tracker(slots={"source_account": "savings_1"}), DOMAIN)
    asked = {"requested_slot": "destination_account", "source_account": "checking"}
    typed = await ValidateTransferForm().extract_destination_account(
        CollectingDispatcher(), make_tracker("the one ending in 2222", "inform", slots=asked), DOMAIN)

    assert tapped == {"destination_account": "savings_2", "source_account": "savings_1"}
    assert typed == {"destination_account": "savings_2"}


@pytest.mark.parametrize("text", ["send 1111", "1111 naira", "0803 111 2222", "call 0803-111-2222",
                                  "012 345 1111", "ending 2222 or 1111", "plaid cds"])
async def test_four_digits_or_a_word_that_only_looks_like_an_account_choose_nothing(on_plaid: Any, text: str) -> None:
    asked = {"requested_slot": "source_account"}
    chosen = await ValidateTransferForm().extract_source_account(
        CollectingDispatcher(), make_tracker(text, "inform", slots=asked), DOMAIN)
    assert chosen == {}


async def test_mono_customer_sending_to_their_only_account_hears_one_clear_answer(on_mono: Any) -> None:
    text = "transfer 1000 to savings"
    slots, messages = await start_transfer(text, [entity("account_type", "savings", text)])

    assert [m["response"] for m in messages] == ["utter_only_one_account"]  # not also "the same account"
    assert slots.get("destination_account", None) is None
    assert slots.get("source_account") == "savings"


# ---------------------------------------------------------------- one account asked about by its name or digits


@pytest.mark.parametrize("text", ["balance of plaid cd", "balance of the one ending 2222"])
async def test_a_balance_question_naming_one_account_shows_that_account(on_plaid: Any, text: str) -> None:
    balance = await run(ActionCheckBalance(), make_tracker(text, "check_balance"))
    lines = [line for line in balance.text.splitlines() if line.startswith("• ")]
    assert lines == ["• Plaid CD (******2222): $1,000.00"]


async def test_transactions_on_one_account_are_that_accounts_only(on_plaid: Any) -> None:
    text = "my transactions on the one ending 2222 in the last 3 months"
    on_cd = await run(ActionSearchTransactions(), make_tracker(text, "search_transactions", [
        entity("amount", "2222", text), entity("time_period", "last 3 months", text)]))
    on_savings = await run(ActionSearchTransactions(), make_tracker(
        "savings transactions", "search_transactions", [entity("account_type", "savings", "savings transactions"),
                                                       entity("time_period", "last 3 months")]))
    on_checking = await run(ActionSearchTransactions(), make_tracker(
        "checking transactions", "search_transactions", [entity("account_type", "checking", "checking transactions"),
                                                        entity("time_period", "last 3 months")]))

    assert [line for line in on_cd.text.splitlines() if line.startswith("• ")] == [
        line for line in on_savings.text.splitlines() if line.startswith("• ")]  # the CD holds the savings' only one
    assert "INTEREST PAYMENT" in on_cd.text and "Coffee Shop" not in on_cd.text and "1 in total" in on_cd.text
    assert "INTEREST PAYMENT" not in on_checking.text and "Coffee Shop" in on_checking.text
