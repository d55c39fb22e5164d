"""Action tests: a real banking service on an in-memory database, wired into the
action server's runtime, and helpers that run an action the way rasa-sdk does."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from banking.config import Settings
from banking.sandbox import SandboxProvider
from banking.service import BankingService
from banking.store import ensure_indexes, in_memory_database

DOMAIN = yaml.safe_load((Path(__file__).resolve().parents[2] / "domain.yml").read_text())
SENDER = "2348031234567"  # a WhatsApp sender id is the customer's phone number


class ActionClock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 15, 9, 30, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> ActionClock:
    return ActionClock()


@pytest.fixture
def db() -> Any:
    database = in_memory_database()
    ensure_indexes(database)
    return database


@pytest.fixture
def service(db: Any, clock: ActionClock) -> Iterator[BankingService]:
    settings = Settings(user_id_salt="action-tests", support_phone="+234 1 700 0000")
    banking = BankingService(db, SandboxProvider(), settings, clock=clock)
    runtime.use_service(banking)
    yield banking
    runtime.use_service(None)


@pytest.fixture
def connected(service: BankingService) -> str:
    """The customer's stored key, with GTBank linked in the sandbox."""
    user = runtime.customer(make_tracker())
    service.connect_bank(user, "GTBank")
    return user


def make_tracker(
    text: str = "",
    intent: str | None = None,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    active_loop: str | None = None,
    sender: str = SENDER,
    events: list[dict[str, Any]] | None = None,
) -> Tracker:
    all_slots = {name: None for name in DOMAIN["slots"]}
    all_slots.update({"language": "english", "handoff_requested": False})
    all_slots.update(slots or {})
    return Tracker(
        sender_id=sender,
        slots=all_slots,
        latest_message={
            "text": text,
            "intent": {"name": intent, "confidence": 1.0} if intent else {},
            "entities": entities or [],
        },
        events=events or [],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def entity(name: str, value: str, text: str = "", surface: str | None = None) -> dict[str, Any]:
    """An entity as the NLU pipeline hands it over (with offsets when `text` holds it)."""
    found: dict[str, Any] = {"entity": name, "value": value}
    if text and (surface or value) in text:
        start = text.index(surface or value)
        found.update(start=start, end=start + len(surface or value))
    return found


@dataclass
class Outcome:
    events: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    texts: list[str] = field(default_factory=list)

    @property
    def responses(self) -> list[str]:
        return [m.get("response") for m in self.messages]

    def slot(self, name: str) -> Any:
        values = [e["value"] for e in self.events if e.get("event") == "slot" and e.get("name") == name]
        assert values, f"no SlotSet for {name!r} in {self.events}"
        return values[-1]

    @property
    def text(self) -> str:
        return "\n".join(self.texts)


def render(message: dict[str, Any], slots: dict[str, Any]) -> str:
    """The English text the customer would read, failing on any unfilled placeholder."""
    name = message.get("response")
    if not name:
        return message.get("text") or ""
    assert name in DOMAIN["responses"], f"{name} is not a response in domain.yml"
    variants = DOMAIN["responses"][name]
    english = next(v for v in variants if "condition" not in v)
    values = {**{k: v for k, v in slots.items() if v is not None}, **message}
    placeholders = {f for _, f, _, _ in string.Formatter().parse(english["text"]) if f}
    missing = placeholders - values.keys()
    assert not missing, f"{name} is missing {sorted(missing)}"
    return re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), english["text"])


async def run(action: Action, tracker: Tracker) -> Outcome:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, DOMAIN)
    events = [dict(e) for e in events]
    texts = [render(m, tracker.slots) for m in dispatcher.messages]
    return Outcome(events, dispatcher.messages, texts)
