"""Turn one Rasa tracker event into an analytics record that cannot identify or quote anyone.

A record keeps names the model or the domain chose (intent, action, response, form,
requested slot), numbers the model produced (confidence) and timestamps. It never keeps
what a person typed or was told: no message text, no entity value (a feedback rating of
"good" or "bad" is the one exception, a closed set), no slot value but the requested slot's
name, no sender id (the user is the keyed hash of ``banking.identity.user_key``).

Every name is checked against a strict pattern, so a free-text value can never slip into
the store through a field that is meant to carry a name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from banking.catalog import canonical_rating
from banking.identity import user_key

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,80}$")
OTHER = "other"

FEEDBACK_INTENT = "rate_experience"
RATING_ENTITY = "rating"
RATINGS = frozenset({"good", "bad"})

# The only slot whose value is recorded: the form step being asked (itself a slot name).
REQUESTED_SLOT = "requested_slot"

Record = dict[str, Any]


def safe_name(value: Any) -> str | None:
    """The value when it is a plain identifier (intent, action, response, slot); otherwise "other"."""
    if value is None:
        return None
    if isinstance(value, str) and NAME.match(value):
        return value
    return OTHER


def mapping_field(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The field when it is a mapping, else an empty one: events from the broker are not trusted to be well formed."""
    value = parent.get(key)
    return value if isinstance(value, Mapping) else {}


def list_field(parent: Mapping[str, Any], key: str) -> list[Any]:
    """The field when it is a list, else an empty one."""
    value = parent.get(key)
    return value if isinstance(value, list) else []


def to_record(event: Mapping[str, Any], salt: str) -> Record | None:
    """The analytics record for one broker message (Rasa's event dict plus ``sender_id``), or None."""
    sender = event.get("sender_id")
    if not isinstance(sender, str) or not sender.strip():
        return None
    kind = event.get("event")
    builder = _BUILDERS.get(kind) if isinstance(kind, str) else None
    if builder is None:
        return None
    body = builder(event)
    if body is None:
        return None
    timestamp = event.get("timestamp")
    record: Record = {
        "user": user_key(sender, salt),
        "at": float(timestamp) if isinstance(timestamp, (int, float)) else None,
        **body,
    }
    return record


def _user(event: Mapping[str, Any]) -> Record:
    parse = mapping_field(event, "parse_data")
    intent = mapping_field(parse, "intent")
    name = safe_name(intent.get("name"))
    ranking = list_field(parse, "intent_ranking")
    # Under nlu_fallback the model's own best guess is the first other intent of the ranking.
    guesses = [item for item in ranking if isinstance(item, Mapping) and item.get("name") != "nlu_fallback"]
    guess = guesses[0] if guesses else {}
    entities = [item for item in parse.get("entities") or [] if isinstance(item, Mapping)]
    text = event.get("text")
    record: Record = {
        "kind": "user",
        "intent": name,
        "confidence": _number(intent.get("confidence")),
        "top_intent": safe_name(guess.get("name")),
        "top_confidence": _number(guess.get("confidence")),
        "entities": sorted({safe_name(item.get("entity")) for item in entities if item.get("entity")}),
        "button": isinstance(text, str) and text.startswith("/"),  # a tapped button's payload
        "channel": safe_name(event.get("input_channel")),
    }
    if name == FEEDBACK_INTENT:
        ratings = [item.get("value") for item in entities if item.get("entity") == RATING_ENTITY]
        normalised = [canonical_rating(value) if isinstance(value, str) else None for value in ratings]
        record["rating"] = next((value for value in normalised if value in RATINGS), None)
    return record


def _bot(event: Mapping[str, Any]) -> Record:
    metadata = mapping_field(event, "metadata")
    data = mapping_field(event, "data")
    buttons = list_field(data, "buttons")
    # A response from the domain is named; free text (an LLM answer) has no name.
    return {"kind": "bot", "response": safe_name(metadata.get("utter_action")), "buttons": len(buttons)}


def _action(event: Mapping[str, Any]) -> Record:
    return {
        "kind": "action",
        "action": safe_name(event.get("name")),
        "policy": safe_name(event.get("policy")),
        "confidence": _number(event.get("confidence")),
    }


def _loop(event: Mapping[str, Any]) -> Record:
    return {"kind": "form", "form": safe_name(event.get("name"))}


def _slot(event: Mapping[str, Any]) -> Record | None:
    if event.get("name") != REQUESTED_SLOT:
        return None
    return {"kind": "form_step", "slot": safe_name(event.get("value"))}


def _session(_: Mapping[str, Any]) -> Record:
    return {"kind": "session"}


def _rewind(_: Mapping[str, Any]) -> Record:
    """The user message was taken back (the LLM fallback named an intent and replays it)."""
    return {"kind": "rewind"}


def _rejected(event: Mapping[str, Any]) -> Record:
    return {"kind": "rejected", "action": safe_name(event.get("name"))}


_BUILDERS = {
    "user": _user,
    "bot": _bot,
    "action": _action,
    "active_loop": _loop,
    "slot": _slot,
    "session_started": _session,
    "rewind": _rewind,
    "action_execution_rejected": _rejected,
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return round(float(value), 4)
