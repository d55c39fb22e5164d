"""Helpers for the LLM tests: the domain, a banking service on an in-memory database,
trackers and a way to run an action as rasa-sdk does, and an assistant wired to the fake Groq."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from assistant_llm.budget import Limits, RequestBudget
from assistant_llm.client import GroqChat
from assistant_llm.config import LLMConfig
from assistant_llm.fake_groq import API_KEY
from assistant_llm.fallback import FallbackRouter
from assistant_llm.insights import InsightEngine
from assistant_llm.runtime import Assistant

ROOT = Path(__file__).resolve().parents[2]
DOMAIN: dict[str, Any] = yaml.safe_load((ROOT / "domain.yml").read_text())
SENDER = "2348031234567"  # a WhatsApp sender id is the customer's phone number
OTHER_SENDER = "2348099999999"
MAIN, FAST = "openai/gpt-oss-120b", "openai/gpt-oss-20b"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 15, 9, 30, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


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


def make_tracker(
    text: str = "",
    intent: str | None = None,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    active_loop: str | None = None,
    sender: str = SENDER,
) -> Tracker:
    all_slots = {name: None for name in DOMAIN["slots"]}
    all_slots.update({"language": "english", "handoff_requested": False})
    all_slots.update(slots or {})
    return Tracker(
        sender_id=sender,
        slots=all_slots,
        latest_message={
            "text": text,
            "intent": {"name": intent, "confidence": 0.4 if intent == "nlu_fallback" else 1.0} if intent else {},
            "entities": entities or [],
        },
        events=[],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


@dataclass
class Outcome:
    events: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    texts: list[str] = field(default_factory=list)

    @property
    def responses(self) -> list[str | None]:
        return [m.get("response") for m in self.messages]

    @property
    def text(self) -> str:
        return "\n".join(self.texts)


async def run(action: Action, tracker: Tracker) -> Outcome:
    dispatcher = CollectingDispatcher()
    events = [dict(e) for e in await action.run(dispatcher, tracker, DOMAIN)]
    return Outcome(events, dispatcher.messages, [m.get("text") or "" for m in dispatcher.messages])


def tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m.get("role") == "tool"]
