"""What one message costs the encrypted tracker store does not grow with the conversation: a customer
with 500 events (months of sessions) costs what one with 10 does. Counted, not timed: events read from
the database, events opened, events sealed and events written per message."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import yaml
from rasa.core.brokers.broker import EventBroker
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, SlotSet, UserUttered

from banking.store import in_memory_database
from connectors.tracker_store import EncryptedMongoTrackerStore

SALT = "tracker-store-cost-test-salt-9a8b"
KEY_HEX = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
SHORT, LONG = "2348000000011", "2348000000012"
DOMAIN = """
version: "3.1"
intents: [greet, check_balance]
slots:
  bank: {type: any, mappings: [{type: custom}]}
"""


class CountingCollection:
    """A mongomock collection that counts the sealed events its reads return and its writes carry."""

    def __init__(self, collection: Any, counts: Counter[str]) -> None:
        self._collection = collection
        self._counts = counts

    def find_one(self, *args: Any, **kwargs: Any) -> Any:
        document = self._collection.find_one(*args, **kwargs)
        if document is not None:
            self._counts["events read"] += len(document.get("events", []))
        return document

    def update_one(self, query: Any, update: dict[str, Any], **kwargs: Any) -> Any:
        pushed = update.get("$push", {}).get("events", {}).get("$each", [])
        self._counts["events written"] += len(pushed)
        self._counts["documents replaced"] += "events" in update.get("$set", {})
        return self._collection.update_one(query, update, **kwargs)

    def insert_one(self, document: dict[str, Any], **kwargs: Any) -> Any:
        self._counts["events written"] += len(document.get("events", []))
        return self._collection.insert_one(document, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)


class CountingDatabase:
    def __init__(self, database: Any, counts: Counter[str]) -> None:
        self._database = database
        self._counts = counts

    def __getitem__(self, name: str) -> CountingCollection:
        return CountingCollection(self._database[name], self._counts)


@pytest.fixture
def counts() -> Counter[str]:
    return Counter()


@pytest.fixture
def store(counts: Counter[str], monkeypatch: pytest.MonkeyPatch) -> EncryptedMongoTrackerStore:
    domain = Domain.from_dict(yaml.safe_load(DOMAIN))
    store = EncryptedMongoTrackerStore(domain, database=CountingDatabase(in_memory_database(), counts),
                                       environ={"USER_ID_SALT": SALT, "ENCRYPTION_KEY": KEY_HEX})
    keyring = store.keyring
    seal, open_ = keyring.encrypt_json, keyring.decrypt_json

    def counting_seal(*args: Any, **kwargs: Any) -> str:
        counts["events sealed"] += 1
        return seal(*args, **kwargs)

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        counts["events opened"] += 1
        return open_(*args, **kwargs)

    monkeypatch.setattr(keyring, "encrypt_json", counting_seal)
    monkeypatch.setattr(keyring, "decrypt_json", counting_open)
    return store


def session(start: float) -> list[Event]:
    """A session of 10 events: a greeting and a balance question."""
    return [
        ActionExecuted("action_session_start", timestamp=start), SessionStarted(timestamp=start),
        ActionExecuted("action_listen", timestamp=start),
        UserUttered("hi", {"name": "greet", "confidence": 1.0}, timestamp=start + 1),
        BotUttered("Hello!", timestamp=start + 1), ActionExecuted("action_listen", timestamp=start + 1),
        UserUttered("balance", {"name": "check_balance", "confidence": 1.0}, timestamp=start + 2),
        SlotSet("bank", "GTBank", timestamp=start + 2),
        BotUttered("Your balances ...", timestamp=start + 3), ActionExecuted("action_listen", timestamp=start + 3),
    ]


def message(at: float) -> list[Event]:
    return [UserUttered("balance", {"name": "check_balance", "confidence": 1.0}, timestamp=at),
            BotUttered("Your balances ...", timestamp=at + 1), ActionExecuted("action_listen", timestamp=at + 1)]


async def converse(store: EncryptedMongoTrackerStore, sender: str, sessions: int) -> None:
    """Store ``sessions`` sessions a day apart, one save per session (history, not measured)."""
    for day in range(sessions):
        tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
        for event in session(day * 86_400.0):
            tracker.update(event)
        await store.save(tracker)


async def one_message(store: EncryptedMongoTrackerStore, sender: str, counts: Counter[str]) -> Counter[str]:
    """What Rasa does to the store for one message: retrieve, add the turn's events, save."""
    counts.clear()
    tracker = await store.retrieve(sender)
    assert tracker is not None
    for event in message(60 * 86_400.0):
        tracker.update(event)
    await store.save(tracker)
    return Counter(counts)


async def test_a_message_costs_the_same_with_500_events_as_with_10(
        store: EncryptedMongoTrackerStore, counts: Counter[str]) -> None:
    await converse(store, SHORT, sessions=1)
    await converse(store, LONG, sessions=50)
    assert store.conversations.find_one({"_id": store._key(LONG)})["event_count"] == 500

    short, long = await one_message(store, SHORT, counts), await one_message(store, LONG, counts)

    assert long == short
    # The latest session (from its session_started event: 9 events) is read and opened once, the 3 new
    # events are sealed and appended, and nothing already stored is rewritten.
    assert long["events read"] == long["events opened"] == 9
    assert long["events sealed"] == long["events written"] == 3
    assert long["documents replaced"] == 0


async def test_the_full_history_is_still_there_for_export(store: EncryptedMongoTrackerStore,
                                                          counts: Counter[str]) -> None:
    await converse(store, LONG, sessions=50)
    await one_message(store, LONG, counts)
    full = await store.retrieve_full_tracker(LONG)
    assert len(full.events) == 503
    assert [type(e) for e in list(full.events)[:10]] == [type(e) for e in session(0.0)]
    latest = await store.retrieve(LONG)
    assert len(latest.events) == 12 and isinstance(latest.events[0], SessionStarted)


async def test_events_appended_by_another_process_since_are_read_too(
        store: EncryptedMongoTrackerStore, counts: Counter[str]) -> None:
    await converse(store, LONG, sessions=3)
    other = await store.retrieve(LONG)
    for event in message(5 * 86_400.0):
        other.update(event)
    await store.save(other)  # another Rasa process answered a message meanwhile
    latest = await store.retrieve(LONG)
    assert [e.as_dict() for e in latest.events] == [e.as_dict() for e in other.events]


class RecordingBroker(EventBroker):
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.published.append(event)


async def test_saving_streams_the_new_events_to_the_broker_without_opening_the_stored_ones(
        store: EncryptedMongoTrackerStore, counts: Counter[str]) -> None:
    await converse(store, LONG, sessions=3)
    broker = RecordingBroker()
    store.event_broker = broker
    tracker = await store.retrieve(LONG)
    assert tracker is not None
    for event in message(60 * 86_400.0):
        tracker.update(event)
    expected = [{"sender_id": LONG, **event.as_dict()} for event in tracker.events][-3:]
    counts.clear()
    await store.save(tracker)
    assert broker.published == expected  # what Rasa's own stream_events sends
    assert counts["events opened"] == 0
    broker.published.clear()
    await store.save(tracker)  # nothing new
    assert broker.published == []
    brand_new = await store.get_or_create_tracker(SHORT, append_action_listen=False)
    for event in session(0.0):
        brand_new.update(event)
    await store.save(brand_new)
    assert [event["event"] for event in broker.published] == [event.as_dict()["event"] for event in session(0.0)]
