"""GET /health on the channel's server, and the request id that follows a message from the
webhook through Rasa to the action server, in JSON log lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from rasa.core.channels.channel import UserMessage
from rasa.shared.core.domain import Domain
from rasa.utils.endpoints import EndpointConfig

from banking.crypto import Keyring
from banking.log_redaction import NumberRedactingFilter
from banking.request_context import HEADER, REQUEST_ID, JsonFormatter, RequestIdFilter, accept_request_id
from banking.store import in_memory_database
from checks.whatsapp_fakes import APP_SECRET, TOKEN, VERIFY_TOKEN, RecordingAgent, WebhookServer, load_payload
from connectors.health import bank_provider_status
from connectors.request_ids import send_request_ids
from connectors.tracker_store import EncryptedMongoTrackerStore


class FakeActionServer:
    """Answers /health like rasa-sdk and remembers the request ids of the calls it got."""

    def __init__(self) -> None:
        self.request_ids: list[str | None] = []
        self.healthy = True
        self.health_calls = 0

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_post("/webhook", self._webhook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}/webhook"

    async def _health(self, _: web.Request) -> web.Response:
        self.health_calls += 1
        return web.json_response({"status": "ok"}, status=200 if self.healthy else 500)

    async def _webhook(self, request: web.Request) -> web.Response:
        self.request_ids.append(request.headers.get(HEADER))
        return web.json_response({"events": [], "responses": []})


@pytest.fixture
async def actions() -> AsyncIterator[tuple[FakeActionServer, str]]:
    fake = FakeActionServer()
    url = await fake.start()
    yield fake, url
    await fake.runner.cleanup()


def ready(agent: RecordingAgent, action_url: str) -> RecordingAgent:
    agent.is_ready = lambda: True  # type: ignore[attr-defined]
    agent.model_id = "a1b2c3"  # type: ignore[attr-defined]
    agent.tracker_store = EncryptedMongoTrackerStore(  # type: ignore[attr-defined]
        Domain.empty(), database=in_memory_database(), keyring=Keyring.generate(), environ={})
    agent.action_endpoint = EndpointConfig(action_url, headers={"Authorization": "Bearer s3cret-token"})  # type: ignore[attr-defined]
    return agent


async def get_health(server: WebhookServer) -> tuple[int, dict[str, Any], str]:
    assert server._http is not None
    async with server._http.get(f"http://127.0.0.1:{server.port}/health") as answer:
        text = await answer.text()
        return answer.status, json.loads(text), text


async def test_health_reports_model_tracker_store_action_server_and_bank_without_secrets(
    server: WebhookServer, agent: RecordingAgent, actions: tuple[FakeActionServer, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BANK_PROVIDER", "sandbox")
    ready(agent, actions[1])

    status, body, text = await get_health(server)

    assert status == 200
    assert body == {
        "status": "ok",
        "model": {"status": "ok", "model_id": "a1b2c3"},
        "tracker_store": {"status": "ok", "backend": "EncryptedMongoTrackerStore (in memory)"},
        "action_server": {"status": "ok"},
        "bank_provider": {"status": "ok", "provider": "sandbox", "configured": True},
    }
    for secret in ("s3cret-token", TOKEN, APP_SECRET, VERIFY_TOKEN, "127.0.0.1"):
        assert secret not in text


async def test_health_is_503_when_the_action_server_is_down_or_no_model_is_loaded(
    server: WebhookServer, agent: RecordingAgent, actions: tuple[FakeActionServer, str],
) -> None:
    fake, url = actions
    ready(agent, url)
    fake.healthy = False

    status, body, _ = await get_health(server)
    assert status == 503 and body["status"] == "degraded" and body["action_server"] == {"status": "down"}

    agent.is_ready = lambda: False  # type: ignore[attr-defined]
    fake.healthy = True
    status, body, _ = await get_health(server)
    assert status == 503 and body["model"] == {"status": "down", "model_id": None}


def test_a_real_bank_provider_without_its_credentials_is_down_and_never_shows_them() -> None:
    assert bank_provider_status({"BANK_PROVIDER": "mono"}) == {"status": "down", "provider": "mono",
                                                               "configured": False}
    with_key = bank_provider_status({"BANK_PROVIDER": "mono", "MONO_SECRET_KEY": "live_sk_123"})
    assert with_key == {"status": "down", "provider": "mono", "configured": False}  # no webhook secret
    complete = {"BANK_PROVIDER": "mono", "MONO_SECRET_KEY": "live_sk_123", "MONO_WEBHOOK_SECRET": "w" * 40,
                "BANK_LINK_REDIRECT_URL": "https://bank.example/webhooks/whatsapp/bank/done"}
    assert bank_provider_status(complete) == {"status": "ok", "provider": "mono", "configured": True}


def test_health_reports_a_production_provider_misconfiguration_without_naming_values() -> None:
    unsafe = {"ENVIRONMENT": "production", "BANK_PROVIDER": "mono", "MONO_SECRET_KEY": "live_sk_123",
              "MONO_WEBHOOK_SECRET": "changeme", "MONO_BASE_URL": "https://attacker.example",
              "BANK_LINK_REDIRECT_URL": "https://bank.example/webhooks/whatsapp/bank/done"}
    answer = bank_provider_status(unsafe)
    assert answer == {"status": "down", "provider": "mono", "configured": False}
    assert "attacker" not in str(answer) and "changeme" not in str(answer)


async def test_each_message_gets_a_request_id_that_rasa_sends_to_the_action_server(
    server: WebhookServer, agent: RecordingAgent, actions: tuple[FakeActionServer, str],
) -> None:
    fake, url = actions
    endpoint = EndpointConfig(url)
    seen: list[str | None] = []

    async def respond(message: UserMessage) -> None:  # what Rasa does: run a custom action
        seen.append(REQUEST_ID.get())
        await endpoint.request(json={"next_action": "action_check_balance"}, method="post")

    agent.responder = respond
    await server.post(load_payload("text"))
    await server.post(load_payload("text") | {"entry": _other_message_id(load_payload("text"))})
    await server.settle()

    assert len(seen) == 2 and all(seen) and seen[0] != seen[1]
    assert fake.request_ids == seen
    assert REQUEST_ID.get() is None  # nothing leaks outside the message's handling


def _other_message_id(payload: dict[str, Any]) -> Any:
    entry = json.loads(json.dumps(payload["entry"]))
    entry[0]["changes"][0]["value"]["messages"][0]["id"] = "wamid.other"
    return entry


def test_json_log_lines_carry_the_request_id_and_stay_redacted() -> None:
    send_request_ids()  # idempotent
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(NumberRedactingFilter())
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter("actions"))
    log = logging.getLogger("tests.request_ids")
    log.addHandler(handler)
    log.propagate = False
    token = REQUEST_ID.set("feedc0de12345678")
    try:
        log.warning("transfer to %s refused", "0123456789")
    finally:
        REQUEST_ID.reset(token)
        log.removeHandler(handler)

    line = json.loads(stream.getvalue())
    assert line["request_id"] == "feedc0de12345678" and line["process"] == "actions"
    assert line["level"] == "WARNING" and "0123456789" not in line["message"]


def test_a_caller_supplied_request_id_is_only_taken_when_it_looks_like_one() -> None:
    assert accept_request_id("feedc0de12345678") == "feedc0de12345678"
    new = accept_request_id('x"\n{"level": "forged"}')
    assert new != 'x"\n{"level": "forged"}' and len(new) == 16


class _DownDatabase:
    def command(self, *_: Any) -> Any:
        raise ConnectionError("the database is unreachable")


async def test_a_down_database_behind_rasas_fail_safe_wrapper_makes_health_503(
    server: WebhookServer, agent: RecordingAgent, actions: tuple[FakeActionServer, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rasa.core.tracker_store import FailSafeTrackerStore

    monkeypatch.setenv("BANK_PROVIDER", "sandbox")
    ready(agent, actions[1])
    inner = agent.tracker_store  # type: ignore[attr-defined]
    inner.db = _DownDatabase()
    agent.tracker_store = FailSafeTrackerStore(inner)  # type: ignore[attr-defined]  # as Rasa's agent holds it

    status, body, _ = await get_health(server)
    assert status == 503 and body["tracker_store"] == {"status": "down", "backend": "EncryptedMongoTrackerStore"}


async def test_health_asks_the_action_server_at_most_once_every_few_seconds(
    server: WebhookServer, agent: RecordingAgent, actions: tuple[FakeActionServer, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BANK_PROVIDER", "sandbox")
    fake, url = actions
    ready(agent, url)
    answers = await asyncio.gather(*(get_health(server) for _ in range(20)))
    assert all(status == 200 for status, _, _ in answers)
    assert fake.health_calls == 1
