"""X-Hub-Signature-256: the pure check, then the webhook refusing forged deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from checks.whatsapp_fakes import APP_SECRET, FakeGraphApi, RecordingAgent, WebhookServer, load_payload, sign
from connectors.whatsapp import is_valid_signature

# RFC 4231, test case 2: HMAC-SHA256 with key "Jefe".
RFC_KEY = "Jefe"
RFC_BODY = b"what do ya want for nothing?"
RFC_DIGEST = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_known_vector_is_accepted() -> None:
    assert is_valid_signature(RFC_KEY, RFC_BODY, f"sha256={RFC_DIGEST}")


def test_upper_case_hex_is_accepted() -> None:
    assert is_valid_signature(RFC_KEY, RFC_BODY, f"sha256={RFC_DIGEST.upper()}")


def test_signature_of_a_real_webhook_body() -> None:
    body = json.dumps(load_payload("text")).encode()
    assert is_valid_signature(APP_SECRET, body, sign(body))


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        pytest.param(RFC_KEY, RFC_BODY + b" ", f"sha256={RFC_DIGEST}", id="tampered body"),
        pytest.param(RFC_KEY, RFC_BODY.replace(b"do", b"DO"), f"sha256={RFC_DIGEST}", id="one word changed"),
        pytest.param("jefe", RFC_BODY, f"sha256={RFC_DIGEST}", id="wrong secret"),
        pytest.param("", RFC_BODY, f"sha256={hmac.new(b'', RFC_BODY, hashlib.sha256).hexdigest()}",
                     id="empty secret never verifies"),
        pytest.param(RFC_KEY, RFC_BODY, None, id="missing header"),
        pytest.param(RFC_KEY, RFC_BODY, "", id="empty header"),
        pytest.param(RFC_KEY, RFC_BODY, RFC_DIGEST, id="no sha256= prefix"),
        pytest.param(RFC_KEY, RFC_BODY, f"sha1={RFC_DIGEST}", id="other algorithm"),
        pytest.param(RFC_KEY, RFC_BODY, "sha256=", id="empty digest"),
        pytest.param(RFC_KEY, RFC_BODY, f"sha256={RFC_DIGEST[:-2]}", id="truncated digest"),
        pytest.param(RFC_KEY, RFC_BODY, "sha256=zz" + RFC_DIGEST[2:], id="not hex"),
        pytest.param(RFC_KEY, RFC_BODY, "sha256=é" + RFC_DIGEST[1:], id="non-ascii"),
        pytest.param(RFC_KEY, RFC_BODY, "sha256=" + hashlib.sha256(RFC_BODY).hexdigest(), id="plain hash, no key"),
    ],
)
def test_forged_or_malformed_signatures_are_refused(secret: str, body: bytes, header: str | None) -> None:
    assert not is_valid_signature(secret, body, header)


async def test_post_without_signature_is_401_and_nothing_happens(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    status, _ = await server.post(load_payload("text"), signature=None)
    await server.settle()
    assert status == 401
    assert agent.messages == []
    assert graph.requests == []


@pytest.mark.parametrize(
    "how",
    ["wrong secret", "tampered body", "malformed header"],
)
async def test_post_with_a_bad_signature_is_403_and_nothing_happens(
    how: str, server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    body = json.dumps(load_payload("text")).encode()
    if how == "wrong secret":
        status, _ = await server.post(raw=body, signature=sign(body, "not-the-app-secret"))
    elif how == "tampered body":
        status, _ = await server.post(raw=body.replace(b"balance", b"BALANCE"), signature=sign(body))
    else:
        status, _ = await server.post(raw=body, signature="sha256:" + sign(body)[7:])
    await server.settle()
    assert status == 403
    assert agent.messages == []
    assert graph.requests == []


async def test_forged_body_that_is_not_json_is_refused_before_parsing(
    server: WebhookServer, agent: RecordingAgent
) -> None:
    status, _ = await server.post(raw=b"{not json", signature="sha256=" + "0" * 64)
    assert status == 403  # not 400: the body was never looked at


async def test_correctly_signed_delivery_is_handled(server: WebhookServer, agent: RecordingAgent) -> None:
    status, _ = await server.post(load_payload("text"))
    await server.settle()
    assert status == 200
    assert agent.texts == ["What's my balance?"]
