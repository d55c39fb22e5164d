"""Graph API outage: Meta failing for a while; the channel retries and every reply arrives once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from checks.reliability.common import Outcome, captured_logs, sender_number, served_channel
from checks.whatsapp_fakes import FakeGraphApi, text_webhook
from connectors.whatsapp.graph import RetryPolicy
from connectors.whatsapp.ratelimit import RateLimitConfig
from sandbox.fake_meta.graph_api import Scripted, graph_error


class OutageGraphApi(FakeGraphApi):
    """The fake Graph API, with a switch that makes every call fail with 503 until it is turned back."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def _scripted(self, kind: str) -> Scripted | None:
        if self.down:
            return Scripted(503, graph_error(2, "Service temporarily unavailable"))
        return await super()._scripted(kind)


async def graph_outage(users: int = 20, outage_seconds: float = 0.15) -> Outcome:
    """Meta down then back (replies retried and delivered), then down for longer than the retry budget
    (every undelivered reply logged, one record each), then back again."""
    outcome = Outcome(f"Graph API outage: {users} users")
    started = time.perf_counter()
    retry = RetryPolicy(max_attempts=5, base_delay=0.05, max_delay=0.2, jitter=0.5, total_timeout=1.5)
    graph = OutageGraphApi()
    with captured_logs("connectors.whatsapp", level=logging.WARNING) as records:
        async with served_channel(RateLimitConfig.unlimited(), graph=graph, retry=retry) as (_, channel, server):
            senders = [sender_number(2000 + index) for index in range(users)]

            async def round_of(tag: str) -> None:
                await asyncio.gather(*(server.post(text_webhook(sender, f"wamid.{tag}-{index}", f"{tag} {index}"))
                                       for index, sender in enumerate(senders)))

            graph.down = True
            await round_of("blip")
            await asyncio.sleep(outage_seconds)
            graph.down = False
            await server.settle(timeout=30)
            blip_delivered = [text for text in graph.delivered_texts() if text.startswith("You said: blip")]
            blip_attempts = sum(1 for request in graph.of_kind("message")
                                if request.json.get("text", {}).get("body", "").startswith("You said: blip"))
            lost_in_blip = [r for r in records if "was not delivered" in r.getMessage()]

            graph.down = True
            await round_of("down")
            await server.settle(timeout=30)
            graph.down = False
            down_delivered = [text for text in graph.delivered_texts() if text.startswith("You said: down")]
            undelivered_logs = [r for r in records if "was not delivered" in r.getMessage()]
            gave_up_logs = [r for r in records if "giving up" in r.getMessage() and "send text" in r.getMessage()]
            who = Counter(r.getMessage().rsplit(" to ", 1)[-1] for r in undelivered_logs)

            await server.post(text_webhook(senders[0], "wamid.back-0", "back again"))
            await server.settle(timeout=10)
            back = "You said: back again" in graph.delivered_texts()
            refused = sum(1 for request in graph.requests if request.status == 503)

    outcome.figures.update({
        "replies during a short outage": users,
        "  delivered after retries": len(blip_delivered),
        "  send attempts (incl. retries)": blip_attempts,
        "  lost": users - len(blip_delivered),
        "replies during a long outage": users,
        "  delivered": len(down_delivered),
        "  undelivered, each logged": len(undelivered_logs),
        "  'giving up' errors logged": len(gave_up_logs),
        "  silently dropped": users - len(down_delivered) - len(undelivered_logs),
        "delivered once Meta is back": int(back),
        "Graph API calls failed on purpose (503)": refused,
    })
    outcome.check(len(blip_delivered) == users and not lost_in_blip,
                  f"short outage: {len(blip_delivered)} of {users} replies delivered")
    outcome.check(blip_attempts > users, "the short outage caused no retries (it did not bite)")
    outcome.check(not down_delivered and len(undelivered_logs) == users,
                  f"long outage: {len(undelivered_logs)} undelivered replies logged for {users}")
    outcome.check(len(who) == users and set(who.values()) == {1}, "an undelivered reply was logged twice or not at all")
    outcome.check(len(gave_up_logs) == users, f"{len(gave_up_logs)} 'giving up' errors for {users} replies")
    outcome.check(not any(sender in r.getMessage() for r in records for sender in senders),
                  "a log record carries a phone number")
    outcome.check(back, "the channel did not recover once Meta was back")
    outcome.seconds = time.perf_counter() - started
    return outcome
