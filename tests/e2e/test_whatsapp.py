"""One WhatsApp conversation through the whole product, as Meta would carry it.

The fake Meta (``sandbox``) delivers each user message as a signed webhook POST in
Meta's payload shape to ``rasa run`` (the trained model, the WhatsApp channel from
credentials.yml, endpoints.yml's tracker store), whose actions run on a real action
server; everything the bot says is read back from what the fake Graph API received.

    PYTHONPATH=. RASA_TELEMETRY_ENABLED=false .venv/bin/python -m pytest tests/e2e -q    # or: make test-e2e
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from banking.sandbox import SandboxProvider
from checks.chat import QUIET, Chat, has, tap, text, types, yes_no
from checks.stack import bot_stack, describe
from sandbox.fake_meta.state import ChatMessage

pytestmark = pytest.mark.e2e

USER = "2348000000001"  # Ada Okafor, the sandbox's first simulated user
LAGOS = ZoneInfo("Africa/Lagos")
DUPLICATE_LOG = "Duplicate WhatsApp message"

MENU = [("/check_balance", "Check balance"), ("/transfer_money", "Send money"), ("/help", "More options")]
GTBANK = '/inform{"bank":"GTBank"}'
CHECKING = '/inform{"account_type":"checking"}'
GOOD = '/rate_experience{"rating":"good"}'


def expiry_times(before: float, after: float, ttl_seconds: int = 300) -> set[str]:
    """Every Lagos HH:MM the confirmation's expiry can show, given when it was asked for."""
    first = datetime.fromtimestamp(before, timezone.utc) + timedelta(seconds=ttl_seconds)
    last = datetime.fromtimestamp(after, timezone.utc) + timedelta(seconds=ttl_seconds)
    shown, moment = set(), first.replace(second=0, microsecond=0)
    while moment <= last:
        shown.add(moment.astimezone(LAGOS).strftime("%H:%M"))
        moment += timedelta(minutes=1)
    return shown


async def test_a_customer_connects_a_bank_and_sends_money_once_over_whatsapp() -> None:
    async with bot_stack() as stack:
        assert stack.sandbox.bot_webhook["state"] == "verified"  # Meta's GET handshake with the verify token
        chat = Chat(stack, USER)
        user_messages: list[ChatMessage] = []

        # "hi": the greeting with the main menu as reply buttons.
        sent, calls = await chat.say(text("hi"), has("button"))
        user_messages.append(sent)
        assert types(calls) == ["button"], describe(calls)
        assert "Hello" in calls[0].text and "assistant" in calls[0].text
        assert calls[0].buttons == MENU

        # "connect my bank": ten banks are more than 3 buttons, so a list.
        sent, calls = await chat.say(text("connect my bank"), has("list"))
        user_messages.append(sent)
        assert types(calls) == ["list"], describe(calls)
        banks = calls[0]
        assert "Which bank" in banks.text
        assert banks.body["interactive"]["action"]["button"] == "Choose"
        assert (GTBANK, "GTBank") in banks.rows
        assert len(banks.rows) == 10 and {"Access Bank", "Zenith Bank", "UBA"} <= {t for _, t in banks.rows}

        # GTBank chosen from the list: connected, with the sandbox bank's opening balances.
        sent, calls = await chat.say(tap("list_reply", banks, GTBANK), has("button", "GTBank is connected"))
        user_messages.append(sent)
        assert types(calls) == ["button"], describe(calls)
        connected = calls[0].text
        assert re.search(r"Checking \(\*+\d{4}\): ₦45,320\.50", connected), connected
        assert re.search(r"Savings \(\*+\d{4}\): ₦125,450\b", connected), connected
        assert calls[0].buttons == MENU

        # A transfer in one sentence: the receiving account's holder, then which account pays.
        sent, calls = await chat.say(text("send 5k to 0123456789 gtbank"), has("button", "Which account"))
        user_messages.append(sent)
        assert types(calls) == ["text", "button"], describe(calls)
        holder_match = re.fullmatch(r"Account name: \*(.+)\* \(GTBank\)\.", calls[0].text)
        assert holder_match, calls[0].text
        holder = holder_match.group(1)
        assert holder.casefold() == SandboxProvider().name_enquiry("0123456789", "GTBank").casefold()
        source_question = calls[1]
        assert source_question.buttons == [(CHECKING, "Checking"), ('/inform{"account_type":"savings"}', "Savings")]

        # Checking tapped: the confirmation names amount, source, holder and expiry, with Yes/No.
        before = time.time()
        sent, calls = await chat.say(tap("button_reply", source_question, CHECKING), has("button", "confirm"))
        after = time.time()
        user_messages.append(sent)
        assert types(calls) == ["button"], describe(calls)
        confirmation = calls[0]
        assert "*₦5,000*" in confirmation.text and "*Checking*" in confirmation.text, confirmation.text
        assert f"{holder}, GTBank ******6789" in confirmation.text, confirmation.text
        expiry = re.search(r"expires at (\d{2}:\d{2}) \(5 min\)", confirmation.text)
        assert expiry and expiry.group(1) in expiry_times(before, after), confirmation.text
        yes_id, _ = yes_no(confirmation)

        # Yes tapped: the money moves once, and the new Checking balance is shown.
        yes, calls = await chat.say(tap("button_reply", confirmation, yes_id), has("text", "Sent!"))
        user_messages.append(yes)
        assert types(calls) == ["text", "button"], describe(calls)
        rating_question = calls[1]  # 👍/👎 once the task is done
        assert rating_question.buttons == [(GOOD, "👍"), ('/rate_experience{"rating":"bad"}', "👎")]
        done = calls[0].text
        assert f"₦5,000 to {holder}, GTBank ******6789" in done, done
        assert "Checking balance: ₦40,320.50" in done, done
        reference = re.search(r"Ref: (\S+)", done)
        assert reference, done

        # Meta delivers the same webhook again (same message id): nothing at all happens.
        start, receipts = stack.outbox.mark(), len(stack.sandbox.read_receipts)
        assert stack.rasa.log_text().count(DUPLICATE_LOG) == 0
        assert await stack.replay(yes.id) == 200
        deadline = time.monotonic() + 15
        while DUPLICATE_LOG not in stack.rasa.log_text():
            assert time.monotonic() < deadline, f"the replay was not recognised:\n{stack.rasa.tail()}"
            await asyncio.sleep(0.1)
        await asyncio.sleep(2 * QUIET)
        assert stack.outbox.calls[start:] == [], describe(stack.outbox.calls[start:])
        assert len(stack.sandbox.read_receipts) == receipts  # not even marked read again

        # A new tap on Yes (a new message): "already done", and nothing moves.
        again, calls = await chat.say(tap("button_reply", confirmation, yes_id), has("text", "already"))
        user_messages.append(again)
        assert types(calls) == ["text"], describe(calls)
        assert f"already completed (Ref: {reference.group(1)})" in calls[0].text, calls[0].text
        assert "Sent!" not in calls[0].text

        # The balance shows the one transfer.
        sent, calls = await chat.say(text("what is my balance"), has("text", "balances"))
        user_messages.append(sent)
        assert types(calls) == ["text"], describe(calls)
        assert re.search(r"Checking \(\*+\d{4}\): ₦40,320\.50", calls[0].text), calls[0].text
        assert re.search(r"Savings \(\*+\d{4}\): ₦125,450\b", calls[0].text), calls[0].text

        # 👍 tapped on the rating question: thanked once; a second tap is only acknowledged.
        sent, calls = await chat.say(tap("button_reply", rating_question, GOOD), has("text", "Thank you!"))
        user_messages.append(sent)
        sent, calls = await chat.say(tap("button_reply", rating_question, GOOD), has("text", "already have"))
        user_messages.append(sent)

        # Every new message was marked read with a typing indicator, once, in order.
        assert [r["message_id"] for r in stack.sandbox.read_receipts] == [m.id for m in user_messages]
        assert all(r["typing_indicator"] for r in stack.sandbox.read_receipts)
        # The bot took every webhook Meta sent (messages and sent/delivered statuses).
        assert {d["status"] for d in stack.sandbox.webhook_deliveries} == {200}
        assert stack.rasa.log_text().count(DUPLICATE_LOG) == 1
        stack.check_no_errors_logged()
