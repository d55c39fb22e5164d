"""The Groq client wrapper against the fake Groq: real HTTP through the official SDK on 127.0.0.1."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from assistant_llm.budget import Limits, RequestBudget
from assistant_llm.cache import TTLCache, cache_key, normalise_question
from assistant_llm.client import GroqChat
from assistant_llm.config import LLMConfig
from assistant_llm.errors import BudgetExceeded, LLMUnavailable, RateLimited
from banking.errors import ConfigError
from checks.action_runner import ROOT
from checks.llm_support import FAST, MAIN, Ticker, llm_config, make_assistant
from sandbox.fake_groq import answer, error, malformed, rate_limited, tool_calls

USER = "c0ffee" * 10
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


async def test_a_completion_through_the_sdk_with_key_model_and_tools(groq, config):
    groq.queue(tool_calls(("spending_by_category", {"period": "last month"})))
    chat = GroqChat(config)
    tools = [{"type": "function", "function": {"name": "spending_by_category", "parameters": {"type": "object"}}}]
    completion = await chat.complete(MESSAGES, user=USER, purpose="test", tools=tools)
    await chat.aclose()
    assert completion.model == MAIN
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [
        ("spending_by_category", '{"period": "last month"}')
    ]
    assert completion.prompt_tokens == 321 and completion.completion_tokens == 45
    [request] = groq.requests
    assert request["model"] == MAIN and request["tools"] == tools and request["tool_choice"] == "auto"
    assert request["user"] == USER[:16]
    assert (request["reasoning_effort"], request["include_reasoning"]) == ("low", False)  # gpt-oss: short thinking
    assert groq.unauthorised == 0


async def test_rate_limited_main_model_falls_back_to_the_faster_one(groq, config):
    groq.queue(rate_limited(), model=MAIN)
    groq.queue(answer("fine"), model=FAST)
    chat = GroqChat(config)
    completion = await chat.complete(MESSAGES, user=USER, purpose="test")
    await chat.aclose()
    assert completion.content == "fine" and completion.model == FAST
    assert groq.models_asked() == [MAIN, FAST]
    assert [r.outcome for r in chat.stats.records] == ["rate_limited", "ok"]


async def test_server_error_falls_back_and_both_failing_raises(groq, config):
    groq.queue(error(500), model=MAIN)
    groq.queue(error(503), model=FAST)
    chat = GroqChat(config)
    with pytest.raises(LLMUnavailable):
        await chat.complete(MESSAGES, user=USER, purpose="test")
    await chat.aclose()
    assert groq.models_asked() == [MAIN, FAST]
    assert [r.outcome for r in chat.stats.records] == ["http_500", "http_503"]


async def test_rate_limits_on_both_models_raise_rate_limited(groq, config):
    groq.queue(rate_limited(), rate_limited())
    chat = GroqChat(config)
    with pytest.raises(RateLimited):
        await chat.complete(MESSAGES, user=USER, purpose="test")
    await chat.aclose()


async def test_a_slow_main_model_times_out_and_the_fallback_answers(groq):
    config = llm_config(groq.base_url, timeout_seconds=0.3)
    groq.queue(answer("too late", delay=1.0), model=MAIN)
    groq.queue(answer("quick"), model=FAST)
    chat = GroqChat(config)
    completion = await chat.complete(MESSAGES, user=USER, purpose="test")
    await chat.aclose()
    assert completion.content == "quick"
    assert chat.stats.records[0].outcome == "timeout" and chat.stats.records[0].latency_ms < 1000


async def test_retries_are_bounded(groq):
    config = llm_config(groq.base_url, max_retries=1)
    groq.queue(error(500), error(500), error(500), error(500), error(500))
    chat = GroqChat(config)
    with pytest.raises(LLMUnavailable):
        await chat.complete(MESSAGES, user=USER, purpose="test")
    await chat.aclose()
    # one try on the main model, one plus one retry on the fallback
    assert groq.models_asked() == [MAIN, FAST, FAST]


async def test_a_body_that_is_not_json_is_a_failure_not_a_crash(groq, config):
    groq.queue(malformed(), malformed())
    chat = GroqChat(config)
    with pytest.raises(LLMUnavailable):
        await chat.complete(MESSAGES, user=USER, purpose="test")
    await chat.aclose()


async def test_a_wrong_key_stops_at_once(groq):
    chat = GroqChat(llm_config(groq.base_url, api_key="gsk_wrong"))
    with pytest.raises(LLMUnavailable):
        await chat.complete(MESSAGES, user=USER, purpose="test")
    await chat.aclose()
    assert groq.unauthorised == 1  # no fallback attempt with a key that is refused


async def test_per_user_budget_then_global_budget(groq):
    config = llm_config(groq.base_url, user_per_minute=2, global_per_minute=3)
    ticker = Ticker()
    chat = make_assistant(config, ticker).chat
    await chat.complete(MESSAGES, user="alice", purpose="test")
    await chat.complete(MESSAGES, user="alice", purpose="test")
    with pytest.raises(BudgetExceeded):
        await chat.complete(MESSAGES, user="alice", purpose="test")
    await chat.complete(MESSAGES, user="bob", purpose="test")
    with pytest.raises(BudgetExceeded):  # the whole server's minute is spent
        await chat.complete(MESSAGES, user="carol", purpose="test")
    ticker.now += 61
    await chat.complete(MESSAGES, user="alice", purpose="test")
    await chat.aclose()
    assert len(groq.requests) == 4


def test_daily_budget_is_a_sliding_day():
    ticker = Ticker()
    budget = RequestBudget(Limits(user_per_minute=100, user_per_day=3, global_per_minute=100, global_per_day=5),
                           clock=ticker)
    for _ in range(3):
        assert budget.try_acquire("alice")
        ticker.now += 120
    assert not budget.try_acquire("alice")
    assert budget.try_acquire("bob") and budget.try_acquire("bob")
    assert not budget.try_acquire("carol")  # global day spent
    ticker.now += 86_400
    assert budget.try_acquire("alice")
    assert budget.refused == 2


def test_cache_forgets_after_its_time():
    ticker = Ticker()
    cache: TTLCache[str] = TTLCache(ttl=300, size=2, clock=ticker)
    key = cache_key("user", normalise_question("How much on FOOD??"))
    assert key == cache_key("user", normalise_question("how much on food"))
    cache.put(key, "answer")
    assert cache.get(key) == "answer"
    ticker.now += 301
    assert cache.get(key) is None
    cache.put("a", "1"), cache.put("b", "2"), cache.put("c", "3")
    assert cache.get("a") is None and len(cache) == 2


def test_no_key_means_disabled_and_no_client():
    chat = GroqChat(LLMConfig(api_key=None))
    assert not chat.enabled
    with pytest.raises(LLMUnavailable):
        chat.client()


def test_config_from_env_defaults_and_mistakes():
    config = LLMConfig.from_env({"GROQ_API_KEY": " gsk_x "})
    assert config.enabled and config.api_key == "gsk_x"
    assert (config.model, config.fallback_model) == ("openai/gpt-oss-120b", "openai/gpt-oss-20b")
    assert config.base_url == "https://api.groq.com" and 0 < config.timeout_seconds <= 10
    assert "gsk_x" not in repr(config)
    assert not LLMConfig.from_env({}).enabled
    assert LLMConfig.from_env({"GROQ_FALLBACK_MODEL": "none"}).fallback_model is None
    with pytest.raises(ConfigError, match="GROQ_TIMEOUT_SECONDS"):
        LLMConfig.from_env({"GROQ_TIMEOUT_SECONDS": "soon"})
    with pytest.raises(ConfigError, match="GROQ_BASE_URL"):
        LLMConfig.from_env({"GROQ_BASE_URL": "api.groq.com"})
    with pytest.raises(ConfigError, match="GROQ_REQUESTS_PER_MINUTE"):
        LLMConfig.from_env({"GROQ_REQUESTS_PER_MINUTE": "0"})


async def test_logs_carry_counts_and_timings_never_content(groq, config, caplog):
    groq.queue(answer("You spent ₦5,000 at Chowdeck"))
    chat = GroqChat(config)
    secret_question = "my number is 08031234567, how much did I spend?"
    with caplog.at_level(logging.DEBUG, logger="assistant_llm"):
        await chat.complete([{"role": "user", "content": secret_question}], user=USER, purpose="insight")
    await chat.aclose()
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("assistant_llm"))
    assert "prompt_tokens=321" in logged and "latency_ms=" in logged and f"model={MAIN}" in logged
    assert "08031234567" not in logged and "Chowdeck" not in logged and "how much" not in logged


def test_importing_the_package_makes_no_client_and_loads_no_sdk():
    code = (
        "import sys, assistant_llm, assistant_llm.runtime, assistant_llm.insights, assistant_llm.fallback, "
        "assistant_llm.transcriber, actions.accounts, actions.support\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib at import'\n"
        "from assistant_llm import runtime\n"
        "assert runtime._assistant is None\n"
        "print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().endswith("ok"), done.stderr[-2000:]
