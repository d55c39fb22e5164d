"""A customer whose bank connection cannot move money here (Plaid, Mono without DirectPay) is
not offered transfers, bills or airtime: after their first message, action_validate_slot_mappings
sets the `bank_moves_money` slot, once (Rasa works out the same in its own process:
tests/connectors/test_rasa_patches.py), and the menus Rasa then generates are the read-only ones.
Real HTTP to the fake Plaid and Mono on 127.0.0.1; the messages as Rasa's own response generator
fills them for the slots the conversation holds."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker

from actions.support import ActionBankLinked, ActionConnectBank, ValidatePredefinedSlots
from banking.config import Settings
from banking.identity import user_key
from banking.plaid_provider import PlaidConfig, PlaidProvider
from banking.provider_webhooks import ProviderWebhooks
from banking.service import BankingService
from checks.action_runner import ROOT, SENDER, Outcome, make_tracker, run
from checks.clock import Clock
from sandbox.fake_mono import FakeMono
from sandbox.fake_plaid import CLIENT_ID, SECRET, FakePlaid
from tests.provider_customers import mono_services, plaid_customer

SALT = "action-tests"
USER = user_key(SENDER, SALT)
MONEY_PAYLOADS = {"/transfer_money", "/pay_bill", "/buy_airtime"}
HELP_TURN = Outcome(events=[], messages=[{"response": "utter_help"}])  # the help rule: no action server


@pytest.fixture(scope="module")
def domain() -> Domain:
    with warnings.catch_warnings():  # pykwalify, checking the domain files' schema, loads with load_module()
        warnings.filterwarnings("ignore", "the load_module", DeprecationWarning)
        return Domain.load(str(ROOT / "domain"))


@pytest.fixture
def fake_plaid() -> Iterator[FakePlaid]:
    plaid = FakePlaid().start()
    yield plaid
    plaid.stop()


@pytest.fixture
def on_plaid(db: Any, serve: Any, fake_plaid: FakePlaid) -> BankingService:
    """A Plaid deployment; the customer has no bank linked yet."""
    config = PlaidConfig.from_env({"PLAID_CLIENT_ID": CLIENT_ID, "PLAID_SECRET": SECRET, "PLAID_ENV": "sandbox",
                                   "PLAID_BASE_URL": fake_plaid.base_url,
                                   "PLAID_WEBHOOK_URL": "https://bank.example/webhooks/whatsapp/bank/plaid"})
    return serve(BankingService(db, PlaidProvider(config), Settings(user_id_salt=SALT, bank_provider="plaid"),
                                clock=Clock(datetime.now(timezone.utc))))


@pytest.fixture
def linked_on_plaid(db: Any, serve: Any) -> Iterator[BankingService]:
    """A Plaid deployment whose customer linked a bank before the menus knew about it."""
    with plaid_customer(db, USER, SENDER, salt=SALT) as service:
        yield serve(service)


def on_mono(db: Any, mono: FakeMono, serve: Any, directpay: bool) -> Iterator[BankingService]:
    with mono_services(db, Clock(datetime.now(timezone.utc)), mono, SALT, directpay=directpay) as build:
        yield serve(build())


@pytest.fixture
def mono_read_only(db: Any, mono: FakeMono, serve: Any) -> Iterator[BankingService]:
    yield from on_mono(db, mono, serve, directpay=False)


@pytest.fixture
def mono_paying(db: Any, mono: FakeMono, serve: Any) -> Iterator[BankingService]:
    yield from on_mono(db, mono, serve, directpay=True)


def message(moves_money: bool = True, language: str = "english") -> Any:
    """A customer's message in a conversation holding Rasa's slot values (the slot starts true)."""
    return make_tracker("hi", "greet", slots={"language": language, "bank_moves_money": moves_money})


async def moves_money_set(tracker: Any) -> list[Any]:
    """What action_validate_slot_mappings sets bank_moves_money to after the customer's message."""
    outcome = await run(ValidatePredefinedSlots(), tracker)
    return [e["value"] for e in outcome.events if e.get("event") == "slot" and e.get("name") == "bank_moves_money"]


async def seen(domain: Domain, outcome: Outcome, slots: dict[str, Any]) -> list[dict[str, Any]]:
    """The action's messages as Rasa fills them for a conversation holding `slots`."""
    tracker = DialogueStateTracker.from_events("someone", [SlotSet(k, v) for k, v in slots.items()],
                                               slots=domain.slots)
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    shown = []
    for message in outcome.messages:
        filled = {k: v for k, v in message.items() if k != "response" and v}
        generated = await nlg.generate(message["response"], tracker, "whatsapp", **filled)
        assert generated, message
        shown.append(generated)
    return shown


def payloads(message: dict[str, Any]) -> set[str]:
    return {button["payload"] for button in message.get("buttons") or []}


async def test_on_plaid_the_first_message_makes_the_menus_read_only_before_any_bank_is_linked(
        domain: Domain, on_plaid: BankingService) -> None:
    assert await moves_money_set(message()) == [False]
    (help_menu,) = await seen(domain, HELP_TURN, {"language": "english", "bank_moves_money": False})
    assert not payloads(help_menu) & MONEY_PAYLOADS
    assert "With this bank connection I can show your money but not move it" in help_menu["text"]


async def test_a_conversation_already_read_only_is_not_told_again(on_plaid: BankingService) -> None:
    assert await moves_money_set(message(moves_money=False)) == []


@pytest.mark.parametrize("language", ["english", "pidgin"])
async def test_a_plaid_customer_hears_connected_with_no_money_buttons_then_the_note(
        domain: Domain, on_plaid: BankingService, fake_plaid: FakePlaid, language: str) -> None:
    slots = {"language": language, "bank_moves_money": (await moves_money_set(message(language=language)))[-1]}
    asked = await run(ActionConnectBank(), make_tracker(slots={"bank": "GTBank", **slots}))
    assert asked.responses == ["utter_bank_link_sent"]
    token = list(fake_plaid.link_tokens)[-1]
    fake_plaid.finish(token)
    body, signature = fake_plaid.signed(fake_plaid.session_finished(token))
    delivery = ProviderWebhooks(on_plaid).handle("plaid", body, {"plaid-verification": signature}).delivery
    assert delivery is not None and delivery.intent == "EXTERNAL_bank_linked"

    linked = await run(ActionBankLinked(), make_tracker(intent=delivery.intent, slots=slots))

    assert linked.responses[0] == "utter_bank_connected" and linked.responses[-1] == "utter_read_only_link_note"
    connected, *_, note = await seen(domain, linked, slots)
    assert payloads(connected) == {"/check_balance", "/search_transactions", "/help"}
    assert not payloads(connected) & MONEY_PAYLOADS
    assert note["text"] == {
        "english": "Note: for this bank I can read balances and transactions only; I can't send money from it.",
        "pidgin": "Note: for this bank I fit only read your balance and transactions; I no fit send money.",
    }[language]


async def test_a_customer_linked_before_learns_it_from_their_next_message(linked_on_plaid: BankingService) -> None:
    assert await moves_money_set(message(moves_money=True)) == [False]


async def test_mono_without_directpay_is_read_only_too(mono_read_only: BankingService) -> None:
    assert await moves_money_set(message()) == [False]


async def test_mono_with_directpay_keeps_the_money_menus_and_sets_nothing(mono_paying: BankingService) -> None:
    assert await moves_money_set(message()) == []


async def test_a_conversation_left_read_only_is_put_back_when_money_moves_again(mono_paying: BankingService) -> None:
    assert await moves_money_set(message(moves_money=False)) == [True]


async def test_the_sandbox_sets_nothing(service: BankingService) -> None:
    assert await moves_money_set(message()) == []
