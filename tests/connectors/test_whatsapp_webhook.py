"""The webhook end to end: Meta's verification, every inbound type, duplicates, ordering,
statuses and malformed deliveries, over real HTTP against the fake Graph API."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from rasa.core.channels.channel import UserMessage

from banking.crypto import is_sealed
from banking.identity import keyed_hash, user_key
from checks.whatsapp_fakes import (
    ADA,
    PHONE_NUMBER_ID,
    SALT,
    TOKEN,
    TUNDE,
    VERIFY_TOKEN,
    FakeGraphApi,
    RecordingAgent,
    WebhookServer,
    load_payload,
    sign,
    text_webhook,
)
from connectors.whatsapp import Transcript, WhatsAppInput, WhatsAppOutput
from connectors.whatsapp.lanes import SideCalls
from connectors.whatsapp.store import DEDUP_RETENTION, INBOUND_COLLECTION, STATUS_COLLECTION
from connectors.whatsapp.texts import say

SOMETHING_WENT_WRONG = say("something_went_wrong")
VOICE_NOT_SUPPORTED = say("voice_not_understood")

# -- GET: Meta's subscription check ---------------------------------------------------


async def test_verification_echoes_the_challenge_as_plain_text(server: WebhookServer) -> None:
    status, content_type, body = await server.get(
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    )
    assert (status, body) == (200, "1158201444")
    assert content_type.startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "guessed", "hub.challenge": "1158201444"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN[:-1], "hub.challenge": "1158201444"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
        {"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
        {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
        {},
    ],
    ids=["wrong token", "token prefix", "wrong mode", "no mode", "no token", "no challenge", "no parameters"],
)
async def test_verification_is_refused_without_our_token(server: WebhookServer, params: dict[str, str]) -> None:
    status, _, body = await server.get(params)
    assert status == 403
    assert "1158201444" not in body


# -- POST: what reaches Rasa -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("text", "What's my balance?", "text"),
        ("interactive_button_reply", "/affirm", "button_reply"),
        ("interactive_list_reply", '/inform{"bank":"GTBank"}', "list_reply"),
        ("template_button", "/check_balance", "button"),
    ],
)
async def test_readable_messages_reach_rasa_and_the_reply_reaches_the_user(
    name: str, text: str, kind: str, server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    payload = load_payload(name)
    message_id = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    status, _ = await server.post(payload)
    await server.settle()

    assert status == 200
    (message,) = agent.messages
    assert message.text == text
    assert message.sender_id == ADA
    assert message.input_channel == "whatsapp"
    assert message.message_id == message_id
    assert isinstance(message.output_channel, WhatsAppOutput)
    assert message.metadata["whatsapp"]["type"] == kind

    (read,) = graph.of_kind("read")  # sent beside the message: it may reach Meta before or after the reply
    (reply,) = graph.of_kind("message")
    assert read.json == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": message_id,
        "typing_indicator": {"type": "text"},
    }
    assert read.path == f"/v25.0/{PHONE_NUMBER_ID}/messages"
    assert read.headers["Authorization"] == f"Bearer {TOKEN}"
    assert reply.json["to"] == ADA
    assert reply.json["text"]["body"] == f"You said: {text}"


async def test_webhook_answers_before_rasa_has_finished(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    release = asyncio.Event()

    async def slow_bot(message: UserMessage) -> None:
        await release.wait()
        await message.output_channel.send_text_message(message.sender_id, "done")

    agent.responder = slow_bot
    status, _ = await asyncio.wait_for(server.post(load_payload("text")), timeout=2)
    assert status == 200
    await agent.wait_for_messages(1)
    assert graph.delivered_texts() == []  # Rasa is still working
    release.set()
    await server.settle()
    assert graph.delivered_texts() == ["done"]


async def test_message_is_handled_even_if_the_read_receipt_fails(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi, caplog: pytest.LogCaptureFixture
) -> None:
    graph.fail_next(1, 500, kind="read")
    with caplog.at_level(logging.INFO, logger="connectors.whatsapp"):
        await server.post(load_payload("text"))
        await server.settle()
    assert agent.texts == ["What's my balance?"]
    assert graph.delivered_texts() == ["You said: What's my balance?"]
    assert "Read receipt for user " in caplog.text and "not sent" in caplog.text


async def test_a_stalled_read_receipt_does_not_hold_up_the_reply_or_the_next_customer(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    graph.stall_next(3.0, kind="read")
    await server.post(text_webhook(ADA, "wamid.stalled-receipt", "balance"))
    await server.post(text_webhook(TUNDE, "wamid.next-customer", "hello"))
    await graph.wait_for(lambda g: len(g.delivered_texts()) == 2, timeout=2.0)
    stalled = graph.of_kind("read")[0]
    assert stalled.status == 0  # Meta has not answered the first receipt yet, and both customers have their reply
    assert sorted(graph.delivered_texts()) == ["You said: balance", "You said: hello"]
    await server.settle()
    assert len(graph.of_kind("read")) == 2


async def test_a_receipt_that_starts_after_the_reply_carries_no_typing_indicator(
    make_channel: Callable[..., WhatsAppInput], serve: Callable[[WhatsAppInput], Awaitable[WebhookServer]],
    graph: FakeGraphApi,
) -> None:
    """A typing indicator sent after the answer would show the customer a bot still typing."""
    channel = make_channel()
    channel._side_calls = SideCalls(channel._lanes, limit=1)
    server = await serve(channel)
    graph.stall_next(0.5, kind="read")
    await server.post(text_webhook(ADA, "wamid.first", "one"))
    await graph.wait_for(lambda g: len(g.of_kind("read")) == 1)  # holds the one slot
    await server.post(text_webhook(TUNDE, "wamid.second", "two"))
    await graph.wait_for(lambda g: len(g.delivered_texts()) == 2)
    await server.settle()
    first, second = graph.of_kind("read")
    assert first.json["typing_indicator"] == {"type": "text"}
    assert "typing_indicator" not in second.json  # it waited for a slot while the reply went out
    assert second.json["status"] == "read"


async def test_receipts_beyond_the_backlog_are_dropped_and_the_messages_still_answered(
    make_channel: Callable[..., WhatsAppInput], serve: Callable[[WhatsAppInput], Awaitable[WebhookServer]],
    graph: FakeGraphApi, caplog: pytest.LogCaptureFixture,
) -> None:
    channel = make_channel()
    channel._side_calls = SideCalls(channel._lanes, limit=1, backlog=1)
    server = await serve(channel)
    for _ in range(3):
        graph.stall_next(0.5, kind="read")
    with caplog.at_level(logging.WARNING, logger="connectors.whatsapp.lanes"):
        for index, sender in enumerate(("2348000000001", "2348000000002", "2348000000003", "2348000000004")):
            await server.post(text_webhook(sender, f"wamid.burst-{index}", f"hi {index}"))
        await graph.wait_for(lambda g: len(g.delivered_texts()) == 4)
        await server.settle()
    assert len(graph.of_kind("read")) < 4
    assert channel._side_calls.dropped >= 1 and "read receipt dropped" in caplog.text


async def test_when_rasa_fails_the_user_is_told_and_the_next_message_still_works(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    async def flaky(message: UserMessage) -> None:
        if message.text == "boom":
            raise RuntimeError("tracker store down")
        await message.output_channel.send_text_message(message.sender_id, "fine")

    agent.responder = flaky
    await server.post(text_webhook(ADA, "wamid.boom", "boom"))
    await server.post(text_webhook(ADA, "wamid.after", "hello"))
    await server.settle()
    assert graph.delivered_texts() == [SOMETHING_WENT_WRONG, "fine"]


# -- voice notes -----------------------------------------------------------------------

OGG = b"OggS\x00\x02" + bytes(range(256)) * 4


async def test_voice_note_without_a_transcriber_is_downloaded_and_the_user_asked_to_type(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    graph.add_media("1530942791204915", OGG, "audio/ogg; codecs=opus")
    await server.post(load_payload("audio_voice"))
    await server.settle()

    assert agent.messages == []
    lookup, download = graph.of_kind("lookup"), graph.of_kind("download")
    assert [request.path for request in lookup] == ["/v25.0/1530942791204915"]
    assert [request.path for request in download] == ["/media/1530942791204915"]
    assert all(request.headers["Authorization"] == f"Bearer {TOKEN}" for request in lookup + download)
    assert graph.delivered_texts() == [VOICE_NOT_SUPPORTED]


class RecordingTranscriber:
    def __init__(self, text: str | None) -> None:
        self.text = text
        self.calls: list[tuple[bytes, str]] = []

    async def transcribe(self, audio: bytes, mime_type: str) -> Transcript | None:
        self.calls.append((audio, mime_type))
        return Transcript(self.text, language="en") if self.text is not None else None


async def test_an_injected_transcriber_turns_a_voice_note_into_a_rasa_message(
    make_channel: Any, serve: Any, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    transcriber = RecordingTranscriber("send five thousand naira to mum")
    graph.add_media("1530942791204915", OGG, "audio/ogg; codecs=opus")
    server = await serve(make_channel(transcriber=transcriber))
    await server.post(load_payload("audio_voice"))
    await server.settle()

    assert transcriber.calls == [(OGG, "audio/ogg; codecs=opus")]
    (message,) = agent.messages
    assert message.text == "send five thousand naira to mum"
    assert message.metadata["whatsapp"]["transcribed"] is True
    assert graph.delivered_texts() == ["You said: send five thousand naira to mum"]


@pytest.mark.parametrize("failure", ["media missing", "media lookup down", "transcriber crashes", "empty transcript"])
async def test_voice_note_failures_still_get_a_polite_answer(
    failure: str, make_channel: Any, serve: Any, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    class Crashing:
        async def transcribe(self, audio: bytes, mime_type: str) -> Transcript | None:
            raise RuntimeError("model not loaded")

    transcriber: Any = RecordingTranscriber("   ") if failure == "empty transcript" else Crashing()
    if failure != "media missing":
        graph.add_media("1530942791204915", OGG, "audio/ogg")
    if failure == "media lookup down":
        graph.fail_next(10, 503, kind="lookup")
    server = await serve(make_channel(transcriber=transcriber))
    await server.post(load_payload("audio_voice"))
    await server.settle()
    assert agent.messages == []
    assert graph.delivered_texts() == [VOICE_NOT_SUPPORTED]


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("image", "photos"),
        ("sticker", "stickers"),
        ("location", "shared locations"),
        ("contacts", "contact cards"),
        ("document", "documents"),
        ("video", "videos"),
        ("reaction", "reactions"),
        ("unsupported", "this kind of message"),
    ],
)
async def test_unreadable_types_get_a_polite_answer_and_never_reach_rasa(
    name: str, named: str, server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    status, _ = await server.post(load_payload(name))
    await server.settle()
    assert status == 200
    assert agent.messages == []
    (answer,) = graph.delivered_texts()
    assert f"can't read {named}" in answer
    assert "type" in answer
    assert graph.delivered()[0]["to"] == ADA


# -- each message once ------------------------------------------------------------------


async def test_retried_delivery_is_handled_once(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi, database: Any
) -> None:
    payload = load_payload("text")
    statuses = [(await server.post(payload))[0] for _ in range(5)]
    await server.settle()
    assert statuses == [200] * 5  # Meta must stop retrying
    assert len(agent.messages) == 1
    assert len(graph.delivered_texts()) == 1
    assert database[INBOUND_COLLECTION].count_documents({}) == 1


async def test_concurrent_deliveries_of_one_message_are_handled_once(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    payload = load_payload("interactive_button_reply")
    results = await asyncio.gather(*(server.post(payload) for _ in range(5)))
    await server.settle()
    assert [status for status, _ in results] == [200] * 5
    assert agent.texts == ["/affirm"]
    assert len(graph.delivered_texts()) == 1


async def test_a_retry_after_a_restart_is_still_recognised(
    server: WebhookServer, agent: RecordingAgent, make_channel: Any, database: Any
) -> None:
    """A second process (or a restarted one) on the same database sees the id too."""
    await server.post(load_payload("text"))
    await server.settle()
    other_agent = RecordingAgent()
    restarted = make_channel()
    body = json.dumps(load_payload("text")).encode()
    status = restarted.accept(body, sign(body), other_agent.handle_message)
    assert await restarted.join(5)
    await restarted.aclose()
    assert status == 200
    assert len(agent.messages) == 1 and other_agent.messages == []


async def test_seen_ids_are_kept_for_at_least_seven_days(server: WebhookServer, database: Any) -> None:
    await server.post(load_payload("text"))
    await server.settle()
    indexes = database[INBOUND_COLLECTION].index_information()
    ttl = [spec for spec in indexes.values() if "expireAfterSeconds" in spec]
    assert len(ttl) == 1
    assert ttl[0]["key"] == [("received_at", 1)]
    assert ttl[0]["expireAfterSeconds"] >= DEDUP_RETENTION.total_seconds() >= 7 * 24 * 3600
    (seen,) = database[INBOUND_COLLECTION].find({})
    assert seen["user"] == user_key(ADA, SALT)  # the user only as a hash
    message_id = load_payload("text")["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert seen["_id"] == keyed_hash(message_id, SALT)  # and the message id, which encodes the number
    assert ADA not in json.dumps(seen, default=str) and "wamid" not in json.dumps(seen, default=str)


# -- ordering ---------------------------------------------------------------------------


class ConcurrencyProbe:
    """A bot that records what it handles and how many of one user's messages overlap."""

    def __init__(self) -> None:
        self.running: dict[str, int] = {}
        self.most_at_once: dict[str, int] = {}
        self.handled: list[tuple[str, str]] = []
        self.gate: dict[str, asyncio.Event] = {}

    async def __call__(self, message: UserMessage) -> None:
        sender, text = message.sender_id, message.text or ""
        self.running[sender] = self.running.get(sender, 0) + 1
        self.most_at_once[sender] = max(self.most_at_once.get(sender, 0), self.running[sender])
        try:
            if text in self.gate:
                await asyncio.wait_for(self.gate[text].wait(), timeout=5)
            else:
                await asyncio.sleep(0.001 * (20 - len(self.handled)))  # earlier messages take longer
            self.handled.append((sender, text))
            await message.output_channel.send_text_message(sender, f"done {text}")
        finally:
            self.running[sender] -= 1


async def test_one_users_messages_are_handled_in_arrival_order_one_at_a_time(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    probe = ConcurrencyProbe()
    probe.gate["m0"] = asyncio.Event()
    agent.responder = probe
    await server.post(text_webhook(ADA, "wamid.m0", "m0"))
    await agent.wait_for_messages(1)
    # While m0 is still being handled, nine more deliveries arrive.
    for index in range(1, 10):
        assert (await server.post(text_webhook(ADA, f"wamid.m{index}", f"m{index}")))[0] == 200
    probe.gate["m0"].set()
    await server.settle()
    expected = [f"m{index}" for index in range(10)]
    assert [text for _, text in probe.handled] == expected
    assert probe.most_at_once[ADA] == 1
    assert graph.delivered_texts() == [f"done {text}" for text in expected]


async def test_messages_in_one_delivery_keep_their_order(
    server: WebhookServer, agent: RecordingAgent
) -> None:
    probe = ConcurrencyProbe()
    agent.responder = probe
    await server.post(load_payload("text_batch"))
    await server.settle()
    assert [text for _, text in probe.handled] == ["first", "second", "third"]
    assert probe.most_at_once[ADA] == 1


async def test_concurrent_deliveries_from_one_user_never_overlap(
    server: WebhookServer, agent: RecordingAgent
) -> None:
    probe = ConcurrencyProbe()
    agent.responder = probe
    texts = [f"c{index}" for index in range(12)]
    await asyncio.gather(*(server.post(text_webhook(ADA, f"wamid.{text}", text)) for text in texts))
    await server.settle()
    assert sorted(text for _, text in probe.handled) == sorted(texts)
    assert probe.most_at_once[ADA] == 1


async def test_a_slow_user_does_not_hold_up_another(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    probe = ConcurrencyProbe()
    probe.gate["ada waits"] = asyncio.Event()
    agent.responder = probe
    await server.post(text_webhook(ADA, "wamid.ada", "ada waits"))
    await server.post(text_webhook(TUNDE, "wamid.tunde", "tunde"))
    await graph.wait_for(lambda fake: "done tunde" in fake.delivered_texts(), timeout=3)
    assert probe.handled == [(TUNDE, "tunde")]  # Ada's message is still in progress
    probe.gate["ada waits"].set()
    await server.settle()
    assert probe.handled == [(TUNDE, "tunde"), (ADA, "ada waits")]


# -- statuses ---------------------------------------------------------------------------


async def test_status_updates_are_recorded_and_not_treated_as_messages(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi, database: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("statuses_delivered", "statuses_failed_131047", "statuses_delivered"):
        assert (await server.post(load_payload(name)))[0] == 200
    await server.settle()

    assert agent.messages == []
    assert graph.requests == []  # no read receipt, no reply
    records = {record["status"]: record for record in database[STATUS_COLLECTION].find({})}
    assert set(records) == {"delivered", "failed"}  # the repeated delivery is stored once
    failed = records["failed"]
    assert failed["error_code"] == 131047 and is_sealed(failed["error_title"])  # Meta's text, sealed at rest
    assert server.channel._store is not None and server.channel._store.error_title(failed) == "Re-engagement message"
    sent_id = load_payload("statuses_failed_131047")["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
    assert failed["message_id"] == keyed_hash(sent_id, SALT)  # Meta's id encodes the number: kept hashed
    assert failed["at"].timestamp() == 1732959300
    assert records["delivered"]["error_code"] is None
    for record in records.values():
        assert record["recipient"] == user_key(ADA, SALT)
        dumped = json.dumps(record, default=str)
        assert ADA not in dumped and "wamid" not in dumped and "Re-engagement" not in dumped
    assert "re-engagement" in caplog.text.lower()


# -- malformed and foreign deliveries ----------------------------------------------------

JUNK = [
    b"",
    b"{not json",
    b"\xff\xfe\x00garbage",
    b"null",
    b"[]",
    b'"whatsapp"',
    b'{"object": "whatsapp_business_account"}',
    b'{"object": "whatsapp_business_account", "entry": [null, 3, {"changes": {}}]}',
    b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"messages": "x", "statuses": 5}}]}]}',
    b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"messages": [{"type": "text"}]}}]}]}',
    b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"messages": [{"from": "2348031234567",'
    b' "id": "wamid.x", "type": "interactive", "interactive": {"type": "button_reply"}}]}}]}]}',
    b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"statuses": [{"status": "sent"}]}}]}]}',
    b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"messages": [{"from": "2348031234567",'
    b' "id": "wamid.y", "type": "audio", "audio": {}}]}}]}]}',
]


@pytest.mark.parametrize("body", JUNK)
async def test_malformed_deliveries_never_cause_a_server_error(
    body: bytes, server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    status, _ = await server.post(raw=body)
    await server.settle()
    assert status in (200, 400)
    assert agent.messages == [] and graph.delivered() == []
    # The server is still up and still serving users.
    assert (await server.post(load_payload("text")))[0] == 200
    await server.settle()
    assert agent.texts == ["What's my balance?"]


async def test_non_json_is_400_and_json_of_another_shape_is_200_each_with_a_log_line(
    server: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await server.post(raw=b"{not json"))[0] == 400
    assert "not JSON" in caplog.text
    assert (await server.post({"object": "page", "entry": []}))[0] == 200
    assert "unexpected shape" in caplog.text


async def test_a_broken_message_does_not_cost_the_others(
    server: WebhookServer, agent: RecordingAgent
) -> None:
    payload = load_payload("text_batch")
    del payload["entry"][0]["changes"][0]["value"]["messages"][1]["from"]
    assert (await server.post(payload))[0] == 200
    await server.settle()
    assert agent.texts == ["first", "third"]


async def test_messages_for_another_business_number_are_ignored(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    payload = load_payload("text")
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999999999999999"
    assert (await server.post(payload))[0] == 200
    await server.settle()
    assert agent.messages == [] and graph.requests == []


# -- privacy ------------------------------------------------------------------------------


async def test_logs_never_carry_phone_numbers_message_ids_texts_or_the_token(
    make_channel: Any, serve: Any, agent: RecordingAgent, graph: FakeGraphApi, caplog: pytest.LogCaptureFixture
) -> None:
    """A full exchange at DEBUG: messages, a retry, a duplicate, a voice note, an image,
    statuses, a refused send that quotes the number, and a crash in Rasa."""
    caplog.set_level(logging.DEBUG)
    secret_text = "Send 250000 naira to my landlord Chinedu"

    async def bot(message: UserMessage) -> None:
        if message.text == "crash please":
            raise RuntimeError("action server unreachable")
        await message.output_channel.send_response(message.sender_id, {
            "text": f"Confirm: {message.text}?",
            "buttons": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}],
        })

    agent.responder = bot
    graph.add_media("1530942791204915", OGG, "audio/ogg; codecs=opus")
    graph.fail_next(1, 500)  # the first reply is retried
    server = await serve(make_channel(transcriber=RecordingTranscriber("balance please")))
    try:
        posts: list[dict[str, Any]] = [
            text_webhook(ADA, "wamid.HBgNMjM0ODAzMTIzNDU2NxUCABIYFjNFQjA", secret_text),
            text_webhook(ADA, "wamid.HBgNMjM0ODAzMTIzNDU2NxUCABIYFjNFQjA", secret_text),  # duplicate
            text_webhook(TUNDE, "wamid.HBgNMjM0ODA1OTg3NjU0MxUCABIYFjRGQjE", "crash please"),
            load_payload("audio_voice"),
            load_payload("image"),
            load_payload("statuses_failed_131047"),
            load_payload("statuses_delivered"),
        ]
        for payload in posts:
            await server.post(payload)
        await server.settle()
        graph.refuse_next(131030, f"Recipient phone number {ADA} not in allowed list")
        await server.post(text_webhook(ADA, "wamid.HBgNMjM0ODAzMTIzNDU2NxUCABIYFjVGQjI", "hello again"))
        await server.settle()
        await server.post(raw=b"{not json")
        await server.post(load_payload("text"), signature="sha256=" + "0" * 64)
    finally:
        await server.stop()

    assert len(agent.messages) == 4  # text, crash, voice note, hello again: the duplicate was dropped
    logged = caplog.text
    # The exchange was logged (so the absence checks below mean something) ...
    assert user_key(ADA, SALT)[:12] in logged and user_key(TUNDE, SALT)[:12] in logged
    assert "Duplicate WhatsApp message" in logged
    assert "retrying" in logged and "131030" in logged and "re-engagement" in logged.lower()
    # ... without a phone number, a message id (a wamid encodes the number), a text or the token.
    for secret in (ADA, TUNDE, "+234", "MjM0ODAzMTIzNDU2Nw", "wamid.", secret_text, "crash please",
                   "balance please", "What's my balance?", TOKEN):
        assert secret not in logged, secret


# -- a database or a bot that misbehaves ------------------------------------------------------


class UnreachableDatabase:
    """A MongoDB that times out on every call, as pymongo does when the server is down."""

    def __getitem__(self, name: str) -> UnreachableDatabase:
        return self

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> None:
            from pymongo.errors import ServerSelectionTimeoutError

            raise ServerSelectionTimeoutError("db:27017: timed out")

        return fail


async def test_with_the_database_down_users_are_still_answered_once(
    make_channel: Any, serve: Any, agent: RecordingAgent, graph: FakeGraphApi, caplog: pytest.LogCaptureFixture
) -> None:
    server = await serve(make_channel(database=UnreachableDatabase()))
    for _ in range(3):
        assert (await server.post(load_payload("text")))[0] == 200
    assert (await server.post(load_payload("statuses_delivered")))[0] == 200
    await server.settle()
    assert agent.texts == ["What's my balance?"]  # in-process memory still drops the retries
    assert graph.delivered_texts() == ["You said: What's my balance?"]
    assert "deduplicating in memory only" in caplog.text
    assert "Could not record a WhatsApp delivery status" in caplog.text


async def test_shutdown_waits_for_work_then_cancels_what_is_stuck(
    server: WebhookServer, agent: RecordingAgent, channel: Any, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import connectors.whatsapp.input as whatsapp

    monkeypatch.setattr(whatsapp, "SHUTDOWN_GRACE_SECONDS", 0.2)
    never = asyncio.Event()

    async def stuck(message: UserMessage) -> None:
        await never.wait()

    agent.responder = stuck
    await server.post(load_payload("text"))
    await agent.wait_for_messages(1)
    session = channel.client._client_session()
    await asyncio.wait_for(server.stop(), timeout=3)  # Sanic's after_server_stop closes the channel
    assert "cancelled" in caplog.text
    assert session.closed
    assert await channel.join(0.1)  # nothing left running


async def test_absurdly_nested_json_is_a_400_not_a_crash(server: WebhookServer, agent: RecordingAgent) -> None:
    assert (await server.post(raw=b"[" * 100_000 + b"]" * 100_000))[0] == 400
    assert (await server.post(load_payload("text")))[0] == 200
    await server.settle()
    assert agent.texts == ["What's my balance?"]


class UnsureTranscriber:
    async def transcribe(self, audio: bytes, mime_type: str) -> Transcript | None:
        return Transcript("send five tousand to mum", language="english", confidence=0.41, low_confidence=True)


async def test_an_unsure_transcript_tells_the_customer_what_was_heard_first(
    make_channel: Any, serve: Any, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    graph.add_media("1530942791204915", OGG, "audio/ogg; codecs=opus")
    server = await serve(make_channel(transcriber=UnsureTranscriber()))
    await server.post(load_payload("audio_voice"))
    await server.settle()

    (message,) = agent.messages
    assert message.metadata["whatsapp"]["low_confidence"] is True
    heard, reply = graph.delivered_texts()
    assert "send five tousand to mum" in heard and "type" in heard  # what was heard, and how to correct it
    assert reply == "You said: send five tousand to mum"
