"""Webhook bodies over Meta's 3 MB maximum are refused (413) before any HMAC is computed,
whether the size is declared (Content-Length) or only found while reading (chunked);
a body just under the limit with a good signature is handled as usual. Over real HTTP."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from checks.whatsapp_fakes import RecordingAgent, WebhookServer, load_payload, sign
from connectors.whatsapp import MAX_WEBHOOK_BYTES
from connectors.whatsapp import input as whatsapp

PATH = "/webhooks/whatsapp/webhook"


@pytest.fixture
def hmacs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every body whose signature the channel computed."""
    seen: list[int] = []
    real = whatsapp.is_valid_signature

    def counting(secret: str, body: bytes, header: str | None) -> bool:
        seen.append(len(body))
        return real(secret, body, header)

    monkeypatch.setattr(whatsapp, "is_valid_signature", counting)
    return seen


def padded_webhook(size: int) -> bytes:
    """The recorded text webhook, padded with an extra field to exactly ``size`` bytes."""
    payload: dict[str, Any] = load_payload("text")
    payload["padding"] = ""
    bare = len(json.dumps(payload).encode())
    payload["padding"] = "x" * (size - bare)
    body = json.dumps(payload).encode()
    assert len(body) == size
    return body


async def raw_exchange(server: WebhookServer, head: bytes, body_parts: list[bytes]) -> tuple[int, float]:
    """Send a request by hand and read the answer's status line; also how much of the body went."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head)
        sent = 0
        for part in body_parts:
            writer.write(part)
            sent += len(part)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
        return int(status_line.split()[1]), sent
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:  # the server closed first: it will not read what was not sent
            pass


def request_head(headers: dict[str, str]) -> bytes:
    lines = [f"POST {PATH} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_a_body_just_under_the_limit_with_a_good_signature_is_handled(
    server: WebhookServer, agent: RecordingAgent, hmacs: list[int]
) -> None:
    body = padded_webhook(MAX_WEBHOOK_BYTES)
    assert server._http is not None
    # From a file-like object: aiohttp warns that raw bytes this large would hold up the loop.
    async with server._http.post(server.webhook_url, data=io.BytesIO(body),
                                 headers={"Content-Type": "application/json",
                                          "X-Hub-Signature-256": sign(body)}) as answer:
        assert answer.status == 200
        assert answer.request_info.headers["Content-Length"] == str(MAX_WEBHOOK_BYTES)
    await server.settle()
    assert agent.texts == ["What's my balance?"]
    assert hmacs == [MAX_WEBHOOK_BYTES]


async def test_a_declared_length_over_the_limit_is_refused_unread_and_unsigned(
    server: WebhookServer, agent: RecordingAgent, hmacs: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    body = padded_webhook(MAX_WEBHOOK_BYTES + 1)
    head = request_head({"Content-Type": "application/json", "Content-Length": str(len(body)),
                         "X-Hub-Signature-256": sign(body)})
    # Only the first kilobyte is sent: the answer comes from the declared length alone.
    status, _ = await raw_exchange(server, head, [body[:1024]])
    assert status == 413
    assert hmacs == []
    await server.settle()
    assert agent.messages == []
    assert "refused unread" in caplog.text


async def test_a_chunked_body_that_grows_over_the_limit_is_refused_unsigned(
    server: WebhookServer, agent: RecordingAgent, hmacs: list[int]
) -> None:
    body = padded_webhook(MAX_WEBHOOK_BYTES + 1)
    head = request_head({"Content-Type": "application/json", "Transfer-Encoding": "chunked",
                         "X-Hub-Signature-256": sign(body)})
    step = 256 * 1024
    chunks = [b"%x\r\n%s\r\n" % (len(body[i:i + step]), body[i:i + step]) for i in range(0, len(body), step)]
    # No closing zero-length chunk: the channel must stop at the byte over the limit, not wait for the end.
    status, _ = await raw_exchange(server, head, chunks)
    assert status == 413
    assert hmacs == []
    await server.settle()
    assert agent.messages == []


async def test_a_chunked_body_within_the_limit_is_put_together_and_handled(
    server: WebhookServer, agent: RecordingAgent, hmacs: list[int]
) -> None:
    body = padded_webhook(MAX_WEBHOOK_BYTES - 10)

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 100_000):
            yield body[i:i + 100_000]

    assert server._http is not None
    async with server._http.post(server.webhook_url, data=pieces(),
                                 headers={"Content-Type": "application/json",
                                          "X-Hub-Signature-256": sign(body)}) as answer:
        assert answer.status == 200
        assert "chunked" in answer.request_info.headers.get("Transfer-Encoding", "")
    await server.settle()
    assert agent.texts == ["What's my balance?"]
    assert hmacs == [len(body)]


async def test_the_server_keeps_serving_after_refusing_a_large_body(
    server: WebhookServer, agent: RecordingAgent
) -> None:
    body = padded_webhook(MAX_WEBHOOK_BYTES + 1)
    head = request_head({"Content-Length": str(len(body)), "X-Hub-Signature-256": sign(body)})
    assert (await raw_exchange(server, head, [b"{"]))[0] == 413
    assert (await server.post(load_payload("text")))[0] == 200
    await server.settle()
    assert agent.texts == ["What's my balance?"]


def test_accept_itself_refuses_an_oversized_body_before_the_signature(
    make_channel: Any, hmacs: list[int]
) -> None:
    channel = make_channel()
    body = padded_webhook(MAX_WEBHOOK_BYTES + 1)

    async def never(_: Any) -> None:  # pragma: no cover - nothing may reach Rasa
        raise AssertionError("reached Rasa")

    assert channel.accept(body, sign(body), never) == 413
    assert hmacs == []


# "-1" once hung the whole server: Sanic 21.12 took it at its word and spun on empty reads.
# Lengths that are not integers at all Sanic refuses itself while parsing the header (500).
@pytest.mark.parametrize(("length", "expected"), [
    ("-1", 400), ("+5", 400), ("99999999999999999999999", 400), ("1e3", 500), (" 12abc", 500),
])
async def test_a_malformed_content_length_is_refused_and_the_server_stays_up(
    server: WebhookServer, agent: RecordingAgent, hmacs: list[int], length: str, expected: int
) -> None:
    status, _ = await raw_exchange(server, request_head({"Content-Length": length}), [b"abc"])

    assert status == expected
    assert hmacs == []
    body = json.dumps(load_payload("text")).encode()
    alive, _ = await server.post(raw=body)
    assert alive == 200, "one bad request must not stall the channel"


async def test_a_negative_length_on_any_other_route_is_refused_too(server: WebhookServer) -> None:
    """Not only the webhook: Sanic would spin on any route's body (the channel guards the whole server)."""
    head = b"GET /webhooks/whatsapp/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n"
    status, _ = await raw_exchange(server, head, [b"abc"])

    assert status == 400
    for _ in range(3):
        alive, _ = await asyncio.wait_for(server.post(raw=json.dumps(load_payload("text")).encode()), 5)
        assert alive == 200
