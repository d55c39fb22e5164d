"""The chat page in a real headless Chromium, against a fake bot that answers like the
real WhatsApp channel (read receipt and typing, then a text, reply buttons and a list).

Needs Debian's Chromium (``apt-get install chromium``) and the ``playwright`` package;
``playwright install`` is never run: Playwright drives ``/usr/bin/chromium``.
Saves ``results/sandbox_chat.png``.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox.sandbox_fakes import USER, FakeBot, eventually, start_stack, stop_stack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "results" / "sandbox_chat.png"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="the playwright package is not installed (pip install playwright; never `playwright install`)",
    ),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install -y chromium)"),
]


async def banking_bot(bot: FakeBot, message: dict[str, Any]) -> None:
    """What the Rasa channel does for each message: read + typing, then the bot's answers."""
    await bot.mark_read(message["id"], typing=True)
    await asyncio.sleep(0.4)  # the bot "thinks"; the page shows typing…
    to = message["from"]
    if message["type"] == "text":
        await bot.send_text(to, "Hi *Ada*! I'm your bank assistant.\nI can check balances, send money and pay bills.")
        await bot.send_buttons(
            to, "What would you like to do?", [("check_balance", "Check balance"), ("transfer_money", "Send money")]
        )
        await bot.send_list(
            to,
            "Which account should I look at?",
            "Choose account",
            [("acct_checking", "Checking", "Everyday spending"), ("acct_savings", "Savings", "Rainy-day money")],
        )
    elif message["type"] == "interactive" and message["interactive"]["type"] == "button_reply":
        await bot.send_text(to, f"Okay: *{message['interactive']['button_reply']['title']}*. Pick an account above.")
    elif message["type"] == "interactive":
        await bot.send_text(to, "Your *Savings* balance is *₦125,450.00*.\nAvailable: ₦125,450.00")


async def test_chatting_in_the_page_drives_the_bot_through_real_webhooks() -> None:
    from playwright.async_api import async_playwright

    stack = await start_stack(FakeBot("", "", on_message=banking_bot), status_delay=0.1, verify_webhook_on_start=True)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
            try:
                page = await browser.new_page(viewport={"width": 1200, "height": 1000})
                problems: list[str] = []
                page.on("pageerror", lambda error: problems.append(str(error)))
                page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
                await page.goto(f"{stack.base}/")
                await page.wait_for_selector(f'.chat-item.active[data-wa-id="{USER}"]')

                # Type a message: it goes to the bot as a signed text webhook.
                await page.fill("#composer-input", "Hi, wetin be my balance?")
                await page.press("#composer-input", "Enter")
                await page.wait_for_selector(".row.in .reply-button[data-reply-id='check_balance']")
                await page.wait_for_selector(".row.in .list-open")
                first = stack.bot.messages()[0]
                assert first["type"] == "text" and first["text"]["body"] == "Hi, wetin be my balance?"
                assert await page.locator(".row.in .text").first.inner_html() == (
                    "Hi <strong>Ada</strong>! I'm your bank assistant.<br>I can check balances, send money and pay "
                    'bills.<span class="meta-spacer"></span>'
                )

                # Tap a reply button: Meta's button_reply with the button's id and title.
                await page.click(".reply-button[data-reply-id='check_balance']")
                button_reply = await eventually(
                    lambda: [m for m in stack.bot.messages() if m.get("interactive", {}).get("type") == "button_reply"]
                )
                assert button_reply[0]["interactive"]["button_reply"] == {
                    "id": "check_balance",
                    "title": "Check balance",
                }
                await page.wait_for_selector(".row.in .text >> text=Pick an account above")

                # Open the list and choose a row: Meta's list_reply.
                await page.click(".list-open")
                await page.wait_for_selector(".sheet .list-row[data-row-id='acct_savings']")
                await page.click(".list-row[data-row-id='acct_savings']")
                list_reply = await eventually(
                    lambda: [m for m in stack.bot.messages() if m.get("interactive", {}).get("type") == "list_reply"]
                )
                assert list_reply[0]["interactive"]["list_reply"] == {
                    "id": "acct_savings",
                    "title": "Savings",
                    "description": "Rainy-day money",
                }
                (list_message,) = [
                    m
                    for m in stack.sandbox.threads[USER].messages
                    if m.content.get("interactive", {}).get("type") == "list"
                ]
                assert list_reply[0]["context"]["id"] == list_message.id
                await page.wait_for_selector(".row.in .text >> text=Available: ₦125,450.00")

                # Blue ticks: the bot marked every user message read.
                await eventually(lambda: stack.sandbox.threads[USER].messages[-2].status == "read")
                await page.wait_for_function("document.querySelectorAll('.row.out .ticks.read').length === 3")
                # The page showed the bot's messages, so each got sent, delivered and read statuses.
                bot_ids = [m.id for m in stack.sandbox.threads[USER].messages if m.sender == "bot"]
                await eventually(
                    lambda: {s["id"] for s in stack.bot.statuses() if s["status"] == "read"} == set(bot_ids),
                    what="read statuses for every bot message",
                )
                assert stack.bot.bad_signatures == 0
                await page.wait_for_selector("#bot-dot.verified")
                assert problems == []

                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(SCREENSHOT))

                # Another simulated user has a thread of their own.
                await page.fill("#new-phone", "+234 800 000 0009")
                await page.fill("#new-name", "Chidi")
                await page.click("#new-user button[type=submit]")
                await page.wait_for_selector('.chat-item.active[data-wa-id="2348000000009"]')
                assert await page.locator(".row").count() == 0
                await page.click("#voice")
                await page.wait_for_selector(".row.out .voice")
                voice = await eventually(lambda: [m for m in stack.bot.messages() if m["type"] == "audio"])
                assert voice[0]["from"] == "2348000000009" and voice[0]["audio"]["voice"] is True
            finally:
                await browser.close()
    finally:
        await stop_stack(stack)
    assert SCREENSHOT.stat().st_size > 10_000
