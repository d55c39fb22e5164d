"""What the menus offer, as Rasa's own response generator picks them for a conversation: money
movement only where the bank connection moves money (the `bank_moves_money` slot), in the
customer's language. Rasa picks at random among every variation whose condition matches the
slots, so each menu is generated many times, and no response may have two matching variations."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import pytest
from rasa.core.nlg.generator import ResponseVariationFilter
from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker

from checks.action_runner import ROOT

LANGUAGES = ("english", "pidgin")
# Every reply that lists what the assistant can do; utter_bank_connected is filled by its action.
MENUS = ("utter_greet", "utter_help", "utter_fallback", "utter_default", "utter_what_for", "utter_bank_connected")
FILLED = {"bank": "GTBank", "lines": "• Savings: ₦87,654.32"}
MONEY_PAYLOADS = {"/transfer_money", "/pay_bill", "/buy_airtime", "/set_limit"}
MONEY_WORDS = ("send money", "pay bill", "buy airtime", "transfer limit")
PIDGIN_WORDS = ("wetin", "abeg", " fit ", " don ", " dey ")
READ_ONLY_LINE = {"english": "show your money but not move it", "pidgin": "I no fit move am"}
TIMES = 40  # 4 variations each: a wrong one among those matching would be picked 40 times with p < 1e-4


@pytest.fixture(scope="module")
def domain() -> Domain:
    with warnings.catch_warnings():  # pykwalify, checking the domain files' schema, loads with load_module()
        warnings.filterwarnings("ignore", "the load_module", DeprecationWarning)
        return Domain.load(str(ROOT / "domain"))


def conversation(domain: Domain, language: str, moves_money: bool) -> DialogueStateTracker:
    return DialogueStateTracker.from_events(
        "someone", [SlotSet("language", language), SlotSet("bank_moves_money", moves_money)], slots=domain.slots)


async def seen(domain: Domain, response: str, language: str, moves_money: bool) -> list[dict[str, Any]]:
    """The messages a customer would get for `response`, generated TIMES over."""
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    tracker = conversation(domain, language, moves_money)
    messages = [await nlg.generate(response, tracker, "whatsapp", **FILLED) for _ in range(TIMES)]
    assert all(messages), f"{response} has no variation for {language}, moves money {moves_money}"
    return [message for message in messages if message]


def payloads(message: dict[str, Any]) -> set[str]:
    return {button["payload"] for button in message.get("buttons") or []}


def test_a_new_conversation_starts_with_money_moving_menus_in_english(domain: Domain) -> None:
    slots = DialogueStateTracker("someone", domain.slots).current_slot_values()
    assert slots["bank_moves_money"] is True and slots["language"] == "english"
    assert not next(slot for slot in domain.slots if slot.name == "bank_moves_money").influence_conversation


@pytest.mark.parametrize(("language", "moves_money"), itertools.product(LANGUAGES, (True, False)))
def test_every_response_has_exactly_one_variation_for_each_conversation(
        domain: Domain, language: str, moves_money: bool) -> None:
    slots = conversation(domain, language, moves_money).current_slot_values()
    variations = ResponseVariationFilter(domain.responses)
    clashing = {name: len(matching) for name in domain.responses
                if len(matching := variations.responses_for_utter_action(name, "whatsapp", slots)) != 1}
    assert not clashing, f"responses with more or less than one variation for {slots}: {clashing}"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("response", MENUS)
async def test_a_read_only_connection_is_offered_nothing_that_moves_money(
        domain: Domain, response: str, language: str) -> None:
    for message in await seen(domain, response, language, moves_money=False):
        assert not payloads(message) & MONEY_PAYLOADS, message
        assert not any(word in message["text"].lower() for word in MONEY_WORDS), message["text"]
        assert "/check_balance" in payloads(message)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("response", ["utter_greet", "utter_help", "utter_fallback", "utter_default"])
async def test_a_read_only_menu_says_in_one_line_why(domain: Domain, response: str, language: str) -> None:
    for message in await seen(domain, response, language, moves_money=False):
        assert READ_ONLY_LINE[language] in message["text"]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_read_only_help_keeps_everything_that_only_reads(domain: Domain, language: str) -> None:
    for message in await seen(domain, "utter_help", language, moves_money=False):
        assert payloads(message) == {"/check_balance", "/search_transactions", "/spending_insights",
                                     "/connect_bank", "/human_handoff"}
        assert "/freeze_account" not in payloads(message)  # a freeze here would stop nothing at the bank


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("response", MENUS)
async def test_a_connection_that_moves_money_still_offers_it(domain: Domain, response: str, language: str) -> None:
    for message in await seen(domain, response, language, moves_money=True):
        assert "/transfer_money" in payloads(message)
        assert READ_ONLY_LINE[language] not in message["text"]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("response", ["utter_help", "utter_fallback", "utter_default"])
async def test_the_full_menu_offers_every_money_movement(domain: Domain, response: str, language: str) -> None:
    for message in await seen(domain, response, language, moves_money=True):
        assert {"/transfer_money", "/pay_bill", "/buy_airtime", "/get_receipt", "/freeze_account"} <= payloads(message)


async def test_the_full_help_lists_every_money_movement_in_both_languages(domain: Domain) -> None:
    english = (await seen(domain, "utter_help", "english", moves_money=True))[0]["text"]
    pidgin = (await seen(domain, "utter_help", "pidgin", moves_money=True))[0]["text"]
    for bullet in ("• Send money", "• Pay bills", "• Buy airtime", "• Show or change your daily transfer limit"):
        assert bullet in english
    for bullet in ("• Send money", "• Pay bills", "• Buy airtime", "• Daily transfer limit"):
        assert bullet in pidgin


@pytest.mark.parametrize("moves_money", [True, False])
@pytest.mark.parametrize("response", MENUS)
async def test_each_menu_stays_in_the_customers_language(domain: Domain, response: str, moves_money: bool) -> None:
    for message in await seen(domain, response, "pidgin", moves_money):
        assert any(word in f" {message['text'].lower()} " for word in PIDGIN_WORDS), message["text"]
    for message in await seen(domain, response, "english", moves_money):
        assert not any(word in f" {message['text'].lower()} " for word in PIDGIN_WORDS), message["text"]


@pytest.mark.parametrize(("language", "moves_money"), itertools.product(LANGUAGES, (True, False)))
@pytest.mark.parametrize("response", MENUS)
async def test_each_menu_fits_whatsapps_lists(domain: Domain, response: str, language: str, moves_money: bool) -> None:
    for message in await seen(domain, response, language, moves_money):
        buttons = message.get("buttons") or []
        assert 1 <= len(buttons) <= 10  # rows in one WhatsApp list
        assert all(len(button["title"]) <= 20 for button in buttons)
        assert len(payloads(message)) == len(buttons)
