"""The spending helper speaks the customer's currency: a Plaid customer's tools return dollars
(and say so), a grounded answer in dollars is written the bank's way, and an answer that
puts naira (or any other currency) on a dollar customer's figures is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from assistant_llm.grounding import Evidence, check, extract_figures, money_formatted, other_currencies
from assistant_llm.insights import Ungrounded, data_fingerprint
from assistant_llm.tools import ToolBox
from banking.identity import user_key
from banking.service import BankingService
from checks.action_runner import SENDER
from checks.llm_support import tool_messages
from sandbox.fake_groq import answer, tool_calls
from tests.provider_customers import plaid_customer

SALT = "llm-tests"
TODAY = date.today()


@pytest.fixture
def dollars(db: Any) -> Iterator[tuple[BankingService, str]]:
    user = user_key(SENDER, SALT)
    with plaid_customer(db, user, SENDER, salt=SALT) as service:
        yield service, user


def food_last_30_days(service: BankingService, user: str) -> int:
    return dict(service.spending_summary(user, "last 30 days").by_category)["food"]


async def ask(llm: Any, service: BankingService, user: str) -> Any:
    return await llm.insights.answer(
        question="How much did I spend on food lately?", language="english", service=service, user=user,
        today=TODAY, fingerprint=data_fingerprint(service, user, TODAY), period_hint="last 30 days")


def test_currency_marks_say_which_currency_a_figure_claims() -> None:
    found = {answer_text: [f.currency for f in extract_figures(answer_text)] for answer_text in (
        "$12.50", "USD 1,204.10", "1,204.10 dollars", "€80", "£12.34", "12 pounds", "₦500", "N500", "500 naira")}
    assert found == {"$12.50": ["USD"], "USD 1,204.10": ["USD"], "1,204.10 dollars": ["USD"], "€80": ["EUR"],
                     "£12.34": ["GBP"], "12 pounds": ["GBP"], "₦500": ["NGN"], "N500": ["NGN"],
                     "500 naira": ["NGN"]}
    assert other_currencies("You spent $12.50, about ₦19,000.", "USD") == {"NGN"}
    assert other_currencies("You spent $12.50 in 3 visits.", "USD") == set()


def test_a_small_dollar_figure_is_checked_like_a_naira_one() -> None:
    assert check("You spent $12.50 on coffee.", Evidence(amounts=[Decimal("12.5")])).grounded
    assert not check("You spent $13.50 on coffee.", Evidence(amounts=[Decimal("12.5")])).grounded


def test_dollar_amounts_are_written_the_banks_way_and_naira_untouched() -> None:
    assert money_formatted("You spent USD 1204.1 and 12.5 dollars; about $1.2k in all.", "USD") == (
        "You spent $1,204.10 and $12.50; about $1.2k in all.")
    assert money_formatted("You spent N12345.", "USD") == "You spent N12345."


async def test_the_tools_return_the_customers_currency(dollars: tuple[BankingService, str]) -> None:
    service, user = dollars
    box = ToolBox(service, user)
    listed = await box.run("list_transactions", json.dumps({"period": "last 30 days"}))
    by_category = await box.run("spending_by_category", json.dumps({"period": "last 30 days"}))
    assert listed["currency"] == by_category["currency"] == box.currency == "USD"
    assert {row["currency"] for row in listed["transactions"]} == {"USD"}


async def test_a_grounded_dollar_answer_reaches_the_customer_in_dollars(groq: Any, llm: Any,
                                                                       dollars: tuple[BankingService, str]) -> None:
    service, user = dollars
    cents = food_last_30_days(service, user)
    groq.queue(tool_calls(("spending_by_category", {"period": "last 30 days"})),
               answer(f"You spent USD {cents // 100}.{cents % 100:02d} on food. Brew coffee at home."))
    found = await ask(llm, service, user)
    assert found.text.startswith(f"You spent ${cents // 100:,}.{cents % 100:02d} on food")
    result = json.loads(tool_messages(groq.requests[1])[0]["content"])
    assert result["currency"] == "USD"
    assert "USD as $" in groq.requests[0]["messages"][0]["content"]  # the prompt names the currency rule


async def test_naira_on_a_dollar_customers_figures_is_refused(groq: Any, llm: Any,
                                                              dollars: tuple[BankingService, str]) -> None:
    service, user = dollars
    cents = food_last_30_days(service, user)
    groq.queue(tool_calls(("spending_by_category", {"period": "last 30 days"})),
               answer(f"You spent ₦{cents // 100}.{cents % 100:02d} on food."))
    with pytest.raises(Ungrounded):
        await ask(llm, service, user)
