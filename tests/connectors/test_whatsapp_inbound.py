"""Reading recorded Cloud API webhooks (checks/payloads/) into typed records."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.whatsapp_fakes import ADA, PHONE_NUMBER_ID, load_payload
from connectors.whatsapp.inbound import (
    FOR_RASA,
    UNSUPPORTED,
    VOICE,
    InboundMessage,
    UnexpectedPayload,
    parse_webhook,
)


def only_message(name: str) -> InboundMessage:
    batch = parse_webhook(load_payload(name))
    assert batch.problems == [] and batch.statuses == []
    assert len(batch.messages) == 1
    return batch.messages[0]


def first_message(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["entry"][0]["changes"][0]["value"]["messages"][0]


def test_text_message() -> None:
    message = only_message("text")
    assert (message.kind, message.handling, message.text) == ("text", FOR_RASA, "What's my balance?")
    assert message.sender == ADA
    assert message.message_id.startswith("wamid.")
    assert message.timestamp == 1732872000
    assert message.phone_number_id == PHONE_NUMBER_ID
    assert message.reply_to is None


def test_reply_button_passes_its_id_as_the_rasa_payload() -> None:
    message = only_message("interactive_button_reply")
    assert (message.kind, message.handling, message.text) == ("button_reply", FOR_RASA, "/affirm")
    assert message.reply_to is not None and message.reply_to.startswith("wamid.")


def test_list_row_passes_its_id_with_entities() -> None:
    message = only_message("interactive_list_reply")
    assert (message.kind, message.text) == ("list_reply", '/inform{"bank":"GTBank"}')


def test_template_quick_reply_uses_the_payload() -> None:
    message = only_message("template_button")
    assert (message.kind, message.handling, message.text) == ("button", FOR_RASA, "/check_balance")


def test_template_quick_reply_without_payload_falls_back_to_its_text() -> None:
    payload = load_payload("template_button")
    del first_message(payload)["button"]["payload"]
    assert parse_webhook(payload).messages[0].text == "Check balance"


def test_reply_without_id_falls_back_to_its_title() -> None:
    payload = load_payload("interactive_button_reply")
    first_message(payload)["interactive"]["button_reply"]["id"] = ""
    assert parse_webhook(payload).messages[0].text == "Yes"


def test_voice_note_carries_the_media_to_download() -> None:
    message = only_message("audio_voice")
    assert (message.kind, message.handling) == ("audio", VOICE)
    assert message.media_id == "1530942791204915"
    assert message.mime_type == "audio/ogg; codecs=opus"
    assert message.voice is True
    assert message.text is None


@pytest.mark.parametrize(
    "name", ["image", "sticker", "location", "contacts", "document", "video", "reaction", "unsupported"]
)
def test_types_the_assistant_cannot_read(name: str) -> None:
    message = only_message(name)
    assert (message.kind, message.handling, message.text) == (name, UNSUPPORTED, None)


def test_a_delivery_may_carry_several_messages_in_order() -> None:
    batch = parse_webhook(load_payload("text_batch"))
    assert [message.text for message in batch.messages] == ["first", "second", "third"]


def test_delivered_status() -> None:
    batch = parse_webhook(load_payload("statuses_delivered"))
    assert batch.messages == [] and batch.problems == []
    (status,) = batch.statuses
    assert (status.status, status.recipient, status.timestamp, status.errors) == ("delivered", ADA, 1732872845, ())


def test_failed_status_keeps_the_error_code_and_title() -> None:
    (status,) = parse_webhook(load_payload("statuses_failed_131047")).statuses
    assert status.status == "failed"
    assert [(error.code, error.title) for error in status.errors] == [(131047, "Re-engagement message")]


@pytest.mark.parametrize(
    "payload",
    [[], "hello", 42, None, {"object": "page", "entry": []}, {"object": "whatsapp_business_account"},
     {"object": "whatsapp_business_account", "entry": {"changes": []}}],
    ids=["list", "string", "number", "null", "other object", "no entry", "entry not a list"],
)
def test_json_that_is_not_a_whatsapp_webhook_is_rejected(payload: Any) -> None:
    with pytest.raises(UnexpectedPayload):
        parse_webhook(payload)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda m: m.pop("id"), "without an id"),
        (lambda m: m.pop("from"), "without an id, a sender"),
        (lambda m: m.pop("type"), "or a type"),
        (lambda m: m.pop("text"), "text message without a body"),
        (lambda m: m["text"].update(body=17), "text message without a body"),
    ],
    ids=["no id", "no sender", "no type", "no text", "body not a string"],
)
def test_a_broken_message_is_skipped_and_described_without_its_content(mutate: Any, problem: str) -> None:
    payload = load_payload("text_batch")
    mutate(first_message(payload))
    batch = parse_webhook(payload)
    assert [message.text for message in batch.messages] == ["second", "third"]
    assert len(batch.problems) == 1 and problem in batch.problems[0]
    assert ADA not in batch.problems[0] and "first" not in batch.problems[0]


def test_broken_entries_and_changes_do_not_hide_good_ones() -> None:
    good = load_payload("text")
    payload = copy.deepcopy(good)
    payload["entry"] = ["junk", {"changes": "junk"}, {"changes": ["junk", {"value": 3}]}] + good["entry"]
    batch = parse_webhook(payload)
    assert [message.text for message in batch.messages] == ["What's my balance?"]
    assert len(batch.problems) == 4


def test_changes_for_other_webhook_fields_are_not_read_as_messages() -> None:
    payload = load_payload("text")
    payload["entry"][0]["changes"][0]["field"] = "message_template_status_update"
    batch = parse_webhook(payload)
    assert batch.messages == []
    assert "message_template_status_update" in batch.problems[0]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)
message_fields = st.fixed_dictionaries(
    {},
    optional={
        "from": json_values | st.just(ADA),
        "id": json_values | st.just("wamid.x"),
        "type": json_values | st.sampled_from(["text", "interactive", "button", "audio", "image", "reaction"]),
        "timestamp": json_values,
        "context": json_values,
        "text": json_values | st.fixed_dictionaries({"body": json_values}),
        "interactive": json_values
        | st.fixed_dictionaries({"type": st.sampled_from(["button_reply", "list_reply"]), "button_reply": json_values,
                                 "list_reply": json_values}),
        "button": json_values,
        "audio": json_values,
    },
)


@settings(deadline=None)
@given(st.lists(message_fields | json_values, max_size=3), st.lists(json_values, max_size=3), json_values)
def test_any_json_inside_a_webhook_is_read_or_described_never_raised(
    messages: list[Any], statuses: list[Any], metadata: Any
) -> None:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"changes": [{"field": "messages",
                                "value": {"metadata": metadata, "messages": messages, "statuses": statuses}}]}],
    }
    batch = parse_webhook(payload)
    assert len(batch.messages) + len(batch.problems) >= len(messages)
    for message in batch.messages:
        assert message.message_id and message.sender and message.kind
        assert (message.text is not None) == (message.handling == FOR_RASA)
        assert message.handling != VOICE or message.media_id


@given(json_values)
def test_any_json_at_all_is_a_batch_or_an_unexpected_payload(payload: Any) -> None:
    try:
        parse_webhook(payload)
    except UnexpectedPayload:
        pass


@pytest.mark.parametrize("typed", [
    '/EXTERNAL_bank_updated{"bank_event":"reauth_required"}',
    '  /EXTERNAL_bank_linked{"bank_event":"connected"}',
    '//external_bank_updated',
])
def test_a_typed_external_intent_reaches_rasa_as_plain_text(typed: str) -> None:
    payload = load_payload("text")
    first_message(payload)["text"]["body"] = typed
    (message,) = parse_webhook(payload).messages
    assert message.handling == FOR_RASA and not message.text.lstrip().startswith("/")
    assert "external_bank" in message.text.lower()


def test_a_reply_id_naming_an_external_intent_is_not_an_intent_payload() -> None:
    payload = load_payload("interactive_button_reply")
    first_message(payload)["interactive"]["button_reply"]["id"] = '/EXTERNAL_bank_updated{"bank_event":"synced"}'
    (message,) = parse_webhook(payload).messages
    assert not message.text.startswith("/")
    assert only_message("interactive_button_reply").text.startswith("/")  # our own buttons still are
