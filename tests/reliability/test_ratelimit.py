"""Per-user inbound rate limit, at the HTTP level: one polite notice per window, the excess dropped
(Meta still gets its 200, Rasa never sees it), other users untouched."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from banking.errors import ConfigError
from banking.identity import user_key
from checks.reliability.common import SALT, served_channel
from checks.whatsapp_fakes import RecordingAgent, load_payload, text_webhook
from connectors.whatsapp import WhatsAppConfig
from connectors.whatsapp.ratelimit import RateLimitConfig, RateLimiter, Verdict
from connectors.whatsapp.texts import rate_limited as rate_limited_reply

RATE_LIMITED_REPLY = rate_limited_reply(60)

ADA = "2348031234567"
TUNDE = "2348059876543"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def texts_to(graph, number: str) -> list[str]:
    return [m["text"]["body"] for m in graph.delivered() if m.get("type") == "text" and m["to"] == number]


async def test_a_burst_over_the_default_limit_gets_one_notice_and_the_excess_is_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    agent = RecordingAgent()
    with caplog.at_level(logging.INFO, logger="connectors.whatsapp"):
        async with served_channel(agent=agent) as (graph, channel, server):  # the default: 20 per 60 s
            statuses = [(await server.post(text_webhook(ADA, f"wamid.burst-{n}", f"burst no. {n}")))[0]
                        for n in range(25)]
            tunde = (await server.post(text_webhook(TUNDE, "wamid.tunde", "hello")))[0]
            await server.settle()
            to_ada, to_tunde = texts_to(graph, ADA), texts_to(graph, TUNDE)
            stats = channel.rate_limiter.stats

    assert channel.rate_limiter.config == RateLimitConfig(messages=20, window_seconds=60)
    assert statuses == [200] * 25 and tunde == 200  # Meta always gets its 200
    assert [m.text for m in agent.messages if m.sender_id == ADA] == [f"burst no. {n}" for n in range(20)]
    assert to_ada == [f"You said: burst no. {n}" for n in range(20)] + [RATE_LIMITED_REPLY]
    assert "please wait a minute" in RATE_LIMITED_REPLY
    assert to_tunde == ["You said: hello"]  # another user is not held back
    assert (stats.allowed, stats.notified, stats.dropped) == (21, 1, 4)
    limited = [r for r in caplog.records if "rate-limited" in r.getMessage()]
    assert len(limited) == 5 and sum(r.levelno == logging.WARNING for r in limited) == 1
    assert ADA not in caplog.text and "burst no." not in caplog.text


async def test_the_window_slides_and_the_notice_comes_once_per_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitConfig(messages=3, window_seconds=60), clock=clock)
    agent = RecordingAgent()
    async with served_channel(agent=agent, rate_limiter=limiter) as (graph, channel, server):
        async def send(tag: str) -> None:
            assert (await server.post(text_webhook(ADA, f"wamid.{tag}", tag)))[0] == 200

        for n in range(5):
            await send(f"first-{n}")  # 3 handled, a notice, 1 dropped
        clock.now += 30
        for n in range(2):
            await send(f"half-{n}")  # still a full window: dropped, no second notice
        clock.now += 30  # the first three are a minute old now
        for n in range(4):
            await send(f"second-{n}")  # 3 handled, then a new window's notice
        await server.settle()
        notices = texts_to(graph, ADA).count(RATE_LIMITED_REPLY)

    assert agent.texts == ["first-0", "first-1", "first-2", "second-0", "second-1", "second-2"]
    assert notices == 2
    assert (limiter.stats.notified, limiter.stats.dropped) == (2, 3)


async def test_redeliveries_do_not_count_and_dropped_messages_stay_dropped() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitConfig(messages=2, window_seconds=60), clock=clock)
    agent = RecordingAgent()
    async with served_channel(agent=agent, rate_limiter=limiter) as (graph, channel, server):
        first = text_webhook(ADA, "wamid.a", "a")
        for _ in range(4):  # Meta retrying one message: it is counted once
            await server.post(first)
        await server.post(text_webhook(ADA, "wamid.b", "b"))
        dropped = text_webhook(ADA, "wamid.c", "c")
        await server.post(dropped)  # over the limit: the notice
        await server.settle()
        clock.now += 120
        await server.post(dropped)  # Meta redelivers it later: it was claimed, so it stays dropped
        await server.settle()
    assert agent.texts == ["a", "b"]
    assert texts_to(graph, ADA) == ["You said: a", "You said: b", RATE_LIMITED_REPLY]


async def test_statuses_are_not_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    async with served_channel(RateLimitConfig(messages=1)) as (graph, channel, server):
        for _ in range(5):
            assert (await server.post(load_payload("statuses_delivered")))[0] == 200
        await server.settle()
    assert channel.rate_limiter.stats.allowed == 0 and channel.rate_limiter.stats.rate_limited == 0
    assert "rate-limited" not in caplog.text


async def test_the_limit_is_keyed_by_the_hashed_user_and_can_be_switched_off() -> None:
    agent = RecordingAgent()
    async with served_channel(RateLimitConfig.unlimited(), agent=agent) as (graph, channel, server):
        for n in range(60):
            await server.post(text_webhook(ADA, f"wamid.many-{n}", f"m{n}"))
        await server.settle()
    assert len(agent.messages) == 60 and RATE_LIMITED_REPLY not in texts_to(graph, ADA)

    limiter = RateLimiter(RateLimitConfig(messages=1))
    assert limiter.check(user_key(ADA, SALT)) is Verdict.ALLOW
    assert limiter.check(user_key("+234 803 123 4567", SALT)) is Verdict.NOTIFY  # the same person
    assert limiter.check(user_key(TUNDE, SALT)) is Verdict.ALLOW
    assert ADA not in repr(vars(limiter))


def test_idle_users_are_forgotten_and_the_table_is_bounded() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitConfig(messages=2, window_seconds=60), clock=clock, max_users=100)
    for n in range(500):
        limiter.check(f"user-{n}")
    assert limiter.tracked_users == 100
    clock.now += 61
    limiter.check("someone")
    assert limiter.tracked_users == 1


def test_the_configuration_is_read_from_the_environment_and_frozen() -> None:
    assert RateLimitConfig.from_env({}) == RateLimitConfig(20, 60.0)
    config = RateLimitConfig.from_env({"RATE_LIMIT_MESSAGES": " 5 ", "RATE_LIMIT_WINDOW_SECONDS": "10"})
    assert (config.messages, config.window_seconds, config.enabled) == (5, 10.0, True)
    assert not RateLimitConfig.from_env({"RATE_LIMIT_MESSAGES": "0"}).enabled
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.messages = 100  # type: ignore[misc]
    for environ, name in (({"RATE_LIMIT_MESSAGES": "many"}, "RATE_LIMIT_MESSAGES"),
                          ({"RATE_LIMIT_MESSAGES": "-1"}, "RATE_LIMIT_MESSAGES"),
                          ({"RATE_LIMIT_WINDOW_SECONDS": "0"}, "RATE_LIMIT_WINDOW_SECONDS"),
                          ({"RATE_LIMIT_WINDOW_SECONDS": "soon"}, "RATE_LIMIT_WINDOW_SECONDS")):
        with pytest.raises(ConfigError, match=name):
            RateLimitConfig.from_env(environ)
    channel = WhatsAppConfig.from_env({
        "WHATSAPP_PHONE_NUMBER_ID": "1", "WHATSAPP_API_TOKEN": "t", "WHATSAPP_VERIFY_TOKEN": "v",
        "WHATSAPP_APP_SECRET": "s", "RATE_LIMIT_MESSAGES": "7", "RATE_LIMIT_WINDOW_SECONDS": "30",
    })
    assert channel.rate_limit == RateLimitConfig(7, 30.0)
    assert rate_limited_reply(60) == RATE_LIMITED_REPLY
    assert "please wait 5 minutes" in rate_limited_reply(300)
