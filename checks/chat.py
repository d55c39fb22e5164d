"""A customer's side of a conversation with the whole stack (``checks.stack.bot_stack``), for the
end-to-end tests: the requests the chat page sends (``text``, ``tap``), turn predicates over the
bot's Graph API messages (``has``, ``types``), a confirmation's Yes and No buttons (``yes_no``),
and ``Chat``, which delivers one message and waits until the bot's turn is over."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from checks.stack import BotStack, GraphCall, describe
from sandbox.fake_meta.state import ChatMessage

YES_BUTTON = re.compile(r'/affirm\{"op_ref":"[0-9a-f]{32}"\}')


def yes_no(message: GraphCall) -> tuple[str, str]:
    """The ids of a confirmation's Yes and No buttons: each names the operation it answers."""
    (yes, yes_title), (no, no_title) = message.buttons
    assert (yes_title, no_title) == ("Yes", "No") and YES_BUTTON.fullmatch(yes), message.buttons
    assert no == yes.replace("/affirm", "/deny", 1), message.buttons
    return yes, no


TURN_TIMEOUT = 60.0
QUIET = 1.0  # a turn is over once its last expected message came and nothing followed for this long


def types(calls: list[GraphCall]) -> list[str]:
    return [call.type for call in calls]


def has(kind: str, *fragments: str) -> Callable[[list[GraphCall]], bool]:
    """A bot message of ``kind`` whose text holds every fragment has arrived."""
    return lambda calls: any(c.type == kind and all(f in c.text for f in fragments) for c in calls)


def text(body: str) -> dict[str, str]:
    return {"type": "text", "text": body}


def tap(kind: str, message: GraphCall, choice_id: str) -> dict[str, str]:
    """A tap on a reply button (``button_reply``) or a list row (``list_reply``) of the bot's ``message``."""
    choices = message.buttons if kind == "button_reply" else message.rows
    assert choice_id in [i for i, _ in choices], f"{choice_id!r} is not offered: {describe([message])}"
    return {"type": kind, "context_id": message.id, "id": choice_id}


@dataclass
class Chat:
    """One user's conversation with the stack."""

    stack: BotStack
    user: str

    async def say(
        self, request: Mapping[str, Any], until: Callable[[list[GraphCall]], bool]
    ) -> tuple[ChatMessage, list[GraphCall]]:
        """Deliver one user message; the bot's messages of that turn once ``until`` holds and it went quiet."""
        start = self.stack.outbox.mark()
        message = await self.stack.send(self.user, request)
        try:
            calls = await self.stack.outbox.wait_for(start, until, timeout=TURN_TIMEOUT, quiet=QUIET)
        except asyncio.TimeoutError as error:
            self.stack.check_alive()
            log = self.stack.rasa.tail()
            raise AssertionError(f"after {dict(request)}: {error}\n--- rasa run log:\n{log}") from None
        for call in calls:
            assert call.wa_id == self.user and call.body["to"] == self.user, "a reply went to someone else"
            assert call.body["messaging_product"] == "whatsapp"
        return message, calls
