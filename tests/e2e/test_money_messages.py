"""Money messages as customers really write them, over WhatsApp through the whole stack: each
ends in the exact confirmation the customer must see (amount, source, destination), or, for
what is no money request, in no form at all. Every confirmation is then declined.

    PYTHONPATH=. .venv/bin/python -m pytest tests/e2e/test_money_messages.py -q    # inside `make test-e2e`
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from banking.sandbox import SandboxProvider
from checks.chat import Chat, has, tap, text
from checks.stack import BotStack, GraphCall, describe

pytestmark = pytest.mark.e2e

CUSTOMER = "2348000000011"
GTBANK = '/inform{"bank":"GTBank"}'
CHECKING = '/inform{"account_type":"checking"}'
SANDBOX = SandboxProvider()
EXPIRY = r"This expires at \d{2}:\d{2} \(5 min\)\."


def own_transfer(amount: str) -> str:
    return (f"Please confirm:\nSend *{amount}* from your *Checking* to *Savings*.\n"
            f"Reply YES to send or NO to cancel. ")


def transfer_to(amount: str, number: str, bank: str) -> str:
    holder = SANDBOX.name_enquiry(number, bank)
    return (f"Please confirm:\nSend *{amount}* from your *Checking* to *{holder}, {bank} ******{number[-4:]}*.\n"
            f"Reply YES to send or NO to cancel. ")


def airtime(amount: str, network: str, phone: str) -> str:
    return (f"Please confirm:\nBuy *{amount}* airtime for *{network} {phone[:4]}****{phone[-3:]}* from your "
            f"*Checking*.\nReply YES to buy or NO to cancel. ")


def bill(amount: str, biller: str, ref: str) -> str:
    holder = SANDBOX.validate_biller_ref(biller, ref)
    return (f"Please confirm:\nPay *{amount}* to *{biller} ******{ref[-4:]} ({holder})* from your *Checking*.\n"
            f"Reply YES to pay or NO to cancel. ")


def answer_tap(choice: str) -> Callable[[GraphCall], dict[str, Any]]:
    return lambda message: tap("button_reply", message, choice)


def answer_text(body: str) -> Callable[[GraphCall], dict[str, Any]]:
    return lambda _: text(body)


@dataclass
class Case:
    messages: tuple[str, ...]  # what the customer types first (more than one: answers out of order)
    confirmation: str | None  # the exact text before its expiry; None: no money form may start
    answers: Mapping[str, Callable[[GraphCall], dict[str, Any]]] = field(default_factory=dict)


PAY_FROM_CHECKING = {"Which account": answer_tap(CHECKING)}

CASES = [
    Case(("transfer 1000 to savings",), own_transfer("₦1,000")),
    Case(("send 2500 to 0123456789 access bank",), transfer_to("₦2,500", "0123456789", "Access Bank"),
         PAY_FROM_CHECKING),
    Case(("buy 500 airtime for 08031234567",), airtime("₦500", "MTN", "08031234567"),
         {"Which network": answer_text("mtn"), **PAY_FROM_CHECKING}),
    Case(("pay my dstv 19000 smartcard 7023456789",), bill("₦19,000", "DStv", "7023456789"), PAY_FROM_CHECKING),
    Case(("transfer two thousand naira to savings",), own_transfer("₦2,000")),
    Case(("transfer twenty five thousand to my savings",), own_transfer("₦25,000")),
    Case(("pay water bill 3500",), bill("₦3,500", "Lagos Water", "LW20345678"),
         {"Lagos Water": answer_text("LW20345678"), **PAY_FROM_CHECKING}),
    Case(("recharge my 9mobile with 1500",), airtime("₦1,500", "9mobile", "08091234567"),
         {"Which phone number": answer_text("0809 123 4567"), **PAY_FROM_CHECKING}),
    Case(("abeg send N5,000 give 0123456789 for uba",), transfer_to("₦5,000", "0123456789", "UBA"),
         PAY_FROM_CHECKING),
    Case(("send money", "5k to 0123456789 gtb"), transfer_to("₦5,000", "0123456789", "GTBank"), PAY_FROM_CHECKING),
    Case(("reset my mobile banking password",), None),
]


async def confirmation_for(chat: Chat, case: Case) -> list[GraphCall]:
    """Say the case's messages, answer what the bot asks, and return every bot message until the
    confirmation (or until it stops asking)."""
    seen: list[GraphCall] = []
    for message in case.messages:
        _, calls = await chat.say(text(message), lambda calls: bool(calls))
        seen += calls
    for _ in range(4):
        last = seen[-1]
        if "confirm" in last.text or case.confirmation is None:
            return seen
        reply = next((answer for cue, answer in case.answers.items() if cue in last.text), None)
        assert reply is not None, f"{case.messages}: no answer for {describe([last])}; so far {describe(seen)}"
        _, calls = await chat.say(reply(last), lambda calls: bool(calls))
        seen += calls
    return seen


async def test_money_messages_as_customers_write_them_reach_the_exact_confirmation(unlimited_stack: BotStack) -> None:
    stack = unlimited_stack
    chat = Chat(stack, CUSTOMER)
    _, calls = await chat.say(text("connect my bank"), has("list"))
    await chat.say(tap("list_reply", calls[-1], GTBANK), has("button", "GTBank is connected"))
    failures = []
    for case in CASES:
        seen = await confirmation_for(chat, case)
        if case.confirmation is None:
            if any("confirm" in call.text or "How much" in call.text for call in seen):
                failures.append(f"{case.messages}: a money form started: {describe(seen)}")
            continue
        confirmation = seen[-1].text
        if not re.fullmatch(re.escape(case.confirmation) + EXPIRY, confirmation):
            failures.append(f"{case.messages}:\n  expected {case.confirmation!r}\n  got      {confirmation!r}"
                            f"\n  after    {describe(seen[:-1])}")
        await chat.say(text("no"), has("text", "cancelled"))
    assert not failures, "\n".join(failures)
    stack.check_alive()
