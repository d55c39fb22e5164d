"""Meta's payload shapes, signatures, the Graph API body checks and the sandbox config,
as pure functions (no network)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from sandbox import payloads
from sandbox.config import SandboxConfig, SandboxForbidden, check_allowed
from sandbox.media import sample_voice_note
from sandbox.payloads import Business, GraphApiError, OutboundMessage, ReadReceipt

BUSINESS = Business(
    business_account_id="102290129340398", phone_number_id="106540352242922", display_phone_number="15550783881"
)
USER = "2348000000001"


def only_change(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["object"] == "whatsapp_business_account"
    (entry,) = payload["entry"]
    assert entry["id"] == BUSINESS.business_account_id
    (change,) = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}
    return value


def test_text_webhook_has_metas_shape() -> None:
    message = payloads.text_message(USER, "How far? *balance* abeg", timestamp="1750000000")
    payload = payloads.inbound_webhook(BUSINESS, wa_id=USER, profile_name="Ada Okafor", message=message)

    value = only_change(payload)
    assert value["contacts"] == [{"profile": {"name": "Ada Okafor"}, "wa_id": USER}]
    (sent,) = value["messages"]
    assert set(sent) == {"from", "id", "timestamp", "type", "text"}
    assert sent["from"] == USER and sent["type"] == "text" and sent["timestamp"] == "1750000000"
    assert sent["id"].startswith("wamid.") and len(sent["id"]) > 20
    assert sent["text"] == {"body": "How far? *balance* abeg"}


def test_button_reply_carries_the_button_and_the_message_it_answers() -> None:
    message = payloads.button_reply_message(BUSINESS, USER, context_id="wamid.BOT", reply_id="affirm", title="Yes")

    assert message["context"] == {"from": "15550783881", "id": "wamid.BOT"}
    assert message["type"] == "interactive"
    assert message["interactive"] == {"type": "button_reply", "button_reply": {"id": "affirm", "title": "Yes"}}
    assert isinstance(message["timestamp"], str) and message["timestamp"].isdigit()


def test_list_reply_carries_the_row_with_its_description() -> None:
    message = payloads.list_reply_message(
        BUSINESS, USER, context_id="wamid.BOT", reply_id="bank_gtbank", title="GTBank", description="Guaranty Trust"
    )

    assert message["interactive"] == {
        "type": "list_reply",
        "list_reply": {"id": "bank_gtbank", "title": "GTBank", "description": "Guaranty Trust"},
    }
    without = payloads.list_reply_message(BUSINESS, USER, context_id="wamid.BOT", reply_id="x", title="X")
    assert without["interactive"]["list_reply"] == {"id": "x", "title": "X"}


def test_voice_note_is_an_audio_message_with_a_media_id() -> None:
    data = sample_voice_note()
    message = payloads.audio_message(
        USER, media_id="123", mime_type="audio/wav", sha256_b64=payloads.sha256_base64(data)
    )

    assert message["type"] == "audio"
    assert message["audio"]["id"] == "123" and message["audio"]["voice"] is True
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE" and 20_000 < len(data) < 100_000


def test_status_webhook_has_metas_shape() -> None:
    value = only_change(
        payloads.status_webhook(BUSINESS, message_id="wamid.BOT", status="delivered", recipient_id=USER)
    )

    (status,) = value["statuses"]
    assert {"id": "wamid.BOT", "status": "delivered", "recipient_id": USER}.items() <= status.items()
    assert status["pricing"]["category"] == "service" and status["timestamp"].isdigit()
    assert "contacts" not in value and "messages" not in value


def test_signature_matches_a_known_vector_and_an_independent_hmac() -> None:
    # The HMAC-SHA256 webhook-signature example from GitHub's documentation.
    assert payloads.signature_header("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )
    body = json.dumps({"naira": "₦10,000"}).encode()
    own = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert payloads.signature_header("s3cret", body) == f"sha256={own}"
    assert payloads.signature_header("s3cret", body + b" ") != f"sha256={own}"


def test_wamids_and_media_ids_are_unique() -> None:
    assert len({payloads.new_wamid() for _ in range(200)}) == 200
    assert all(payloads.new_media_id().isdigit() for _ in range(20))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+234 800 000 0001", USER),
        ("2348000000001", USER),
        ("+1 (555) 010-0000", "15550100000"),
        ("12", None),
        ("not a number", None),
        (None, None),
    ],
)
def test_phone_numbers_become_wa_ids(raw: Any, expected: str | None) -> None:
    assert payloads.normalize_wa_id(raw) == expected


# --- the Graph API body checks -------------------------------------------------------------


def buttons(count: int, title: str = "Option") -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": USER,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Confirm?"},
            "action": {
                "buttons": [{"type": "reply", "reply": {"id": f"b{i}", "title": f"{title}{i}"}} for i in range(count)]
            },
        },
    }


def a_list(n: int, title: str = "Row") -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": USER,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "Pick your bank"},
            "action": {
                "button": "Choose bank",
                "sections": [{"title": "Banks", "rows": [{"id": f"r{i}", "title": f"{title}{i}"} for i in range(n)]}],
            },
        },
    }


VALID_BODIES = [
    {"messaging_product": "whatsapp", "to": "+" + USER, "type": "text", "text": {"body": "Hello *there*"}},
    {"messaging_product": "whatsapp", "to": USER, "text": {"body": "type defaults to text"}},
    buttons(3),
    a_list(10),
    {
        "messaging_product": "whatsapp",
        "to": USER,
        "type": "image",
        "image": {"link": "https://example.org/chart.png", "caption": "Spending"},
    },
    {
        "messaging_product": "whatsapp",
        "to": USER,
        "type": "document",
        "document": {"link": "https://example.org/receipt.pdf", "filename": "receipt.pdf"},
    },
    {"messaging_product": "whatsapp", "to": USER, "type": "document", "document": {"id": "1234"}},
    {
        "messaging_product": "whatsapp",
        "to": USER,
        "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}},
    },
]


@pytest.mark.parametrize("body", VALID_BODIES)
def test_graph_accepts_well_formed_messages(body: dict[str, Any]) -> None:
    parsed = payloads.parse_graph_message(body)

    assert isinstance(parsed, OutboundMessage)
    assert parsed.wa_id == USER and parsed.body is body


def test_graph_accepts_read_receipts_with_and_without_typing() -> None:
    plain = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"}
    typing = {**plain, "typing_indicator": {"type": "text"}}

    assert payloads.parse_graph_message(plain) == ReadReceipt("wamid.X", typing=False)
    assert payloads.parse_graph_message(typing) == ReadReceipt("wamid.X", typing=True)


INVALID_BODIES = [
    ({"to": USER, "type": "text", "text": {"body": "hi"}}, 100, "messaging_product"),
    ({"messaging_product": "whatsapp", "type": "text", "text": {"body": "hi"}}, 100, "to"),
    ({"messaging_product": "whatsapp", "to": USER, "type": "text", "text": {"body": ""}}, 100, "text.body"),
    ({"messaging_product": "whatsapp", "to": USER, "type": "text", "text": {"body": "x" * 4097}}, 131009, "4096"),
    ({"messaging_product": "whatsapp", "to": USER, "type": "carousel"}, 100, "type"),
    (buttons(4), 131009, "1 to 3"),
    (buttons(1, title="A very long button title"), 131009, "title"),
    (a_list(11), 131009, "at most 10"),
    ({"messaging_product": "whatsapp", "to": USER, "type": "image", "image": {"caption": "no link"}}, 100, "link"),
    ({"messaging_product": "whatsapp", "status": "delivered", "message_id": "wamid.X"}, 131009, "status"),
]


@pytest.mark.parametrize(("body", "code", "mentions"), INVALID_BODIES)
def test_graph_rejects_malformed_messages_like_meta(body: dict[str, Any], code: int, mentions: str) -> None:
    with pytest.raises(GraphApiError) as raised:
        payloads.parse_graph_message(body)

    error = raised.value.to_json()["error"]
    assert raised.value.http_status == 400
    assert error["code"] == code and error["type"] == "OAuthException" and error["fbtrace_id"]
    assert mentions in error["error_data"]["details"]


def test_duplicate_button_ids_are_refused() -> None:
    body = buttons(2)
    body["interactive"]["action"]["buttons"][1]["reply"]["id"] = "b0"
    with pytest.raises(GraphApiError, match="unique"):
        payloads.parse_graph_message(body)


def test_send_response_is_metas() -> None:
    assert payloads.send_response("+2348000000001", USER, "wamid.A") == {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "+2348000000001", "wa_id": USER}],
        "messages": [{"id": "wamid.A"}],
    }


# --- configuration ----------------------------------------------------------------------------


def test_generated_secrets_are_fresh_token_hex_and_hidden_from_repr() -> None:
    first, second = SandboxConfig.generate(), SandboxConfig.generate()

    assert first.app_secret != second.app_secret and first.access_token != second.access_token
    assert len(first.app_secret) == 64 and int(first.app_secret, 16) >= 0
    assert first.generated == {"app_secret", "access_token", "verify_token"}
    for secret in (first.app_secret, first.access_token, first.verify_token):
        assert secret not in repr(first)


def test_config_reads_sandbox_variables_never_the_bots_whatsapp_ones() -> None:
    environ = {
        "SANDBOX_PORT": "9099",
        "SANDBOX_APP_SECRET": "given-secret",
        "SANDBOX_BOT_WEBHOOK_URL": "http://127.0.0.1:6006/webhooks/whatsapp/webhook",
        "WHATSAPP_API_TOKEN": "a-real-meta-token",
    }
    config = SandboxConfig.from_env(environ, phone_number_id="123456789012345")

    assert config.port == 9099 and config.app_secret == "given-secret"
    assert config.phone_number_id == "123456789012345"
    assert config.access_token != "a-real-meta-token"
    assert config.generated == {"access_token", "verify_token"}
    assert config.bot_environment() == {
        "WHATSAPP_API_URL": "http://127.0.0.1:9099/v25.0",
        "WHATSAPP_PHONE_NUMBER_ID": "123456789012345",
        "WHATSAPP_API_TOKEN": config.access_token,
        "WHATSAPP_VERIFY_TOKEN": config.verify_token,
        "WHATSAPP_APP_SECRET": "given-secret",
    }


def test_config_names_a_bad_port() -> None:
    with pytest.raises(ValueError, match="SANDBOX_PORT"):
        SandboxConfig.from_env({"SANDBOX_PORT": "eighty"})


@pytest.mark.parametrize(
    "environ",
    [{"ENVIRONMENT": "production"}, {"ENVIRONMENT": "Production"}, {"SANDBOX_FORBIDDEN": "1"}],
)
def test_production_is_refused(environ: dict[str, str]) -> None:
    with pytest.raises(SandboxForbidden, match="Refusing to start the WhatsApp sandbox"):
        check_allowed(environ)


@pytest.mark.parametrize("environ", [{}, {"ENVIRONMENT": "development"}, {"SANDBOX_FORBIDDEN": "0"}])
def test_other_environments_are_allowed(environ: dict[str, str]) -> None:
    check_allowed(environ)
