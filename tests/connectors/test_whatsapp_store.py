"""What the WhatsApp channel keeps at rest: Meta's error texts sealed (and re-sealed by a key
rotation), and, after real conversations through the channel, no number, name, message
text or message id in clear in any collection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from banking.crypto import Keyring, TamperedData, field_context, is_sealed, sealed_kid
from banking.store import in_memory_database
from checks.whatsapp_fakes import (
    ADA,
    SALT,
    TUNDE,
    FakeGraphApi,
    RecordingAgent,
    WebhookServer,
    load_payload,
    text_webhook,
)
from connectors.whatsapp import Transcript
from connectors.whatsapp.inbound import StatusError, StatusUpdate
from connectors.whatsapp.store import STATUS_COLLECTION, WhatsAppStore
from scripts.reencrypt import reencrypt_database

OLD_KEY = bytes.fromhex("3f9a1c5e7b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a")
NEW_KEY = bytes.fromhex("a7c2e9f4b1d6083c5e7a9b2d4f6c8e0a3b5d7f9c1e4a6b8d0f2c5e7a9b1d3f6c")
WAMID = "wamid.HBgNMjM0ODAzMTIzNDU2NxUCABEYEjg4QTFCMkMzRDRFNUY2QTdCOAA="
TITLE = "Message to +2348031234567 undeliverable"  # Meta's texts can name the customer


def failed(message_id: str = WAMID, title: str | None = TITLE, code: int | None = 131026) -> StatusUpdate:
    return StatusUpdate(message_id, "failed", 1732959300, ADA, (StatusError(code, title),))


async def test_a_failed_status_keeps_the_code_and_seals_the_title() -> None:
    db, keyring = in_memory_database(), Keyring(OLD_KEY)
    store = WhatsAppStore(db, SALT, keyring=keyring)
    assert await store.record_status(failed())
    [document] = db[STATUS_COLLECTION].find({})
    assert document["error_code"] == 131026
    assert is_sealed(document["error_title"]) and "2348031234567" not in json.dumps(document, default=str)
    assert store.error_title(document) == TITLE
    context = field_context(STATUS_COLLECTION, document["_id"], "error_title")
    assert keyring.decrypt_text(document["error_title"], context) == TITLE


async def test_a_sealed_title_moved_to_another_status_does_not_open() -> None:
    db = in_memory_database()
    store = WhatsAppStore(db, SALT, keyring=Keyring(OLD_KEY))
    await store.record_status(failed("wamid.first"))
    await store.record_status(failed("wamid.second", title="Something else"))
    first, second = list(db[STATUS_COLLECTION].find({}))
    second["error_title"] = first["error_title"]
    with pytest.raises(TamperedData):
        store.error_title(second)


async def test_statuses_without_an_error_title_store_none() -> None:
    db = in_memory_database()
    store = WhatsAppStore(db, SALT, keyring=Keyring(OLD_KEY))
    await store.record_status(StatusUpdate("wamid.ok", "delivered", 1732959300, ADA))
    await store.record_status(failed("wamid.untitled", title=None))
    documents = {d["status"]: d for d in db[STATUS_COLLECTION].find({})}
    assert documents["delivered"]["error_title"] is None and documents["delivered"]["error_code"] is None
    assert documents["failed"]["error_title"] is None and documents["failed"]["error_code"] == 131026


async def test_the_default_keyring_is_encryption_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCRYPTION_KEY", OLD_KEY.hex())
    db = in_memory_database()
    await WhatsAppStore(db, SALT).record_status(failed())
    [document] = db[STATUS_COLLECTION].find({})
    assert sealed_kid(document["error_title"]) == Keyring(OLD_KEY).current_kid


async def test_a_key_rotation_reseals_the_titles() -> None:
    db = in_memory_database()
    await WhatsAppStore(db, SALT, keyring=Keyring(OLD_KEY)).record_status(failed())
    rotated = Keyring(NEW_KEY, [OLD_KEY])

    counts = reencrypt_database(db, rotated)

    assert counts[STATUS_COLLECTION].reencrypted == 1 and counts[STATUS_COLLECTION].unreadable == 0
    [document] = db[STATUS_COLLECTION].find({})
    assert rotated.is_current(document["error_title"])
    assert WhatsAppStore(db, SALT, keyring=Keyring(NEW_KEY)).error_title(document) == TITLE  # old key dropped
    assert reencrypt_database(db, rotated)[STATUS_COLLECTION].reencrypted == 0  # a second run changes nothing


# -- a dump after real conversations ---------------------------------------------------------


class Transcribing:
    async def transcribe(self, audio: bytes, mime_type: str) -> Transcript | None:
        return Transcript("send five thousand naira to mum", language="en")


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_in(item)


async def test_after_conversations_no_collection_holds_a_number_name_text_or_message_id_in_clear(
    make_channel: Any, serve: Any, graph: FakeGraphApi, database: Any, agent: RecordingAgent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENCRYPTION_KEY", NEW_KEY.hex())
    graph.add_media("1530942791204915", b"OggS" + bytes(200), "audio/ogg")
    server: WebhookServer = await serve(make_channel(transcriber=Transcribing()))
    failed_payload = load_payload("statuses_failed_131047")
    error = failed_payload["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]
    deliveries = [
        load_payload("text"),
        text_webhook(TUNDE, "wamid.tunde-1", "Send 25000 to 0123456789 at GTBank"),
        load_payload("interactive_button_reply"),
        load_payload("interactive_list_reply"),
        load_payload("audio_voice"),
        load_payload("image"),
        load_payload("contacts"),
        load_payload("statuses_delivered"),
        failed_payload,
    ]
    for payload in deliveries:
        assert (await server.post(payload))[0] == 200
    await server.settle()
    assert len(agent.messages) == 5

    secrets = {ADA, TUNDE, "Ada Okafor", "0123456789", error["title"], error["error_data"]["details"]}
    secrets |= {message.text for message in agent.messages}
    for payload in deliveries:
        value = payload["entry"][0]["changes"][0]["value"]
        secrets |= {item["id"] for item in value.get("messages", []) + value.get("statuses", [])}
        secrets |= {contact["profile"]["name"] for contact in value.get("contacts", []) if "profile" in contact}
    found = []
    for name in database.list_collection_names():
        for document in database[name].find({}):
            for text in strings_in(document):
                found += [(name, secret) for secret in secrets if secret and secret in text]
    assert found == []
    assert set(database.list_collection_names()) >= {"whatsapp_inbound", STATUS_COLLECTION}
