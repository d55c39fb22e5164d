"""Every side door into a customer's conversation or money, tried against the running stack.

The stack is started as the product starts it (``python -m connectors.rasa_server`` with
credentials.yml and endpoints.yml, ``rasa run actions`` with the project's plugin), and the
attacker knows what the issue assumes: the customer's phone number, and where our servers
listen. Each door is tried over real HTTP; the customer's own WhatsApp messages then show
what the attempts did (nothing).

    PYTHONPATH=. .venv/bin/python -m pytest tests/e2e/test_attacker.py -q    # inside `make test-e2e`
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from checks.chat import Chat, has, tap, text, yes_no
from checks.stack import HOST, BotStack, GraphCall, describe

pytestmark = pytest.mark.e2e

VICTIM = "2348000000007"
GTBANK = '/inform{"bank":"GTBank"}'
CHECKING = '/inform{"account_type":"checking"}'
OPENING = "₦45,320.50"


def forged_action_call(action: str, sender: str, op_id: str = "0" * 32) -> dict[str, object]:
    """What an attacker would post to the action server: any action, any customer, a made-up YES."""
    return {
        "next_action": action, "sender_id": sender, "version": "3.6.21", "domain": {},
        "tracker": {"sender_id": sender, "slots": {"pending_op_id": op_id}, "events": [],
                    "latest_message": {"text": "yes", "intent": {"name": "affirm", "confidence": 1.0},
                                       "entities": []},
                    "active_loop": {}, "latest_action_name": "action_listen", "paused": False},
    }


def listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses a LISTEN socket on ``port`` is bound to, from /proc/net/tcp."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, local_port = local.split(":")
        if state == "0A" and int(local_port, 16) == port:
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


async def status_of(http: aiohttp.ClientSession, method: str, url: str, **kwargs: object) -> tuple[int, str]:
    async with http.request(method, url, **kwargs) as response:
        return response.status, await response.text()


async def balances(chat: Chat) -> str:
    _, calls = await chat.say(text("what is my balance"), has("text", "balances"))
    return calls[-1].text


async def confirmation_for(chat: Chat, request: str) -> GraphCall:
    """Ask for a transfer to another bank account, pay from Checking: the confirmation message."""
    _, calls = await chat.say(text(request), has("button", "Which account"))
    _, calls = await chat.say(tap("button_reply", calls[-1], CHECKING), has("button", "confirm"))
    return calls[-1]


def tap_yes(confirmation: GraphCall) -> dict[str, str]:
    return tap("button_reply", confirmation, yes_no(confirmation)[0])


async def test_side_doors_are_closed_and_a_yes_answers_one_confirmation(unlimited_stack: BotStack) -> None:
    stack = unlimited_stack
    chat = Chat(stack, VICTIM)
    _, calls = await chat.say(text("connect my bank"), has("list"))
    await chat.say(tap("list_reply", calls[-1], GTBANK), has("button", "GTBank is connected"))
    await attack_rasa_http_api(stack)
    await attack_rest_channel(stack)
    await attack_action_server(stack)
    await attack_with_a_negative_length(stack)
    assert OPENING in await balances(chat), "nothing the attacker sent moved money"

    await yes_for_an_older_confirmation(chat)
    await yes_after_the_conversation_moved_on(chat)
    await symbols_are_no_yes(chat)
    await freeze_survives_unlinking_and_unfreeze_waits(chat)
    stack.check_alive()


async def attack_rasa_http_api(stack: BotStack) -> None:
    base = f"http://{HOST}:{stack.rasa_port}"
    conversation = f"{base}/conversations/{VICTIM}"
    attempts = [
        ("GET", f"{conversation}/tracker", {}),
        ("POST", f"{conversation}/trigger_intent", {"json": {"name": "affirm"}}),
        ("POST", f"{conversation}/messages", {"json": {"text": "/affirm", "sender": "user"}}),
        ("POST", f"{conversation}/tracker/events", {"json": [{"event": "slot", "name": "pending_op_id",
                                                               "value": "x"}]}),
        ("PUT", f"{base}/model", {"json": {"model_file": "/tmp/evil.tar.gz"}}),
        ("GET", f"{base}/status", {}),
    ]
    async with aiohttp.ClientSession() as http:
        for method, url, options in attempts:
            status, body = await status_of(http, method, url, **options)
            assert status in (404, 405), f"{method} {url} answered {status}: {body[:200]}"
            assert "sender_id" not in body and "pending_op_id" not in body  # a 404 page, no conversation


async def attack_rest_channel(stack: BotStack) -> None:
    async with aiohttp.ClientSession() as http:
        for message in ("transfer 20k to savings", "checking", "/affirm"):
            status, body = await status_of(http, "POST", f"http://{HOST}:{stack.rasa_port}/webhooks/rest/webhook",
                                           json={"sender": VICTIM, "message": message})
            assert status == 404, f"the REST channel answered {status}: {body[:200]}"


async def attack_action_server(stack: BotStack) -> None:
    assert listening_addresses(stack.action_port) == {"127.0.0.1"}, "the action server listens beyond loopback"
    url = f"http://{HOST}:{stack.action_port}"
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer guessed-token"}, {"Authorization": stack.action_token}):
            for action in ("action_check_balance", "action_confirm_pending"):
                status, body = await status_of(http, "POST", f"{url}/webhook", headers=headers,
                                               json=forged_action_call(action, VICTIM))
                assert status == 401, f"{action} with {list(headers)} answered {status}: {body[:200]}"
                assert "₦" not in body
            status, _ = await status_of(http, "GET", f"{url}/actions", headers=headers)
            assert status == 401
        status, _ = await status_of(http, "GET", f"{url}/health")
        assert status == 200  # only the health check is open


async def attack_with_a_negative_length(stack: BotStack) -> None:
    """One unsigned request declaring "Content-Length: -1" once stalled the whole of `rasa run`."""
    for port, path in ((stack.rasa_port, "/webhooks/whatsapp/webhook"), (stack.rasa_port, "/"),
                       (stack.action_port, "/webhook")):
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\nabc".encode())
        await writer.drain()
        status = int((await asyncio.wait_for(reader.readline(), 10)).split()[1])
        writer.close()
        assert status == 400, f"{port}{path} answered {status}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        status, _ = await status_of(http, "GET", f"http://{HOST}:{stack.rasa_port}/webhooks/whatsapp/")
        assert status == 200, "the server still answers"


async def yes_for_an_older_confirmation(chat: Chat) -> None:
    older = await confirmation_for(chat, "send 10k to 0123456789 gtbank")
    newer = await confirmation_for(chat, "send 5k to 0123456789 gtbank")
    assert "*₦10,000*" in older.text and "*₦5,000*" in newer.text and yes_no(older) != yes_no(newer)

    # The customer scrolls up and taps Yes on the ₦10,000 one: nothing moves; the open one is shown again.
    _, calls = await chat.say(tap_yes(older), has("button", "confirm"))
    assert "earlier request" in calls[0].text and "*₦5,000*" in calls[-1].text, describe(calls)
    assert yes_no(calls[-1]) == yes_no(newer)
    assert OPENING in await balances(chat)
    # The balance question closed the ₦5,000 one too: its Yes now moves nothing either.
    _, calls = await chat.say(tap_yes(newer), has("text", "nothing was moved"))
    assert "closed" in calls[-1].text, describe(calls)
    assert OPENING in await balances(chat)


async def yes_after_the_conversation_moved_on(chat: Chat) -> None:
    await confirmation_for(chat, "send 5k to 0123456789 gtbank")
    await chat.say(text("thanks"), lambda calls: bool(calls))
    _, calls = await chat.say(text("yes"), has("text", "nothing was moved"))
    assert "closed" in calls[-1].text, describe(calls)
    assert OPENING in await balances(chat)


async def symbols_are_no_yes(chat: Chat) -> None:
    """An emoji or punctuation typed right after a confirmation ("❌" meant as no, "🤔", "!!")."""
    await confirmation_for(chat, "send 5k to 0123456789 gtbank")
    for symbols in ("❌", "🤔", "!!"):
        _, calls = await chat.say(text(symbols), lambda calls: bool(calls))
        assert not any("Sent" in call.text for call in calls), describe(calls)
    assert OPENING in await balances(chat)


async def transfer_attempt(chat: Chat) -> str:
    """"send 5k to 0123456789 gtbank", paying from Checking if asked: what the bot answered."""
    def answered(calls: list) -> bool:
        return any("frozen" in c.text or "confirm" in c.text or "Which account" in c.text for c in calls)

    _, calls = await chat.say(text("send 5k to 0123456789 gtbank"), answered)
    if calls[-1].type == "button" and "Which account" in calls[-1].text:
        _, calls = await chat.say(tap("button_reply", calls[-1], CHECKING), answered)
    return describe(calls)


async def freeze_survives_unlinking_and_unfreeze_waits(chat: Chat) -> None:
    _, calls = await chat.say(text("freeze my account"), has("button", "FREEZE"))
    await chat.say(tap_yes(calls[-1]), has("text", "frozen"))
    _, calls = await chat.say(text("disconnect my bank"), has("button", "disconnect"))
    await chat.say(tap_yes(calls[-1]), has("text", "disconnected"))
    _, calls = await chat.say(text("connect my bank"), has("list"))
    await chat.say(tap("list_reply", calls[-1], GTBANK), has("button", "GTBank is connected"))

    seen = await transfer_attempt(chat)
    assert "accounts are frozen" in seen and "Sent!" not in seen, seen

    # Whoever holds the phone can say YES to an unfreeze: it waits out the cooling-off.
    _, calls = await chat.say(text("unfreeze my account"), has("button", "hours after your YES"))
    _, calls = await chat.say(tap_yes(calls[-1]), has("button", "unfreeze at"))
    assert re.search(r"unfreeze at \d{2}:\d{2} on \w{3} \d+ \w{3}", calls[-1].text), describe(calls)
    seen = await transfer_attempt(chat)
    assert "accounts are frozen" in seen and "Sent!" not in seen, seen
    # The customer (or the bank) stops it.
    _, calls = await chat.say(text("cancel"), has("text", "unfreeze is cancelled"))
    assert OPENING in await balances(chat)
