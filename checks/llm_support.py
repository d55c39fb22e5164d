"""Helpers for the LLM checks and tests: the model names, the fake Groq's settings, an assistant wired to
it, a monotonic clock for its budgets and cache, and a way to run an action that keeps only the
text it wrote. The domain, trackers and running an action: checks/action_runner.py."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker

from assistant_llm.budget import Limits, RequestBudget
from assistant_llm.client import GroqChat
from assistant_llm.config import LLMConfig
from assistant_llm.fallback import FallbackRouter
from assistant_llm.insights import InsightEngine
from assistant_llm.runtime import Assistant
from checks import action_runner
from checks.action_runner import Outcome, written_text
from sandbox.fake_groq import API_KEY

OTHER_SENDER = "2348099999999"
MAIN, FAST = "openai/gpt-oss-120b", "openai/gpt-oss-20b"


class Ticker:
    """A monotonic clock the test moves by hand (budgets and the cache)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def llm_config(base_url: str, **overrides: Any) -> LLMConfig:
    options: dict[str, Any] = {
        "api_key": API_KEY, "base_url": base_url, "model": MAIN, "fallback_model": FAST,
        "timeout_seconds": 2.0, "max_retries": 0, "deadline_seconds": 5.0,
        "user_per_minute": 1000, "user_per_day": 10000, "global_per_minute": 1000, "global_per_day": 10000,
        "cache_seconds": 300.0,
    }
    options.update(overrides)
    return LLMConfig(**options)


def make_assistant(config: LLMConfig, ticker: Ticker | None = None) -> Assistant:
    ticker = ticker or Ticker()
    budget = RequestBudget(Limits(config.user_per_minute, config.user_per_day, config.global_per_minute,
                                  config.global_per_day), clock=ticker)
    chat = GroqChat(config, budget=budget)
    from assistant_llm.cache import TTLCache

    return Assistant(chat=chat, insights=InsightEngine(chat, TTLCache(config.cache_seconds, clock=ticker)),
                     fallback=FallbackRouter(chat))


async def run(action: Action, tracker: Tracker) -> Outcome:
    """Run an action; `texts` keeps only what it wrote itself (a response from domain.yml is not rendered)."""
    return await action_runner.run(action, tracker, written_text)


def tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m.get("role") == "tool"]
