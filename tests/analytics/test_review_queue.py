"""The review queue: what the assistant did not understand, digits redacted, as NLU YAML a designer labels."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUtteranceReverted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

from analytics.review_queue import collect, redact, to_nlu_yaml
from banking.crypto import Keyring
from banking.store import in_memory_database
from connectors.tracker_store import EncryptedMongoTrackerStore
from scripts.review_queue import main

SENDER = "2348031234567"


def said(text: str, intent: str, confidence: float, guess: str | None = None) -> UserUttered:
    ranking = [{"name": intent, "confidence": confidence}]
    if guess:
        ranking.append({"name": guess, "confidence": confidence - 0.05})
    return UserUttered(text, parse_data={"text": text, "intent": {"name": intent, "confidence": confidence},
                                         "intent_ranking": ranking, "entities": []})


def conversation() -> list[Any]:
    return [
        ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
        said("hello", "greet", 0.99),
        said("abeg send 5000 give 0123456789", "nlu_fallback", 0.41, guess="transfer_money"),
        ActionExecuted("action_fallback"), ActionExecuted("action_listen"),
        said("abeg send 5000 give 0123456789", "nlu_fallback", 0.38, guess="transfer_money"),
        ActionExecuted("action_fallback"), UserUtteranceReverted(), ActionExecuted("action_listen"),
        said("abeg send 5000 give 0123456789", "transfer_money", 1.0),  # the LLM's replay: not queued
        said("wetin dey happen to my money", "check_balance", 0.52),
        said('/inform{"account_type":"savings"}', "inform", 0.3),  # a button: not queued
        said("my card dey hold for atm 08031234567", "out_of_scope", 0.9),
        said("I want to talk to a person", "human_handoff", 0.97),
        ActionExecuted("action_human_handoff"),
    ]


def test_fallbacks_low_confidence_and_what_came_before_a_handoff_are_queued() -> None:
    items = collect([[event.as_dict() for event in conversation()]])

    queued = {item.text: (item.predicted, sorted(item.reasons), item.seen) for item in items}
    assert queued == {
        "abeg send 0000 give 0000000000": ("transfer_money", ["fallback"], 2),
        "wetin dey happen to my money": ("check_balance", ["low_confidence"], 1),
        "my card dey hold for atm 00000000000": ("out_of_scope", ["before_handoff"], 1),
    }


@pytest.mark.filterwarnings(r"ignore:the load_module\(\) method is deprecated:DeprecationWarning")  # pykwalify
def test_the_queue_is_rasa_nlu_yaml_grouped_by_predicted_intent_without_digits() -> None:
    text = to_nlu_yaml(collect([[event.as_dict() for event in conversation()]]))

    data = RasaYAMLReader().reads(text)
    assert {example.get("intent") for example in data.intent_examples} == {
        "transfer_money", "check_balance", "out_of_scope"}
    assert not re.search(r"[1-9]", "".join(example.get("text") for example in data.intent_examples))
    parsed = yaml.safe_load(text)
    first = parsed["nlu"][0]["examples"][0]
    assert first["metadata"]["reasons"] and first["metadata"]["seen"] >= 1
    assert "NOT training data" in text


def test_redaction_keeps_the_shape_of_numbers_only() -> None:
    assert redact("send ₦25,000 to 0123456789\n now") == "send ₦00,000 to 0000000000 now"


async def test_the_script_reads_the_encrypted_tracker_store_and_writes_only_its_file(tmp_path: Path) -> None:
    domain = Domain.from_dict({"intents": ["greet", "transfer_money", "check_balance", "human_handoff",
                                           "out_of_scope", "inform"]})
    store = EncryptedMongoTrackerStore(domain, database=in_memory_database(), keyring=Keyring.generate(),
                                       environ={"USER_ID_SALT": "review-queue-test-salt-0a1b"})
    await store.save(DialogueStateTracker.from_events(SENDER, conversation()))
    out = tmp_path / "queue.yml"

    await asyncio.to_thread(main, ["--out", str(out)], store=store)

    written = out.read_text()
    assert "abeg send 0000 give 0000000000" in written and SENDER not in written


def test_the_script_refuses_to_write_into_data() -> None:
    with pytest.raises(SystemExit):
        main(["--out", "data/nlu/review.yml", "--events", "/dev/null"])
