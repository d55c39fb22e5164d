"""The action server answers only our own `rasa run`: a bearer token on every call, loopback by default.

The app is rasa-sdk's own (`create_app("actions")`), extended through rasa-sdk's plugin
hook exactly as `rasa run actions` does it, and served over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from rasa_sdk.endpoint import create_app
from rasa_sdk.plugin import plugin_manager
from sanic import Sanic

from actions.server_auth import ActionServerAuth, is_valid_bearer
from banking.errors import ConfigError
from banking.request_context import REQUEST_ID, accept_request_id

TOKEN = "t" * 20 + uuid.uuid4().hex  # a test value, 52 characters


def test_no_token_no_action_server() -> None:
    with pytest.raises(ConfigError, match="ACTION_SERVER_TOKEN is missing"):
        ActionServerAuth.from_env({})


def test_loopback_is_the_default_address() -> None:
    assert ActionServerAuth.from_env({"ACTION_SERVER_TOKEN": TOKEN}).host == "127.0.0.1"
    private = {"ACTION_SERVER_TOKEN": TOKEN, "ACTION_SERVER_HOST": "10.0.3.7"}
    assert ActionServerAuth.from_env(private).host == "10.0.3.7"


@pytest.mark.parametrize(("token", "host", "problem"), [
    ("changeme", "127.0.0.1", "placeholder"),
    ("short-but-random-9f3a", "127.0.0.1", "shorter than 32"),
    (TOKEN, "0.0.0.0", "every interface"),
])
def test_production_refuses_weak_tokens_and_wildcard_addresses(token: str, host: str, problem: str) -> None:
    environ = {"ENVIRONMENT": "production", "ACTION_SERVER_TOKEN": token, "ACTION_SERVER_HOST": host}
    with pytest.raises(ConfigError, match=problem):
        ActionServerAuth.from_env(environ)


def test_the_token_never_shows_in_a_repr() -> None:
    assert TOKEN not in repr(ActionServerAuth.from_env({"ACTION_SERVER_TOKEN": TOKEN}))


@pytest.mark.parametrize(("header", "valid"), [
    (f"Bearer {TOKEN}", True),
    (f"bearer {TOKEN}", True),
    (f"Bearer {TOKEN}x", False),
    (f"Bearer {TOKEN[:-1]}", False),
    (f"Basic {TOKEN}", False),
    (TOKEN, False),
    ("Bearer ", False),
    (None, False),
])
def test_bearer_header(header: str | None, valid: bool) -> None:
    assert is_valid_bearer(TOKEN, header) is valid


class ActionServer:
    """rasa-sdk's app with the project's plugin attached, on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.app = create_app("actions")
        plugin_manager().hook.attach_sanic_app_extensions(app=self.app)
        self.url = ""
        self._server: Any = None

    async def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._server = await self.app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
        await self._server.startup()
        await self._server.after_start()

    async def stop(self) -> None:
        await self._server.before_stop()
        await self._server.close()
        await self._server.after_stop()


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ActionServer]:
    monkeypatch.setenv("ACTION_SERVER_TOKEN", TOKEN)
    monkeypatch.delenv("ACTION_SERVER_HOST", raising=False)
    monkeypatch.delenv("SANIC_HOST", raising=False)
    monkeypatch.setattr(Sanic, "test_mode", True)  # rasa-sdk names every app "rasa_sdk"
    running = ActionServer()
    await running.start()
    yield running
    await running.stop()


def action_call(name: str) -> dict[str, Any]:
    """A call as Rasa makes it; the tracker is whatever the caller claims."""
    return {"next_action": name, "sender_id": "2348031234567", "version": "3.6.2",
            "tracker": {"sender_id": "2348031234567", "slots": {"pending_op_id": "a" * 32}, "events": [],
                        "latest_message": {"intent": {"name": "affirm", "confidence": 1.0}}},
            "domain": {}}


async def test_the_plugin_binds_to_loopback(server: ActionServer) -> None:
    import os

    assert os.environ["SANIC_HOST"] == "127.0.0.1"  # rasa-sdk binds to what the hook set


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Basic {TOKEN}"},
])
async def test_a_call_without_the_token_runs_nothing(server: ActionServer, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/webhook", json=action_call("action_confirm_pending"),
                             headers=headers) as response:
            assert response.status == 401
            assert await response.json() == {"error": "unauthorised"}
        async with http.get(f"{server.url}/actions", headers=headers) as response:
            assert response.status == 401  # not even the list of what could be run


async def test_the_token_opens_it_and_health_needs_none(server: ActionServer) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/health") as response:
            assert response.status == 200
        async with http.get(f"{server.url}/actions", headers=bearer) as response:
            assert response.status == 200
            assert {"name": "action_confirm_pending"} in await response.json()
        async with http.post(f"{server.url}/webhook", json=action_call("action_no_such_thing"),
                             headers=bearer) as response:
            assert response.status == 404  # past the check: the action server looked the action up


async def test_a_stranger_cannot_stall_it_with_a_negative_length(server: ActionServer) -> None:
    import asyncio

    port = int(server.url.rsplit(":", 1)[1])
    for headers in (b"", f"Authorization: Bearer {TOKEN}\r\n".encode()):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /webhook HTTP/1.1\r\nHost: x\r\n" + headers + b"Content-Length: -1\r\n\r\nabc")
        await writer.drain()
        status = int((await asyncio.wait_for(reader.readline(), 5)).split()[1])
        writer.close()
        assert status in (400, 401)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/health") as response:
            assert response.status == 200


async def test_a_strangers_request_id_is_neither_taken_nor_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTION_SERVER_TOKEN", TOKEN)
    monkeypatch.delenv("ACTION_SERVER_HOST", raising=False)
    monkeypatch.delenv("SANIC_HOST", raising=False)
    monkeypatch.setattr(Sanic, "test_mode", True)
    running = ActionServer()
    seen: list[str | None] = []

    @running.app.on_request
    async def record(_: Any) -> None:  # runs after the plugin's middleware: the id log lines would carry
        seen.append(REQUEST_ID.get())

    await running.start()
    forged = "forged-id-1234567"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{running.url}/health", headers={"X-Request-ID": forged}) as answer:
                assert answer.status == 200 and "X-Request-ID" not in answer.headers
            authorised = {"X-Request-ID": "rasa-id-12345678", "Authorization": f"Bearer {TOKEN}"}
            async with session.get(f"{running.url}/actions", headers=authorised) as answer:
                assert answer.status == 200 and "X-Request-ID" not in answer.headers
    finally:
        await running.stop()
    assert seen[0] != forged and seen[1] == "rasa-id-12345678"


def test_a_request_id_with_a_trailing_newline_is_not_taken() -> None:
    assert accept_request_id("feedc0de12345678\n") != "feedc0de12345678\n"
    assert accept_request_id("feedc0de12345678") == "feedc0de12345678"
