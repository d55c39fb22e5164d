"""Shared by the checks and the banking, action and LLM tests: a clock moved by hand, the
domain, trackers, and a way to run an action as rasa-sdk does. The `clock` and `db`
fixtures built on them are in tests/conftest.py, offered to every test."""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

ROOT = Path(__file__).resolve().parents[1]


def read_domain(directory: Path = ROOT / "domain") -> dict[str, Any]:
    """The files of domain/ as one domain, as Rasa merges them: lists joined, mappings united."""
    merged: dict[str, Any] = {}
    for path in sorted(directory.rglob("*.yml")):
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)
            elif isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
            else:
                merged[key] = value
    return merged


DOMAIN: dict[str, Any] = read_domain()
SENDER = "2348031234567"  # a WhatsApp sender id is the customer's phone number

def make_tracker(
    text: str = "",
    intent: str | None = None,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    active_loop: str | None = None,
    sender: str = SENDER,
    events: list[dict[str, Any]] | None = None,
) -> Tracker:
    """A tracker as the action server receives it; `nlu_fallback` comes with a low confidence."""
    all_slots: dict[str, Any] = {name: None for name in DOMAIN["slots"]}
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
        events=events or [],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def reply_to_confirmation(
    op_id: str | None,
    text: str = "yes",
    intent: str = "affirm",
    entities: list[dict[str, Any]] | None = None,
    *,
    turns_between: tuple[tuple[str, str], ...] = (),
    sender: str = SENDER,
) -> Tracker:
    """The customer's answer to the confirmation of ``op_id``, as the tracker shows it: the request,
    the confirmation (the prepare action's ``pending_op_id``), then any ``turns_between`` (text,
    intent) the customer sent first, then this message."""
    events: list[dict[str, Any]] = [
        {"event": "user", "text": "(the request)", "parse_data": {"intent": {"name": "transfer_money"}}},
        {"event": "action", "name": "action_prepare_transfer"},
        {"event": "slot", "name": "pending_op_id", "value": op_id},
        {"event": "bot", "text": "Please confirm"},
        {"event": "action", "name": "action_listen"},
    ]
    for said, meant in turns_between:
        events += [{"event": "user", "text": said, "parse_data": {"intent": {"name": meant}}},
                   {"event": "bot", "text": "(a reply)"}, {"event": "action", "name": "action_listen"}]
    events.append({"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}})
    return make_tracker(text, intent, entities, slots={"pending_op_id": op_id}, sender=sender, events=events)


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
    def responses(self) -> list[str | None]:
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
    assert name in DOMAIN["responses"], f"{name} is not a response in domain/"
    variants = DOMAIN["responses"][name]
    english = next(v for v in variants if "condition" not in v)
    values = {**{k: v for k, v in slots.items() if v is not None}, **message}
    placeholders = {f for _, f, _, _ in string.Formatter().parse(english["text"]) if f}
    missing = placeholders - values.keys()
    assert not missing, f"{name} is missing {sorted(missing)}"
    return re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), english["text"])


def written_text(message: dict[str, Any], slots: dict[str, Any]) -> str:
    """Only the text the action wrote itself; a response from domain/ counts as ""."""
    return message.get("text") or ""


async def run(
    action: Action, tracker: Tracker, text_of: Callable[[dict[str, Any], dict[str, Any]], str] = render
) -> Outcome:
    """Run `action` as rasa-sdk does; `Outcome.texts` holds each message as `text_of` reads it."""
    dispatcher = CollectingDispatcher()
    events = [dict(e) for e in await action.run(dispatcher, tracker, DOMAIN)]
    return Outcome(events, dispatcher.messages, [text_of(m, tracker.slots) for m in dispatcher.messages])
