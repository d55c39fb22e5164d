"""The analytics event broker: pseudonymous records, written off the conversation's path,
never failing a turn; built the way Rasa builds it and fed by the project's tracker store."""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa.core.brokers.broker import EventBroker
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from analytics.broker import AnalyticsEventBroker
from analytics.records import to_record
from analytics.store import FileAnalyticsStore, MemoryAnalyticsStore, MongoAnalyticsStore, open_store
from banking.crypto import Keyring
from banking.identity import user_key
from banking.store import in_memory_database
from connectors.tracker_store import EncryptedMongoTrackerStore
from tests.analytics.privacy import leaks

SALT = "analytics-test-salt-5e6f7a8b"
SENDER = "2348031234567"
ACCOUNT = "0123456789"
TEXT = f"send 25,000 naira to {ACCOUNT} gtbank, call me on 08031234567"


def user_event(text: str = TEXT, intent: str = "transfer_money", confidence: float = 0.91) -> dict[str, Any]:
    parse = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": [{"name": intent, "confidence": confidence}, {"name": "pay_bill", "confidence": 0.05}],
        "entities": [
            {"entity": "amount", "value": "25000", "start": 5, "end": 11},
            {"entity": "account_number", "value": ACCOUNT, "start": 21, "end": 31},
            {"entity": "phone_number", "value": "08031234567", "start": 50, "end": 61},
        ],
    }
    event = UserUttered(text, parse_data=parse, input_channel="whatsapp", metadata={"phone": SENDER}).as_dict()
    return {"sender_id": SENDER, **event}


def bot_event() -> dict[str, Any]:
    event = BotUttered(
        f"Send ₦25,000 to ADA OBI, GTBank {ACCOUNT}?",
        data={"buttons": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]},
        metadata={"utter_action": "utter_confirm_transfer", "amount": "₦25,000", "destination": ACCOUNT},
    ).as_dict()
    return {"sender_id": SENDER, **event}


def test_a_user_message_keeps_names_and_scores_but_no_text_number_or_value() -> None:
    record = to_record(user_event(), SALT)

    assert record is not None
    assert record["user"] == user_key(SENDER, SALT)
    assert record["intent"] == "transfer_money" and record["confidence"] == 0.91
    assert record["entities"] == ["account_number", "amount", "phone_number"]
    assert record["channel"] == "whatsapp" and record["button"] is False
    assert leaks([record], ["send", "gtbank", "naira", "25,000", "call me"]) == []


def test_a_bot_message_keeps_only_the_response_name() -> None:
    record = to_record(bot_event(), SALT)

    assert record == {"user": user_key(SENDER, SALT), "at": record["at"], "kind": "bot",
                      "response": "utter_confirm_transfer", "buttons": 2}


def test_only_the_requested_slot_is_recorded_and_names_that_are_not_names_are_replaced() -> None:
    slot = {"sender_id": SENDER, **SlotSet("amount", "25000").as_dict()}
    step = {"sender_id": SENDER, **SlotSet("requested_slot", "source_account").as_dict()}
    odd = {"sender_id": SENDER, **SlotSet("requested_slot", f"pay {ACCOUNT} now").as_dict()}

    assert to_record(slot, SALT) is None
    assert to_record(step, SALT)["slot"] == "source_account"
    assert to_record(odd, SALT)["slot"] == "other"
    assert to_record({"event": "user"}, SALT) is None  # no sender, no record


def test_feedback_keeps_the_rating_only_from_the_closed_set() -> None:
    good = user_event("/rate_experience", "rate_experience", 1.0)
    good["parse_data"]["entities"] = [{"entity": "rating", "value": "good"}]
    odd = user_event("/rate_experience", "rate_experience", 1.0)
    odd["parse_data"]["entities"] = [{"entity": "rating", "value": ACCOUNT}]

    assert to_record(good, SALT)["rating"] == "good" and to_record(good, SALT)["button"] is True
    assert to_record(odd, SALT)["rating"] is None


async def test_published_events_reach_the_store_in_order() -> None:
    store = MemoryAnalyticsStore()
    broker = AnalyticsEventBroker(store, SALT)

    broker.publish(user_event())
    broker.publish({"sender_id": SENDER, **ActionExecuted("transfer_form", policy="RulePolicy",
                                                           confidence=1.0).as_dict()})
    broker.publish(bot_event())
    assert broker.flush()
    await broker.close()

    kinds = [record["kind"] for record in store.read()]
    assert kinds == ["user", "action", "bot"]
    assert [record["seq"] for record in store.read()] == [0, 1, 2]


class BrokenStore(MemoryAnalyticsStore):
    def append(self, records: list[dict[str, Any]]) -> None:
        raise ConnectionError("database down")


async def test_a_failing_store_is_logged_and_never_reaches_the_conversation(caplog: pytest.LogCaptureFixture) -> None:
    broker = AnalyticsEventBroker(BrokenStore(), SALT)

    with caplog.at_level(logging.WARNING, logger="analytics.broker"):
        for _ in range(3):
            broker.publish(user_event())  # does not raise
        assert broker.flush()
    await broker.close()

    assert broker.failed_writes >= 1
    assert "Analytics store write failed (ConnectionError)" in caplog.text
    assert SENDER not in caplog.text and ACCOUNT not in caplog.text


class SlowStore(MemoryAnalyticsStore):
    def append(self, records: list[dict[str, Any]]) -> None:
        time.sleep(0.5)
        super().append(records)


async def test_publish_never_waits_for_the_store_and_drops_when_the_queue_is_full() -> None:
    broker = AnalyticsEventBroker(SlowStore(), SALT, max_pending=5)

    started = time.perf_counter()
    for _ in range(50):
        broker.publish(user_event())
    elapsed = time.perf_counter() - started

    assert elapsed < 0.2, elapsed
    assert broker.dropped >= 40
    assert broker.flush(timeout=10)
    await broker.close()


def test_a_malformed_event_is_skipped_without_raising() -> None:
    broker = AnalyticsEventBroker(MemoryAnalyticsStore(), SALT)
    broker.publish({"sender_id": SENDER, "event": "user", "parse_data": "not a dict", "timestamp": "x"})
    broker.publish(None)  # type: ignore[arg-type]
    assert broker.flush()


async def test_rasa_builds_it_from_endpoints_yml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.delenv("ANALYTICS_PATH", raising=False)
    monkeypatch.setenv("USER_ID_SALT", SALT)
    config = EndpointConfig(type="analytics.broker.AnalyticsEventBroker", path=str(tmp_path / "events.jsonl"))

    broker = await EventBroker.create(config)

    assert isinstance(broker, AnalyticsEventBroker)
    assert isinstance(broker.store, FileAnalyticsStore)
    broker.publish(user_event())
    assert broker.flush()
    await broker.close()
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["user"] == user_key(SENDER, SALT)


def test_with_a_mongodb_uri_the_store_is_a_collection_of_the_banking_database() -> None:
    store = open_store(environ={"MONGODB_URI": "mongodb://127.0.0.1:1"})
    assert isinstance(store, MongoAnalyticsStore)
    assert store.collection.name == "analytics_events" and store.collection.database.name == "banking"


def test_the_mongo_store_reads_back_a_time_window() -> None:
    store = MongoAnalyticsStore(in_memory_database()["analytics_events"])
    store.append([{"user": "u", "at": 10.0, "kind": "session"}, {"user": "u", "at": 20.0, "kind": "session"}])
    assert [r["at"] for r in store.read(since=15)] == [20.0]
    assert [r["at"] for r in store.read(until=15)] == [10.0]


async def test_the_project_tracker_store_streams_a_turn_to_the_broker() -> None:
    domain = Domain.from_dict(yaml.safe_load("""
version: "3.1"
intents: [transfer_money]
entities: [amount, account_number, phone_number]
slots:
  source_account: {type: any, mappings: [{type: custom}]}
forms:
  transfer_form: {required_slots: [source_account]}
responses:
  utter_confirm_transfer: [{text: "Confirm?"}]
"""))
    store = MemoryAnalyticsStore()
    broker = AnalyticsEventBroker(store, SALT)
    trackers = EncryptedMongoTrackerStore(
        domain, event_broker=broker, database=in_memory_database(), keyring=Keyring.generate(),
        environ={"USER_ID_SALT": SALT},
    )
    tracker = DialogueStateTracker.from_events(SENDER, [
        ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
        UserUttered(TEXT, parse_data=user_event()["parse_data"]),
        ActionExecuted("transfer_form"), ActiveLoop("transfer_form"), SlotSet("requested_slot", "source_account"),
    ])
    await trackers.save(tracker)
    tracker = await trackers.retrieve(SENDER)  # the next turn starts from the stored session, as in Rasa
    tracker.update(BotUttered("Confirm?", metadata={"utter_action": "utter_confirm_transfer"}))
    await trackers.save(tracker)
    assert broker.flush()
    await broker.close()

    records = store.read()
    assert [r["kind"] for r in records] == ["action", "session", "action", "user", "action", "form", "form_step", "bot"]
    assert {r["user"] for r in records} == {user_key(SENDER, SALT)}
    assert leaks(records, [SENDER, ACCOUNT, "08031234567", "naira", "Confirm?"]) == []


async def test_analytics_path_wins_over_endpoints_yml_and_the_file_is_the_owners_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.setenv("USER_ID_SALT", SALT)
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "chosen" / "events.jsonl"))
    old_umask = os.umask(0o022)
    try:
        config = EndpointConfig(type="analytics.broker.AnalyticsEventBroker", path=str(tmp_path / "yml.jsonl"))
        broker = await EventBroker.create(config)
        broker.publish(user_event())
        assert broker.flush()
        await broker.close()
    finally:
        os.umask(old_umask)
    written = tmp_path / "chosen" / "events.jsonl"
    assert written.exists() and not (tmp_path / "yml.jsonl").exists()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_a_typed_thumb_with_a_skin_tone_is_recorded_as_good_and_a_word_as_no_rating() -> None:
    toned = user_event("👍🏿", "rate_experience", 0.9)
    toned["parse_data"]["entities"] = [{"entity": "rating", "value": "👍🏿"}]
    word = user_event("👍 yes", "rate_experience", 0.9)
    word["parse_data"]["entities"] = [{"entity": "rating", "value": "yes"}]
    assert to_record(toned, SALT)["rating"] == "good"
    assert to_record(word, SALT)["rating"] is None
