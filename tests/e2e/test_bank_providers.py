"""The same conversation over WhatsApp with each bank provider: the sandbox bank, Mono and Plaid.

For each, the real stack (fake Meta, action server, ``rasa run`` with the trained model) runs
with ``BANK_PROVIDER`` set, and the fake provider on 127.0.0.1 in this process. The customer
says "connect my bank" and picks a bank; with Mono and Plaid the bot sends the provider's
page as a link, the customer finishes there (HTTP to the fake's page, its one button), the
fake sends its signed webhook to the channel's server, and the customer is told "✅
connected" with the accounts without typing anything. Then a balance, a transaction search,
and, with Plaid (read-only for money), a transfer the bot refuses. One stack start each.

    E2E_MODEL=/tmp/copy.tar.gz PYTHONPATH=. .venv/bin/python -m pytest -q tests/e2e/test_bank_providers.py
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from checks.chat import TURN_TIMEOUT, Chat, has, tap, text, yes_no
from checks.stack import BotStack, GraphCall, bot_stack, describe, free_port
from sandbox import fake_mono, fake_plaid
from sandbox.fake_mono import FakeMono
from sandbox.fake_plaid import FakePlaid

pytestmark = pytest.mark.e2e

USER = "2348000000002"
GTBANK = '/inform{"bank":"GTBank"}'
LINK = re.compile(r"http://127\.0\.0\.1:\d+/\S+")


@dataclass
class Provider:
    """A fake provider running for one stack, and the settings that point the bot at it."""

    name: str
    fake: Any
    environment: dict[str, str]
    currency_mark: str
    balance: str  # as the connected message and the balance show it


@contextlib.contextmanager
def provider(name: str, rasa_port: int) -> Iterator[Provider]:
    channel = f"http://127.0.0.1:{rasa_port}/webhooks/whatsapp/bank"
    if name == "sandbox":
        yield Provider(name, None, {"BANK_PROVIDER": "sandbox"}, "₦", "₦45,320.50")
        return
    if name == "mono":
        mono = FakeMono().start()
        mono.webhook_url = f"{channel}/mono"  # what Mono's dashboard would name
        try:
            yield Provider(name, mono, {
                "BANK_PROVIDER": "mono", "MONO_SECRET_KEY": fake_mono.SECRET_KEY,
                "MONO_WEBHOOK_SECRET": fake_mono.WEBHOOK_SECRET, "MONO_BASE_URL": mono.base_url,
                "BANK_LINK_REDIRECT_URL": f"{channel}/done", "MONO_DIRECTPAY": "on"}, "₦", "₦87,654.32")
        finally:
            mono.stop()
        return
    plaid = FakePlaid().start()
    try:
        yield Provider(name, plaid, {
            "BANK_PROVIDER": "plaid", "PLAID_CLIENT_ID": fake_plaid.CLIENT_ID, "PLAID_SECRET": fake_plaid.SECRET,
            "PLAID_ENV": "sandbox", "PLAID_BASE_URL": plaid.base_url, "PLAID_WEBHOOK_URL": f"{channel}/plaid",
            "BANK_LINK_REDIRECT_URL": f"{channel}/done"}, "$", "$1,204.10")
    finally:
        plaid.stop()


async def finish_on_the_providers_page(url: str) -> str:
    """What the customer does in the browser: open the page, tap its button; where the browser goes next."""
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as page:
            assert page.status == 200 and "Link my account" in await page.text()
        async with http.post(url, allow_redirects=False) as done:
            assert done.status == 303, await done.text()
            return done.headers["Location"]


DONE_WORDS = ("confirmed it", "✅", "sent", "done")


def confirmation(calls: list[GraphCall]) -> GraphCall | None:
    return next((c for c in calls if [t for _, t in c.buttons] == ["Yes", "No"]), None)


async def until_confirmation(chat: Chat, request: dict[str, str]) -> GraphCall:
    """Say ``request``; answer a pay-from choice (or any other one-tap question) with the Mono customer's
    one account (Savings) when offered, else its first option, until the confirmation with Yes/No comes."""
    for _ in range(4):
        _, calls = await chat.say(request, lambda cs: confirmation(cs) is not None or any(c.rows or c.buttons
                                                                                         for c in cs))
        shown = confirmation(calls)
        if shown is not None:
            return shown
        choice = next(c for c in calls if c.rows or c.buttons)
        kind, options = ("list_reply", choice.rows) if choice.rows else ("button_reply", choice.buttons)
        request = tap(kind, choice, next((i for i, title in options if title == "Savings"), options[0][0]))
    raise AssertionError("no confirmation after four answers")


async def decide_on_monos_page(url: str, decision: str) -> str:
    """The customer's browser on DirectPay's page: open it, tap Approve or Decline; where it goes next."""
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as page:
            text = await page.text()
            assert page.status == 200 and "Approve" in text and "Decline" in text, text
        async with http.post(url, data={"decision": decision}, allow_redirects=False) as done:
            assert done.status == 303, await done.text()
            return done.headers["Location"]


async def pay_through_monos_page(stack: BotStack, chat: Chat, mono: FakeMono) -> None:
    """A transfer approved on Mono's page, then one declined there, then the declined one's YES again."""
    balances = ["₦87,654.32"]
    for amount, decision, outcome in (("5k", "approve", "confirmed it"), ("2k", "decline", "was not approved")):
        shown = await until_confirmation(chat, text(f"send {amount} to 0123456789 gtb"))
        # DirectPay collects into our own account: the confirmation says so, never "send to" the recipient
        assert "Mono DirectPay" in shown.text and "into our account" in shown.text, shown.text
        assert "Send *" not in shown.text, shown.text
        yes, _ = yes_no(shown)
        op_ref = json.loads(yes[len("/affirm"):])["op_ref"]
        tapped, calls = await chat.say(tap("button_reply", shown, yes), mentions("Mono"))
        (pending,) = [c for c in calls if "Mono" in c.text]
        assert "approve" in pending.text and not any(w in c.text for c in calls for w in DONE_WORDS), describe(calls)
        assert "into our account" in pending.text, pending.text
        (url,) = LINK.findall(pending.text)
        assert url.startswith(mono.base_url)  # Mono's page, not ours
        start = stack.outbox.mark()
        assert await decide_on_monos_page(url, decision) == mono.payments[op_ref]["redirect_url"]
        # Mono's webhook reaches the chat; the customer hears Mono's verdict without typing anything
        calls = await stack.outbox.wait_for(start, mentions(outcome), timeout=TURN_TIMEOUT, quiet=1.0)
        assert len(calls) == 1, describe(calls)
        if decision == "approve":
            assert "₦5,000" in calls[0].text and "Ref:" in calls[0].text
            assert "collected into our account by Mono DirectPay" in calls[0].text, calls[0].text
            balances.append("₦82,654.32")
        else:
            assert "nothing was paid" in calls[0].text and "confirmed it" not in calls[0].text
        await chat.say(text("what is my balance"), mentions("balances at", balances[-1]))
        assert mono.initiations(op_ref) == 1, "one payment started at Mono per operation"

    # the declined transfer's Yes again: delivered twice by Meta, and tapped again; nothing is started or paid
    start = stack.outbox.mark()
    assert await stack.replay(tapped.id) == 200
    _, calls = await chat.say(tap("button_reply", shown, yes), mentions("not approved"))
    again = stack.outbox.calls[start:]
    assert not any("confirmed it" in c.text or LINK.search(c.text) for c in again), describe(again)
    assert mono.initiations(op_ref) == 1 and mono.payments[op_ref]["status"] == "cancelled"
    await chat.say(text("what is my balance"), mentions("balances at", balances[-1]))


def connected(calls: list[GraphCall]) -> bool:
    return any(c.type == "button" and "is connected" in c.text for c in calls)


def mentions(*fragments: str) -> Any:
    return lambda calls: any(all(f in c.text for f in fragments) for c in calls)


@pytest.mark.parametrize("name", ["sandbox", "mono", "plaid"])
async def test_connect_then_balance_and_transactions_with_each_provider(name: str) -> None:
    rasa_port = free_port()
    with provider(name, rasa_port) as bank:
        async with bot_stack(environment=bank.environment, rasa_port=rasa_port) as stack:
            chat = Chat(stack, USER)

            _, calls = await chat.say(text("connect my bank"), has("list"))
            banks = calls[-1]
            assert (GTBANK, "GTBank") in banks.rows, describe(calls)

            if name == "sandbox":  # the sandbox bank connects at once
                _, calls = await chat.say(tap("list_reply", banks, GTBANK), connected)
            else:
                _, calls = await chat.say(tap("list_reply", banks, GTBANK), mentions("Open this link"))
                (invitation,) = [c for c in calls if "Open this link" in c.text]
                assert "Never forward this link" in invitation.text and USER not in invitation.text
                (url,) = LINK.findall(invitation.text)
                assert url.startswith(bank.fake.base_url)  # the provider's own page, not ours
                start = stack.outbox.mark()
                back_to = await finish_on_the_providers_page(url)
                assert back_to == bank.environment["BANK_LINK_REDIRECT_URL"]
                # the webhook reaches the channel; the customer is told without typing anything
                calls = await stack.outbox.wait_for(start, connected, timeout=TURN_TIMEOUT, quiet=1.0)
                assert [d["status"] for d in bank.fake.webhooks.deliveries] == [200]
            message = next(c for c in calls if "is connected" in c.text)
            assert message.body["to"] == USER
            assert "✅ GTBank is connected!" in message.text and bank.balance in message.text, message.text

            _, calls = await chat.say(text("what is my balance"), mentions(bank.balance))
            assert all("₦" not in c.text for c in calls) or bank.currency_mark == "₦", describe(calls)
            if name == "plaid":  # every deposit account, the CD beside the savings account too
                assert mentions("Plaid Saving", "Plaid CD (******2222)")(calls), describe(calls)

            _, calls = await chat.say(text("show my transactions this month"), mentions("Total: " + bank.currency_mark))
            listing = next(c for c in calls if "Total: " in c.text)
            lines = [line for line in listing.text.splitlines() if line.startswith("• ")]
            assert lines and all(bank.currency_mark in line for line in lines), listing.text
            if bank.currency_mark != "₦":
                assert "₦" not in listing.text

            if name == "mono":  # DirectPay: YES, then approve (or decline) on Mono's page
                await pay_through_monos_page(stack, chat, bank.fake)

            if name == "plaid":  # read-only for money: a transfer is refused, nothing asked for confirmation
                _, calls = await chat.say(text("send 5k to 0123456789 gtbank"),
                                          lambda cs: mentions("can't move money")(cs) or any(c.rows or c.buttons
                                                                                             for c in cs))
                if not mentions("can't move money")(calls):
                    choice = next(c for c in calls if c.rows or c.buttons)
                    kind, options = ("list_reply", choice.rows) if choice.rows else ("button_reply", choice.buttons)
                    _, calls = await chat.say(tap(kind, choice, options[0][0]), mentions("can't move money"))
                assert not any(c.buttons and c.buttons[0][1] == "Yes" for c in calls), describe(calls)
                # nor do the menus offer it
                _, calls = await chat.say(text("help"), mentions("show your money but not move it"))
                menu = next(c for c in calls if c.rows or c.buttons)
                offered = {title for _, title in (menu.rows or menu.buttons)}
                assert offered and not offered & {"Send money", "Pay a bill", "Buy airtime"}, describe(calls)

            stack.check_no_errors_logged()
