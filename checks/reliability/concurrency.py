"""Concurrency: many customers writing at once through the channel; every balance and ledger must add up."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import defaultdict

from rasa.core.channels.channel import UserMessage

from checks.reliability.common import Outcome, sender_number, served_channel
from checks.whatsapp_fakes import (
    RecordingAgent,
    text_webhook,
)
from connectors.whatsapp.ratelimit import RateLimitConfig


async def concurrency(users: int = 50, messages_per_user: int = 20, seed: int = 1) -> Outcome:
    """``users`` users at once, each sending ``messages_per_user`` messages in order, over real HTTP.

    The rate limit is switched off explicitly: the point is the channel's plumbing under load.
    """
    outcome = Outcome(f"concurrency: {users} users x {messages_per_user} messages")
    started = time.perf_counter()
    rng = random.Random(seed)
    handled: dict[str, list[str]] = defaultdict(list)

    async def reply(message: UserMessage) -> None:
        handled[message.sender_id].append(message.text or "")
        await asyncio.sleep(rng.random() * 0.003)  # Rasa takes a moment; users overtake each other
        await message.output_channel.send_text_message(message.sender_id, f"ack {message.text}")

    agent = RecordingAgent()
    agent.responder = reply
    statuses: list[int] = []
    async with served_channel(RateLimitConfig.unlimited(), agent=agent) as (graph, channel, server):
        senders = [sender_number(index) for index in range(users)]

        async def user(index: int) -> None:
            for number in range(messages_per_user):
                payload = text_webhook(senders[index], f"wamid.load-{index}-{number}", f"u{index} m{number}")
                statuses.append((await server.post(payload))[0])

        await asyncio.gather(*(user(index) for index in range(users)))
        await server.settle(timeout=120)
        replies = graph.delivered()

    expected = {sender: [f"u{index} m{number}" for number in range(messages_per_user)]
                for index, sender in enumerate(senders)}
    total = users * messages_per_user
    received = sum(len(texts) for texts in handled.values())
    distinct = sum(len(set(texts)) for texts in handled.values())
    lost = sum(len(set(texts) - set(handled.get(sender, []))) for sender, texts in expected.items())
    out_of_order = sum(1 for sender, texts in expected.items() if handled.get(sender) != texts)
    cross_talk = 0
    replies_to: dict[str, list[str]] = defaultdict(list)
    for body in replies:
        text = body.get("text", {}).get("body", "")
        match = re.fullmatch(r"ack u(\d+) m(\d+)", text)
        if match is None or body.get("to") != senders[int(match.group(1))]:
            cross_talk += 1
            continue
        replies_to[body["to"]].append(text.removeprefix("ack "))
    replies_in_order = sum(1 for sender, texts in expected.items() if replies_to.get(sender) == texts)
    server_errors = sum(1 for status in statuses if status >= 500)

    outcome.figures.update({
        "messages sent": total,
        "webhook answers 200": sum(1 for status in statuses if status == 200),
        "5xx responses": server_errors,
        "messages handed to the bot": received,
        "lost messages": lost,
        "duplicates handed on": received - distinct,
        "users handled out of order": out_of_order,
        "replies delivered": len(replies),
        "replies to the wrong user": cross_talk,
        "users whose replies arrived in order": replies_in_order,
    })
    outcome.check(statuses == [200] * total, f"{total - statuses.count(200)} webhook posts were not answered 200")
    outcome.check(lost == 0, f"{lost} messages were lost")
    outcome.check(received == distinct == total, f"{received} handed on for {total} sent ({distinct} distinct)")
    outcome.check(out_of_order == 0, f"{out_of_order} users' messages were handled out of order")
    outcome.check(cross_talk == 0, f"{cross_talk} replies went to the wrong user")
    outcome.check(len(replies) == total, f"{len(replies)} replies delivered for {total} messages")
    outcome.check(replies_in_order == users, f"only {replies_in_order} of {users} users got their replies in order")
    outcome.seconds = time.perf_counter() - started
    return outcome
