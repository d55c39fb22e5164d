"""What a customer is told about their daily transfer limit: in their own link's currency, and,
where no money can move from the link (Plaid, Mono without DirectPay), that no limit applies
here, never a naira limit on a dollar account. Real HTTP to the fake providers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.payments import ActionSetLimit
from actions.runtime import utter_refusal
from banking import errors
from banking.identity import user_key
from banking.service import BankingService
from checks.action_runner import DOMAIN, SENDER, entity, make_tracker, render, run
from checks.clock import Clock
from sandbox.fake_mono import FakeMono
from tests.provider_customers import mono_services, plaid_customer

SALT = "action-tests"
READ_ONLY = ("There's no daily transfer limit here for your bank: I can show your balances and transactions, "
             "but I can't move money from it. Your bank's app has its own limits for payments.")


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture
def on_plaid(db: Any, serve: Callable[[BankingService], BankingService]) -> Iterator[BankingService]:
    with plaid_customer(db, user_key(SENDER, SALT), SENDER, salt=SALT) as service:
        yield serve(service)


def on_mono(db: Any, clock: Clock, mono: FakeMono, link: Callable[[BankingService], BankingService],
            directpay: bool) -> Iterator[BankingService]:
    with mono_services(db, clock, mono, SALT, directpay=directpay) as build:
        yield link(build())


@pytest.fixture
def mono_paying(db: Any, clock: Clock, mono: FakeMono, mono_customer: Any) -> Iterator[BankingService]:
    yield from on_mono(db, clock, mono, mono_customer, directpay=True)


@pytest.fixture
def mono_read_only(db: Any, clock: Clock, mono: FakeMono, mono_customer: Any) -> Iterator[BankingService]:
    yield from on_mono(db, clock, mono, mono_customer, directpay=False)


def asks_limit() -> Any:
    return make_tracker("what's my daily limit?", "set_limit")


def sets_limit(amount: str) -> Any:
    return make_tracker(f"set my limit to {amount}", "set_limit", [entity("amount", amount)])


def pidgin(message: dict[str, Any]) -> str:
    variant = next(v for v in DOMAIN["responses"][message["response"]] if "condition" in v)
    return str(variant["text"])


async def test_plaid_customer_is_told_no_limit_applies_here_not_a_naira_limit(on_plaid: BankingService) -> None:
    shown = await run(ActionSetLimit(), asks_limit())

    assert shown.text == READ_ONLY
    assert "₦" not in shown.text
    assert pidgin(shown.messages[0]).startswith("No daily transfer limit dey here for your bank")


async def test_plaid_customer_cannot_set_a_limit_and_nothing_waits_for_a_yes(on_plaid: BankingService) -> None:
    asked = await run(ActionSetLimit(), sets_limit("200"))

    assert asked.text == READ_ONLY
    assert not any(e.get("name") == "pending_op_id" for e in asked.events)  # no "Change ... to ₦200?" to confirm
    with pytest.raises(errors.ReadOnlyLink):
        on_plaid.prepare_set_limit(user_key(SENDER, SALT), 20_000)


async def test_mono_customer_without_directpay_hears_the_same(mono_read_only: BankingService) -> None:
    assert (await run(ActionSetLimit(), asks_limit())).text == READ_ONLY


async def test_mono_customer_who_can_pay_sees_the_limit_in_naira(mono_paying: BankingService) -> None:
    shown = await run(ActionSetLimit(), asks_limit())
    asked = await run(ActionSetLimit(), sets_limit("200000"))

    assert shown.text == ("Your daily transfer limit is ₦500,000. You've used ₦0 today; ₦500,000 is left. "
                          "To change it, say e.g. \"set my limit to 200k\".")
    assert asked.text.startswith("Change your daily transfer limit from ₦500,000 to *₦200,000*?")


async def test_a_limit_refusal_counts_in_the_links_currency() -> None:
    dispatcher = CollectingDispatcher()
    utter_refusal(dispatcher, errors.LimitExceeded("over", remaining_kobo=12_345, limit_kobo=50_000, currency="USD"))

    assert render(dispatcher.messages[0], {}) == (
        "This is over your daily transfer limit of $500.00; you have $123.45 left today. Nothing was moved. "
        "Say \"change my limit\" to adjust it.")


async def test_sandbox_customer_sees_the_limit_as_before(connected: str) -> None:
    shown = await run(ActionSetLimit(), asks_limit())
    assert shown.text.startswith("Your daily transfer limit is ₦500,000. You've used ₦0 today; ₦500,000 is left.")
    invalid = await run(ActionSetLimit(), sets_limit("99000000"))
    assert invalid.text == "A daily limit can be from ₦1 up to ₦5,000,000. Please try another amount."
