"""The Graph API client against a fake that fails, stalls and refuses: retries with backoff,
a bounded effort, 131047, and media downloads. All over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from checks.whatsapp_fakes import ADA, PHONE_NUMBER_ID, TOKEN, FakeGraphApi, bound_socket
from connectors.whatsapp import WhatsAppOutput
from connectors.whatsapp.graph import (
    GraphApiClient,
    GraphUnavailable,
    ReengagementRequired,
    RequestRejected,
    RetryPolicy,
    backoff_delay,
)

POLICY = RetryPolicy(max_attempts=4, base_delay=0.02, max_delay=0.2, jitter=0.5, total_timeout=5.0)


@pytest.fixture
async def client(graph: FakeGraphApi) -> AsyncIterator[GraphApiClient]:
    graph_client = GraphApiClient(graph.api_url, PHONE_NUMBER_ID, TOKEN, retry=POLICY)
    yield graph_client
    await graph_client.close()


@pytest.fixture
def output(client: GraphApiClient) -> WhatsAppOutput:
    return WhatsAppOutput(client)


def attempts(graph: FakeGraphApi) -> list[int]:
    return [request.status for request in graph.of_kind("message")]


# -- backoff ------------------------------------------------------------------------------


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, jitter=0.5)
    assert [backoff_delay(n, policy, rand=lambda: 0.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_jitter_adds_at_most_its_share_and_never_passes_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, jitter=0.5)
    assert backoff_delay(1, policy, rand=lambda: 1.0) == 0.75
    assert backoff_delay(3, policy, rand=lambda: 0.5) == 2.5
    assert backoff_delay(5, policy, rand=lambda: 1.0) == 8.0
    delays = {backoff_delay(2, policy) for _ in range(50)}
    assert len(delays) > 1 and all(1.0 <= delay <= 1.5 for delay in delays)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, jitter=0.0)
    assert backoff_delay(1, policy, retry_after=3.0) == 3.0
    assert backoff_delay(1, policy, retry_after=60.0) == 8.0
    assert backoff_delay(3, policy, retry_after=0.0) == 2.0


@pytest.mark.parametrize(
    "options", [{"max_attempts": 0}, {"base_delay": -1}, {"base_delay": 2.0, "max_delay": 1.0}, {"total_timeout": 0}]
)
def test_nonsense_policies_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**options)  # type: ignore[arg-type]


# -- retries against the fake ----------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_recovers_after_two_failures(
    status: int, graph: FakeGraphApi, output: WhatsAppOutput, caplog: pytest.LogCaptureFixture
) -> None:
    graph.fail_next(2, status)
    await output.send_text_message(ADA, "Your transfer is complete")
    assert attempts(graph) == [status, status, 200]
    assert graph.delivered_texts() == ["Your transfer is complete"]
    first, second, third = (request.at for request in graph.of_kind("message"))
    assert second - first >= POLICY.base_delay * 0.9  # waited before retrying ...
    assert third - second >= 2 * POLICY.base_delay * 0.9  # ... and longer the second time
    assert caplog.text.count("retrying") == 2


async def test_meta_throttling_code_is_retried_like_a_429(graph: FakeGraphApi, output: WhatsAppOutput) -> None:
    graph.refuse_next(130429, "Rate limit hit")
    await output.send_text_message(ADA, "hello")
    assert attempts(graph) == [400, 200]


async def test_retry_after_header_is_waited_for(graph: FakeGraphApi, output: WhatsAppOutput) -> None:
    graph.fail_next(1, 429, retry_after="0.15")
    await output.send_text_message(ADA, "hello")
    first, second = (request.at for request in graph.of_kind("message"))
    assert second - first >= 0.14


async def test_gives_up_after_the_attempt_bound_with_a_log_line_and_no_exception(
    graph: FakeGraphApi, output: WhatsAppOutput, caplog: pytest.LogCaptureFixture
) -> None:
    graph.fail_next(10, 500)
    await output.send_text_message(ADA, "Your OTP is in the app")  # must not raise
    assert attempts(graph) == [500] * POLICY.max_attempts
    assert "giving up after 4 attempt(s)" in caplog.text
    assert any(record.levelno == logging.ERROR for record in caplog.records)


async def test_client_raises_a_typed_error_when_it_gives_up(graph: FakeGraphApi, client: GraphApiClient) -> None:
    graph.fail_next(10, 502)
    with pytest.raises(GraphUnavailable) as raised:
        await client.send_message({"messaging_product": "whatsapp", "to": ADA, "type": "text", "text": {"body": "x"}})
    assert raised.value.status == 502


async def test_total_time_is_bounded_even_with_many_attempts_allowed(
    graph: FakeGraphApi, caplog: pytest.LogCaptureFixture
) -> None:
    policy = RetryPolicy(max_attempts=50, base_delay=0.05, max_delay=0.1, jitter=0.0, total_timeout=0.4)
    client = GraphApiClient(graph.api_url, PHONE_NUMBER_ID, TOKEN, retry=policy)
    graph.fail_next(100, 503)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await WhatsAppOutput(client).send_text_message(ADA, "hello")
    finally:
        await client.close()
    assert loop.time() - started < 1.5
    assert 2 <= len(attempts(graph)) < 10
    assert "giving up" in caplog.text


async def test_reengagement_required_is_logged_and_not_retried(
    graph: FakeGraphApi, output: WhatsAppOutput, client: GraphApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    message = "Message failed to send because more than 24 hours have passed since the customer last replied"
    graph.refuse_next(131047, message)
    await output.send_text_message(ADA, "Your card was blocked")  # no exception reaches Rasa
    assert attempts(graph) == [400]
    assert "131047" in caplog.text and "24-hour" in caplog.text and "re-engagement" in caplog.text
    graph.refuse_next(131047, message)
    with pytest.raises(ReengagementRequired):
        await client.send_message({"messaging_product": "whatsapp", "to": ADA, "type": "text", "text": {"body": "x"}})


async def test_other_client_errors_are_not_retried(
    graph: FakeGraphApi, output: WhatsAppOutput, caplog: pytest.LogCaptureFixture
) -> None:
    graph.refuse_next(100, "Invalid parameter")
    await output.send_text_message(ADA, "hello")
    assert attempts(graph) == [400]
    assert "rejected, not retried" in caplog.text and "code 100" in caplog.text


async def test_a_wrong_token_is_not_retried(graph: FakeGraphApi) -> None:
    client = GraphApiClient(graph.api_url, PHONE_NUMBER_ID, "expired-token", retry=POLICY)
    try:
        with pytest.raises(RequestRejected) as raised:
            await client.send_message({"messaging_product": "whatsapp", "to": ADA, "type": "text",
                                       "text": {"body": "x"}})
    finally:
        await client.close()
    assert raised.value.code == 190
    assert attempts(graph) == [401]


async def test_a_multi_part_answer_stops_at_the_first_undeliverable_part(
    graph: FakeGraphApi, output: WhatsAppOutput
) -> None:
    graph.refuse_next(131047, "Re-engagement message")
    await output.send_text_message(ADA, "a" * 5000)  # two parts
    assert attempts(graph) == [400]


async def test_stalled_request_times_out_and_is_retried(graph: FakeGraphApi) -> None:
    client = GraphApiClient(graph.api_url, PHONE_NUMBER_ID, TOKEN, retry=POLICY,
                            timeout=aiohttp.ClientTimeout(total=0.3))
    graph.stall_next(2.0)
    try:
        answer = await client.send_message({"messaging_product": "whatsapp", "to": ADA, "type": "text",
                                            "text": {"body": "x"}})
    finally:
        await client.close()
    assert answer["messages"][0]["id"].startswith("wamid.")
    await graph.wait_for(lambda fake: len(fake.of_kind("message")) == 2, timeout=3)


async def test_connection_refused_is_retried_then_given_up(caplog: pytest.LogCaptureFixture) -> None:
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there any more
    client = GraphApiClient(f"http://127.0.0.1:{port}/v25.0", PHONE_NUMBER_ID, TOKEN, retry=POLICY)
    try:
        await WhatsAppOutput(client).send_text_message(ADA, "hello")
    finally:
        await client.close()
    assert caplog.text.count("retrying") == POLICY.max_attempts - 1
    assert "giving up after 4 attempt(s)" in caplog.text
    assert "ClientConnectorError" in caplog.text


async def test_one_session_is_reused_and_closed(graph: FakeGraphApi, client: GraphApiClient) -> None:
    payload = {"messaging_product": "whatsapp", "to": ADA, "type": "text", "text": {"body": "x"}}
    await client.send_message(payload)
    session = client._session
    await client.send_message(payload)
    assert session is not None and client._session is session
    await client.close()
    assert session.closed


# -- media -------------------------------------------------------------------------------------


async def test_media_download_follows_metas_two_steps(graph: FakeGraphApi, client: GraphApiClient) -> None:
    graph.add_media("987654321", b"OggS-voice-bytes", "audio/ogg; codecs=opus")
    media = await client.download_media("987654321")
    assert media.content == b"OggS-voice-bytes"
    assert media.mime_type == "audio/ogg; codecs=opus"
    assert [request.path for request in graph.requests] == ["/v25.0/987654321", "/media/987654321"]
    assert all(request.headers["Authorization"] == f"Bearer {TOKEN}" for request in graph.requests)


async def test_media_over_the_size_limit_is_refused(graph: FakeGraphApi) -> None:
    client = GraphApiClient(graph.api_url, PHONE_NUMBER_ID, TOKEN, retry=POLICY, media_size_limit=1000)
    graph.add_media("big", b"x" * 5000, "audio/ogg")
    try:
        with pytest.raises(RequestRejected):
            await client.download_media("big")
    finally:
        await client.close()


async def test_unknown_media_is_a_rejection_not_a_retry_loop(graph: FakeGraphApi, client: GraphApiClient) -> None:
    with pytest.raises(RequestRejected):
        await client.download_media("does-not-exist")
    assert len(graph.of_kind("lookup")) == 1
