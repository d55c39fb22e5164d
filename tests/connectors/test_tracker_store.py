"""The encrypted Mongo tracker store: Rasa's semantics, nothing readable at rest, built the way Rasa builds it."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import mongomock
import pytest
import yaml
from bson import json_util
from rasa.core.tracker_store import (
    MongoTrackerStore,
    TrackerStore,
    check_if_tracker_store_async,
    create_tracker_store,
)
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.utils.endpoints import EndpointConfig, read_endpoint_config

import connectors.tracker_store as tracker_store_module
from banking.crypto import Keyring, TamperedData, UnknownKey, field_context, sealed_fields, sealed_kid
from banking.errors import ConfigError
from banking.identity import user_key
from banking.store import in_memory_database
from connectors.tracker_store import RETENTION_INDEX, EncryptedMongoTrackerStore
from scripts.reencrypt import main as reencrypt_main

SALT = "tracker-store-test-salt-0f9e8d7c"
KEY_HEX = "5b8e2f0c7a4d1e9b3c6f8a2d5e7b0c4f9a1d3e6b8c0f2a5d7e9b1c4f6a8d0e2b"
OLD_KEY_HEX = "c1f4a7d0e3b6c9f2a5d8e1b4c7f0a3d6e9b2c5f8a1d4e7b0c3f6a9d2e5b8c1f4"
SENDER = "2348031234567"
ACCOUNT = "0123456789"
TOKEN = "tok_live_9f8e7d6c5b4a"
TYPE = "connectors.tracker_store.EncryptedMongoTrackerStore"
DOMAIN_YAML = """
version: "3.1"
intents: [greet, transfer_money, check_balance]
entities: [account_number, amount]
slots:
  account_number: {type: any, mappings: [{type: custom}]}
  amount: {type: any, mappings: [{type: custom}]}
responses:
  utter_greet: [{text: "Hi!"}]
"""


@pytest.fixture
def domain() -> Domain:
    return Domain.from_dict(yaml.safe_load(DOMAIN_YAML))  # from_yaml's schema check warns on 3.10


@pytest.fixture
def environ() -> dict[str, str]:
    return {"USER_ID_SALT": SALT, "ENCRYPTION_KEY": KEY_HEX}


@pytest.fixture
def store(domain: Domain, environ: dict[str, str]) -> EncryptedMongoTrackerStore:
    return EncryptedMongoTrackerStore(domain, database=in_memory_database(), environ=environ)


@pytest.fixture
def rasa_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment `rasa run` would see in development: a key and a salt, no database."""
    for name in ("MONGODB_URI", "ENVIRONMENT", "ENCRYPTION_OLD_KEYS", "CONVERSATION_RETENTION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("USER_ID_SALT", SALT)
    monkeypatch.setenv("ENCRYPTION_KEY", KEY_HEX)


class ReferenceMongoTrackerStore(MongoTrackerStore):
    """Rasa's own Mongo store on mongomock, as Rasa's tests build it: the behaviour to match."""

    def __init__(self, domain: Domain) -> None:
        self.db = mongomock.MongoClient().rasa
        self.collection = "conversations"
        TrackerStore.__init__(self, domain)


def session(start: float, *events: Event) -> list[Event]:
    opening = [ActionExecuted("action_session_start", timestamp=start), SessionStarted(timestamp=start),
               ActionExecuted("action_listen", timestamp=start)]
    return opening + list(events)


def transfer_turn(at: float) -> list[Event]:
    return [
        UserUttered(f"send 5000 to {ACCOUNT} now", {"name": "transfer_money", "confidence": 0.97},
                    [{"entity": "account_number", "value": ACCOUNT, "start": 13, "end": 23}], timestamp=at),
        SlotSet("account_number", ACCOUNT, timestamp=at),
        SlotSet("amount", 5000, timestamp=at),
        BotUttered(f"Send ₦5,000 to {ACCOUNT}? Your reference token is {TOKEN}", timestamp=at + 1),
        ActionExecuted("action_listen", timestamp=at + 1),
    ]


def dicts(tracker: Any) -> list[dict[str, Any]]:
    return [event.as_dict() for event in tracker.events]


async def add_and_save(store: TrackerStore, events: list[Event], sender: str = SENDER) -> None:
    tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
    for event in events:
        tracker.update(event)
    await store.save(tracker)


# --------------------------------------------------------------------- Rasa's semantics


async def test_sessions_behave_exactly_like_rasas_mongo_tracker_store(
        store: EncryptedMongoTrackerStore, domain: Domain) -> None:
    reference = ReferenceMongoTrackerStore(domain)
    steps = [
        [ActionExecuted("action_listen", timestamp=1.0)],
        session(10.0, UserUttered("hello", {"name": "greet", "confidence": 1.0}, timestamp=11.0)),
        transfer_turn(20.0),
        session(100.0, UserUttered("balance?", {"name": "check_balance", "confidence": 0.9}, timestamp=101.0)),
        transfer_turn(120.0),
        session(200.0),
    ]
    for step in steps:
        for each in (reference, store):
            await add_and_save(each, step)
        assert dicts(await store.retrieve(SENDER)) == dicts(await reference.retrieve(SENDER))
        assert dicts(await store.retrieve_full_tracker(SENDER)) == dicts(await reference.retrieve_full_tracker(SENDER))
    latest, full = await store.retrieve(SENDER), await store.retrieve_full_tracker(SENDER)
    assert dicts(latest)[0]["event"] == "session_started" and len(dicts(latest)) == 2
    assert len(dicts(full)) == 1 + 4 + 5 + 4 + 5 + 3


async def test_a_retrieved_tracker_saves_only_its_new_events(store: EncryptedMongoTrackerStore) -> None:
    await add_and_save(store, session(1.0, *transfer_turn(2.0)))
    tracker = await store.retrieve(SENDER)
    await store.save(tracker)  # nothing new: nothing written
    tracker.update(UserUttered("thanks", timestamp=9.0))
    await store.save(tracker)
    stored = store.conversations.find_one({})
    assert stored["event_count"] == len(stored["events"]) == 9
    assert dicts(await store.retrieve(SENDER))[-1]["text"] == "thanks"


async def test_concurrent_saves_of_the_same_turn_store_it_once(store: EncryptedMongoTrackerStore) -> None:
    await add_and_save(store, session(1.0))
    first, second = await store.retrieve(SENDER), await store.retrieve(SENDER)
    turn = transfer_turn(5.0)
    for tracker in (first, second):
        for event in turn:
            tracker.update(event)
    await asyncio.gather(store.save(first), store.save(second))
    assert dicts(await store.retrieve(SENDER)) == dicts(first) == dicts(second)
    assert store.conversations.find_one({})["event_count"] == 3 + 5
    assert (await store.retrieve(SENDER)).get_slot("account_number") == ACCOUNT


async def test_keys_exists_and_unknown_conversations(store: EncryptedMongoTrackerStore) -> None:
    assert await store.retrieve(SENDER) is None and list(await store.keys()) == []
    assert not await store.exists(SENDER)
    await add_and_save(store, session(1.0))
    await add_and_save(store, session(2.0), sender="5b1c9a4e0f2d4c7b8e6a3d1f0b9c8e7a")  # a `rasa shell` id
    assert sorted(await store.keys()) == sorted([SENDER, "5b1c9a4e0f2d4c7b8e6a3d1f0b9c8e7a"])
    assert await store.exists(SENDER) and not await store.exists("2348000000000")


async def test_a_wrong_session_start_hint_is_noticed_and_scanned_past(
        store: EncryptedMongoTrackerStore, caplog: pytest.LogCaptureFixture) -> None:
    await add_and_save(store, session(1.0, *transfer_turn(2.0)) + session(50.0))
    expected = dicts(await store.retrieve(SENDER))
    store.conversations.update_one({}, {"$set": {"session_start": 4}})
    with caplog.at_level(logging.WARNING):
        assert dicts(await store.retrieve(SENDER)) == expected
    assert "stored session start is wrong" in caplog.text


# --------------------------------------------------------------------- nothing readable at rest


async def test_a_dump_of_the_collection_shows_no_sender_text_account_number_or_token(
        store: EncryptedMongoTrackerStore) -> None:
    await add_and_save(store, session(1.0, *transfer_turn(2.0)))
    documents = list(store.conversations.find({}))
    dump = json_util.dumps(documents) + repr(documents)
    for secret in (SENDER, SENDER[3:], ACCOUNT, TOKEN, "send 5000", "Send ₦5,000", "transfer_money",
                   "account_number"):
        assert secret not in dump
    (document,) = documents
    assert document["_id"] == user_key(SENDER, SALT)
    assert set(document) == {"_id", "sender", "events", "event_count", "session_start", "created_at", "updated_at"}
    assert {sealed_kid(token) for _, token in sealed_fields(document)} == {Keyring.from_env(
        {"ENCRYPTION_KEY": KEY_HEX}).current_kid}


async def test_the_conversation_key_is_the_banking_core_user_key(store: EncryptedMongoTrackerStore) -> None:
    await add_and_save(store, session(1.0), sender="whatsapp:+234 803 123 4567")
    assert store.conversations.find_one({})["_id"] == user_key(SENDER, SALT)


async def test_another_key_cannot_read_the_conversations(store: EncryptedMongoTrackerStore, domain: Domain,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    await add_and_save(store, session(1.0, *transfer_turn(2.0)))
    stranger = EncryptedMongoTrackerStore(domain, database=store.db, keyring=Keyring.generate(),
                                          environ={"USER_ID_SALT": SALT})
    with pytest.raises(UnknownKey):
        await stranger.retrieve(SENDER)
    with caplog.at_level(logging.WARNING):
        assert list(await stranger.keys()) == []
    assert "1 conversations could not be opened" in caplog.text


async def test_events_moved_to_another_conversation_or_reordered_are_refused(
        store: EncryptedMongoTrackerStore) -> None:
    await add_and_save(store, session(1.0, *transfer_turn(2.0)))
    await add_and_save(store, session(1.0), sender="2348099999999")
    victim = user_key("2348099999999", SALT)
    stolen = store.conversations.find_one({"_id": user_key(SENDER, SALT)})
    store.conversations.update_one({"_id": victim}, {"$set": {"events": stolen["events"][:4]}})
    with pytest.raises(TamperedData):
        await store.retrieve_full_tracker("2348099999999")
    swapped = [stolen["events"][1], stolen["events"][0], *stolen["events"][2:]]
    store.conversations.update_one({"_id": stolen["_id"]}, {"$set": {"events": swapped}})
    with pytest.raises(TamperedData):
        await store.retrieve_full_tracker(SENDER)


async def test_key_rotation_with_the_reencrypt_script(domain: Domain, capsys: pytest.CaptureFixture[str]) -> None:
    db = in_memory_database()
    old_store = EncryptedMongoTrackerStore(domain, database=db, environ={"USER_ID_SALT": SALT,
                                                                         "ENCRYPTION_KEY": OLD_KEY_HEX})
    await add_and_save(old_store, session(1.0, *transfer_turn(2.0)))
    expected = dicts(await old_store.retrieve_full_tracker(SENDER))
    rotated_env = {"USER_ID_SALT": SALT, "ENCRYPTION_KEY": KEY_HEX, "ENCRYPTION_OLD_KEYS": OLD_KEY_HEX}
    during = EncryptedMongoTrackerStore(domain, database=db, environ=rotated_env)
    assert dicts(await during.retrieve_full_tracker(SENDER)) == expected  # old key still opens

    assert reencrypt_main([], rotated_env, db=db) == 0
    assert "conversations: 1 documents, 9 sealed values: 9 re-encrypted" in capsys.readouterr().out
    new_only = EncryptedMongoTrackerStore(domain, database=db, environ={"USER_ID_SALT": SALT,
                                                                       "ENCRYPTION_KEY": KEY_HEX})
    assert dicts(await new_only.retrieve_full_tracker(SENDER)) == expected
    assert list(await new_only.keys()) == [SENDER]
    assert reencrypt_main([], rotated_env, db=db) == 0
    assert "0 re-encrypted, 9 already current" in capsys.readouterr().out


# --------------------------------------------------------------------- retention


def test_retention_is_a_ttl_index_that_follows_the_setting(domain: Domain, environ: dict[str, str]) -> None:
    db = in_memory_database()
    EncryptedMongoTrackerStore(domain, database=db, environ=environ, retention_days=30)
    assert db["conversations"].index_information()[RETENTION_INDEX]["expireAfterSeconds"] == 30 * 86_400
    EncryptedMongoTrackerStore(domain, database=db, environ={**environ, "CONVERSATION_RETENTION_DAYS": "7"})
    assert db["conversations"].index_information()[RETENTION_INDEX]["expireAfterSeconds"] == 7 * 86_400
    EncryptedMongoTrackerStore(domain, database=db, environ=environ)
    assert RETENTION_INDEX not in db["conversations"].index_information()


@pytest.mark.parametrize("days", [0, -3, "thirty", 1.5])
def test_retention_must_be_whole_days(domain: Domain, environ: dict[str, str], days: Any) -> None:
    with pytest.raises(ConfigError, match="retention_days"):
        EncryptedMongoTrackerStore(domain, database=in_memory_database(), environ=environ, retention_days=days)


async def test_conversations_idle_past_the_retention_period_expire(domain: Domain, environ: dict[str, str]) -> None:
    now = datetime.now(timezone.utc)
    stale = EncryptedMongoTrackerStore(domain, database=in_memory_database(), environ=environ, retention_days=30,
                                       clock=lambda: now - timedelta(days=31))
    await add_and_save(stale, session(1.0), sender="2348011111111")
    fresh = EncryptedMongoTrackerStore(domain, database=stale.db, environ=environ, retention_days=30,
                                       clock=lambda: now)
    await add_and_save(fresh, session(1.0))
    assert await fresh.retrieve("2348011111111") is None
    assert list(await fresh.keys()) == [SENDER]


# --------------------------------------------------------------------- built the way Rasa builds it


@pytest.mark.usefixtures("rasa_env")
@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")  # pykwalify, inside read_endpoint_config
async def test_rasa_builds_it_from_endpoints_yml(tmp_path: Path, domain: Domain) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f"tracker_store:\n  type: {TYPE}\n  db: banking\n  collection: conversations\n"
                         "  retention_days: 90\n")
    store = TrackerStore.create(read_endpoint_config(str(endpoints), "tracker_store"), domain)
    assert type(store) is EncryptedMongoTrackerStore and check_if_tracker_store_async(store)
    assert store.retention_days == 90 and store.collection == "conversations"
    await add_and_save(store, session(1.0, *transfer_turn(2.0)))
    assert (await store.retrieve(SENDER)).get_slot("account_number") == ACCOUNT


@pytest.mark.usefixtures("rasa_env")
async def test_the_agent_sets_the_domain_after_building_the_store(domain: Domain) -> None:
    store = create_tracker_store(EndpointConfig.from_dict({"type": TYPE}))  # Agent.load passes no domain
    store.domain = domain  # Agent._create_tracker_store does this once the model is loaded
    await add_and_save(store, transfer_turn(1.0))
    assert (await store.retrieve(SENDER)).get_slot("amount") == 5000


@pytest.mark.usefixtures("rasa_env")
def test_a_url_connects_with_the_credentials_from_endpoints_yml(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def fake_client(*args: Any, **kwargs: Any) -> mongomock.MongoClient:
        calls.append((args, kwargs))
        return mongomock.MongoClient(tz_aware=True)

    monkeypatch.setattr(tracker_store_module.pymongo, "MongoClient", fake_client)
    store = TrackerStore.create(EndpointConfig.from_dict({
        "type": TYPE, "url": "mongodb://mongo.internal:27017", "db": "bank_conversations", "username": "rasa",
        "password": "pw", "auth_source": "admin", "collection": "chats"}))
    (args, kwargs), = calls
    assert args == ("mongodb://mongo.internal:27017",)
    assert kwargs["username"] == "rasa" and kwargs["password"] == "pw" and kwargs["authSource"] == "admin"
    assert kwargs["connect"] is False and kwargs["tz_aware"] is True
    assert store.db.name == "bank_conversations" and store.conversations.name == "chats"


def test_mongodb_uri_from_the_environment_is_used_when_no_url_is_given(
        monkeypatch: pytest.MonkeyPatch, domain: Domain, environ: dict[str, str]) -> None:
    uris: list[str] = []
    monkeypatch.setattr(tracker_store_module.pymongo, "MongoClient",
                        lambda uri, **_: uris.append(uri) or mongomock.MongoClient(tz_aware=True))
    EncryptedMongoTrackerStore(domain, environ={**environ, "MONGODB_URI": "mongodb://from-env:27017"})
    assert uris == ["mongodb://from-env:27017"]


def test_a_persistent_database_needs_a_real_key(domain: Domain) -> None:
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY is unset but conversations go to a persistent MongoDB"):
        EncryptedMongoTrackerStore(domain, host="mongodb://mongo.internal:27017", environ={"USER_ID_SALT": SALT})


def test_without_a_database_it_uses_memory_and_says_so_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, domain: Domain,
        environ: dict[str, str]) -> None:
    monkeypatch.setattr(tracker_store_module, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="connectors.tracker_store"):
        EncryptedMongoTrackerStore(domain, environ=environ)
        EncryptedMongoTrackerStore(domain, environ=environ)
    assert caplog.text.count("conversations are kept in an in-memory database; they are lost on exit") == 1


def test_production_refuses_missing_secrets_and_an_in_memory_database(domain: Domain) -> None:
    with pytest.raises(ConfigError, match="refusing to start in production: .*WHATSAPP_APP_SECRET is missing"):
        EncryptedMongoTrackerStore(domain, environ={"ENVIRONMENT": "production", "ENCRYPTION_KEY": KEY_HEX,
                                                    "USER_ID_SALT": SALT})
    secrets = {"ENVIRONMENT": "production", "ENCRYPTION_KEY": KEY_HEX, "USER_ID_SALT": SALT,
               "WHATSAPP_APP_SECRET": "app-secret-1234", "WHATSAPP_API_TOKEN": "EAAG-token-5678",
               "WHATSAPP_VERIFY_TOKEN": "verify-9abc"}
    with pytest.raises(ConfigError, match="MONGODB_URI is missing"):
        EncryptedMongoTrackerStore(domain, environ=secrets)


@pytest.mark.usefixtures("rasa_env")
def test_a_start_up_failure_is_not_hidden_behind_rasas_in_memory_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rasa turns AttributeError/ImportError from a custom store into an unencrypted InMemoryTrackerStore."""
    def broken() -> None:
        raise AttributeError("boom")

    monkeypatch.setattr(tracker_store_module, "in_memory_database", broken)
    with pytest.raises(RuntimeError, match="could not start: boom"):
        TrackerStore.create(EndpointConfig.from_dict({"type": TYPE}))


def test_sealed_events_are_bound_to_the_collection_key_and_position(store: EncryptedMongoTrackerStore) -> None:
    key = user_key(SENDER, SALT)
    token = store._seal_event(key, 3, {"event": "user", "text": "hi"})
    assert store.keyring.decrypt_json(token, field_context("conversations", key, "events.3"))["text"] == "hi"
