"""The review queue: messages the assistant did not understand, for a conversation designer.

Taken from the stored conversations (the tracker store), never from the analytics store,
which holds no text. A customer message joins the queue when NLU sent it to the fallback
(``nlu_fallback``), when its intent's confidence was below the threshold, or when it was
the last thing the customer said before asking for a person. Every digit is replaced by
``0`` (an account or phone number keeps its shape, not its value), button payloads are
left out, and identical messages are merged with a count. The output is Rasa NLU YAML
grouped by the intent the model predicted, each example carrying why it is there: a
designer relabels it and copies it into ``data/nlu/`` by hand. Nothing is written to
``data/`` by this module.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from analytics.records import mapping_field

DEFAULT_THRESHOLD = 0.7
FALLBACK_INTENT = "nlu_fallback"
HANDOFF_INTENT = "human_handoff"
HANDOFF_ACTION = "action_human_handoff"
DIGIT = re.compile(r"\d")
UNKNOWN = "unknown"

Event = Mapping[str, Any]


@dataclass
class Item:
    text: str
    predicted: str
    reasons: set[str] = field(default_factory=set)
    confidence: float | None = None
    seen: int = 0


def redact(text: str) -> str:
    """Every digit becomes 0, whitespace is collapsed."""
    return " ".join(DIGIT.sub("0", text).split())


def collect(conversations: Iterable[Iterable[Event]], threshold: float = DEFAULT_THRESHOLD) -> list[Item]:
    """Queue items from each conversation's events (Rasa event dicts, in order)."""
    items: dict[str, Item] = {}
    for events in conversations:
        previous: Event | None = None  # the last real customer message
        replay_next = False
        for event in events:
            kind = event.get("event")
            if kind == "rewind":
                replay_next = True
            elif kind == "user":
                if replay_next:  # the LLM fallback's replay of the message just seen
                    replay_next = False
                    continue
                intent, confidence, guess = _intent(event)
                if intent == HANDOFF_INTENT and previous is not None:
                    _add(items, previous, "before_handoff")
                if intent == FALLBACK_INTENT:
                    _add(items, event, "fallback")
                elif confidence is not None and confidence < threshold:
                    _add(items, event, "low_confidence")
                previous = event
            elif kind == "action" and event.get("name") == HANDOFF_ACTION and previous is not None:
                intent, _, _ = _intent(previous)
                if intent != HANDOFF_INTENT:  # handed over without asking: what came before counts
                    _add(items, previous, "before_handoff")
    return sorted(items.values(), key=lambda item: (item.predicted, -item.seen, item.text))


def _intent(event: Event) -> tuple[str | None, float | None, tuple[str, float | None]]:
    parse = mapping_field(event, "parse_data")
    intent = mapping_field(parse, "intent")
    ranking = [item for item in parse.get("intent_ranking") or []
               if isinstance(item, Mapping) and item.get("name") != FALLBACK_INTENT]
    guess = ranking[0] if ranking else {}
    name = intent.get("name")
    confidence = intent.get("confidence")
    best = name if name and name != FALLBACK_INTENT else guess.get("name")
    best_confidence = confidence if name and name != FALLBACK_INTENT else guess.get("confidence")
    return (name, confidence if isinstance(confidence, (int, float)) else None,
            (best or UNKNOWN, best_confidence if isinstance(best_confidence, (int, float)) else None))


def _add(items: dict[str, Item], event: Event, reason: str) -> None:
    text = event.get("text")
    if not isinstance(text, str) or not text.strip() or text.startswith("/"):
        return  # a button's payload is not something a customer wrote
    redacted = redact(text)
    _, _, (predicted, confidence) = _intent(event)
    item = items.get(redacted)
    if item is None:
        item = items[redacted] = Item(redacted, predicted, confidence=confidence)
    item.reasons.add(reason)
    item.seen += 1
    if confidence is not None and (item.confidence is None or confidence < item.confidence):
        item.confidence = confidence


def to_nlu_yaml(items: Iterable[Item], threshold: float = DEFAULT_THRESHOLD) -> str:
    """Rasa NLU training-data YAML, one block per predicted intent, each example with its reasons."""
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.predicted].append(item)
    nlu = []
    for intent in sorted(groups):
        examples = [{
            "text": item.text + "\n",
            "metadata": {"reasons": sorted(item.reasons), "confidence": _round(item.confidence), "seen": item.seen},
        } for item in groups[intent]]
        nlu.append({"intent": intent, "examples": examples})
    header = (
        "# Review queue: customer messages the assistant did not understand (fallback, confidence\n"
        f"# below {threshold}, or said just before asking for a person), grouped by the intent the model\n"
        "# predicted. Every digit is replaced by 0. NOT training data: move each example under the\n"
        "# intent it really is (and mark its entities), then copy it into data/nlu/<topic>.yml by hand.\n"
    )
    body = yaml.safe_dump({"version": "3.1", "nlu": nlu}, allow_unicode=True, sort_keys=False, width=120)
    return header + body


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)
