"""The real bot stack on 127.0.0.1, for the end-to-end tests (``tests/e2e``, talking through
``checks.chat``) and the benchmarks and profiler in ``scripts/``.

``bot_stack()`` starts, on free ports:

- the fake Meta (``sandbox.fake_meta``) in this process and event loop, with fixed
  throwaway secrets, so what the bot sent through the Graph API can be read directly;
- the action server: ``rasa run actions --actions actions --port P1``, which requires the
  stack's throwaway ``ACTION_SERVER_TOKEN`` (``actions/server_auth.py``);
- ``rasa run`` as the product starts it (``python -m connectors.rasa_server --model MODEL
  --port P2 --credentials credentials.yml --endpoints E``: HTTP API off), where E is a copy
  of endpoints.yml with the action endpoint's URL on P1 (its token header and the tracker
  store block kept), and the ``WHATSAPP_*`` variables point at the fake Meta; spending charts go
  through ``<workdir>/charts`` and the channel's own route, as ``scripts/serve.sh`` sets them.

Both servers run in their own process group with an in-memory database (``MONGODB_URI``,
the other settings that would change the bank's behaviour and ``GROQ_*`` are removed from
their environment; a test passes Groq's in ``environment``); their output goes to log
files in a temporary directory, and a failed start raises with the tail of the log.
Leaving the context manager (also on an error, or when the task is cancelled) stops both
groups: SIGTERM, then SIGKILL after ``STOP_TIMEOUT``; should the interpreter exit without
leaving it, an ``atexit`` hook SIGKILLs them.

A user talks to the bot with ``BotStack.send`` (what the chat page does: Meta's signed
webhook POST with a fresh message id), ``BotStack.replay`` delivers an earlier webhook
again (same payload, same message id, signed again, as Meta retries), and
``BotStack.outbox`` holds every message the bot sent through the Graph API with the
time the fake Graph API took it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from sandbox.config import SandboxConfig
from sandbox.fake_meta.app import RunningSandbox, start_server
from sandbox.fake_meta.state import ChatMessage
from sandbox.fake_meta.webhooks import Sandbox

REPO = Path(__file__).resolve().parents[1]
# E2E_MODEL: another copy of the trained model (e.g. one in /tmp while models/ is being retrained).
MODEL = Path(os.environ.get("E2E_MODEL") or REPO / "models" / "banking.tar.gz")
HOST = "127.0.0.1"
WEBHOOK_PATH = "/webhooks/whatsapp/webhook"
STARTUP_TIMEOUT = 240.0  # loading the model takes 40-90 s; a busy machine more
STOP_TIMEOUT = 15.0  # `rasa run` takes about 8 s to exit (the channel gives queued work up to 10 s)

# Throwaway values for the fake Meta; nothing here is a Meta credential.
E2E_SECRETS = {
    "app_secret": "e2e-throwaway-app-secret-not-a-meta-credential",
    "access_token": "SANDBOXe2ethrowawayaccesstoken",
    "verify_token": "e2e-throwaway-verify-token",
    "phone_number_id": "100000000000001",
    "business_account_id": "100000000000002",
}

# Settings that would make the bot use a real database or behave unlike the README's
# sandbox bank; the servers run without them.
_REMOVED_SETTINGS = (
    "MONGODB_URI",
    "ENVIRONMENT",
    "BANK_PROVIDER",
    "CONFIRMATION_TTL_SECONDS",
    "DAILY_TRANSFER_LIMIT",
    "ENCRYPTION_KEY",
    "ENCRYPTION_OLD_KEYS",
    "CONVERSATION_RETENTION_DAYS",
    "RATE_LIMIT_MESSAGES",
    "RATE_LIMIT_WINDOW_SECONDS",
    "CHART_DIR",
    "CHART_BASE_URL",
    "ACTION_SERVER_TOKEN",
    "ACTION_SERVER_HOST",
    "RASA_API_ENABLED",
    "RASA_API_TOKEN",
    "RASA_JWT_SECRET",
)


class StackError(RuntimeError):
    """The stack did not start, or a server died."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def venv_python() -> str:
    """The project's interpreter (the one beside ``rasa``)."""
    return str(Path(rasa_executable()).parent / "python")


def rasa_executable() -> str:
    """The ``rasa`` next to this interpreter (the project's venv), else ``.venv/bin/rasa``."""
    beside = Path(sys.executable).parent / "rasa"
    return str(beside if beside.exists() else REPO / ".venv" / "bin" / "rasa")


def server_environment(
    bot_environment: Mapping[str, str],
    extra: Mapping[str, str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """This environment without the bank's, WhatsApp's and Groq's settings; then the sandbox's
    ``WHATSAPP_*`` and ``extra``."""
    env = {
        key: value
        for key, value in environ.items()
        if key not in _REMOVED_SETTINGS and not key.startswith(("WHATSAPP_", "SANDBOX_", "GROQ_"))
    }
    pythonpath = [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(pythonpath),
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONWARNINGS": "ignore:Slot auto-fill has been removed:UserWarning",
            **bot_environment,
            **(extra or {}),
        }
    )
    return env


def write_endpoints(directory: Path, action_port: int, source: Path = REPO / "endpoints.yml") -> Path:
    """endpoints.yml with the action endpoint's URL on ``action_port``; everything else as it is
    (the token header stays ``${ACTION_SERVER_TOKEN}``, for Rasa to fill in from the environment)."""
    endpoints = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    if "tracker_store" not in endpoints:
        raise StackError(f"{source} has no tracker_store block")
    endpoints["action_endpoint"]["url"] = f"http://{HOST}:{action_port}/webhook"
    path = directory / "endpoints.yml"
    path.write_text(yaml.safe_dump(endpoints, sort_keys=False), encoding="utf-8")
    return path


@dataclass(eq=False)
class Server:
    """One server process in its own process group, its output in ``log``."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise StackError(f"{self.name} exited with code {code}; its log ends with:\n{self.tail()}")

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to the group, then SIGKILL if anything of it is still there after ``timeout``
        (also when this is cancelled while waiting)."""
        try:
            if self.process.poll() is None:
                self.signal_group(signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while self.process.poll() is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
        finally:
            self.signal_group(signal.SIGKILL)  # whatever of the group is left
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)


def launch(name: str, command: list[str], env: Mapping[str, str], log: Path) -> Server:
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the group can be stopped
        )
    server = Server(name, process, log)
    _live_servers.add(server)
    return server


# Last resort if the interpreter exits without leaving bot_stack() (Ctrl-C in pytest can leave the test suspended).
_live_servers: set[Server] = set()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_live_servers):
        server.signal_group(signal.SIGKILL)


async def stop_servers(servers: list[Server]) -> None:
    """Stop each server (its whole process group) and forget it."""
    await asyncio.gather(*(server.stop() for server in servers), return_exceptions=True)
    for server in servers:
        _live_servers.discard(server)


@dataclass(frozen=True)
class GraphCall:
    """One message the bot sent through the Graph API (read receipts are not messages)."""

    at: float  # time.perf_counter() when the fake Graph API accepted it
    wa_id: str
    id: str
    body: dict[str, Any]

    @property
    def type(self) -> str:
        """``text``, ``button`` (reply buttons), ``list``, or another message type."""
        if self.body.get("type") == "interactive":
            return str(self.body["interactive"].get("type"))
        return str(self.body.get("type", "text"))

    @property
    def text(self) -> str:
        if self.body.get("type") == "interactive":
            return str(self.body["interactive"].get("body", {}).get("text", ""))
        return str(self.body.get("text", {}).get("body", ""))

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(id, title) of each reply button."""
        if self.type != "button":
            return []
        action = self.body["interactive"].get("action", {})
        return [(b["reply"]["id"], b["reply"]["title"]) for b in action.get("buttons", [])]

    @property
    def rows(self) -> list[tuple[str, str]]:
        """(id, title) of each list row."""
        if self.type != "list":
            return []
        action = self.body["interactive"].get("action", {})
        return [(row["id"], row["title"]) for section in action.get("sections", []) for row in section.get("rows", [])]


class Outbox:
    """Every message the bot sends, timestamped as the fake Graph API takes it (from its event stream)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.calls: list[GraphCall] = []
        self._changed = asyncio.Condition()
        self._queue = sandbox.subscribe()
        self._sandbox = sandbox
        self._task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            event, data = item
            if event == "message" and data.get("from") == "bot":
                call = GraphCall(time.perf_counter(), data["wa_id"], data["id"], data["content"])
                async with self._changed:
                    self.calls.append(call)
                    self._changed.notify_all()

    def mark(self) -> int:
        return len(self.calls)

    async def wait_for(
        self,
        start: int,
        until: Callable[[list[GraphCall]], bool],
        *,
        timeout: float = 60.0,
        quiet: float = 0.0,
    ) -> list[GraphCall]:
        """The calls since ``start`` once ``until`` holds for them (and none came for ``quiet`` seconds)."""
        deadline = time.monotonic() + timeout

        async def changed(seconds: float) -> None:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait(), max(seconds, 0.001))

        while not until(self.calls[start:]):
            if time.monotonic() >= deadline:
                raise asyncio.TimeoutError(f"the bot's messages after {timeout:.0f} s: {describe(self.calls[start:])}")
            with contextlib.suppress(asyncio.TimeoutError):
                await changed(deadline - time.monotonic())
        while quiet > 0:
            count = len(self.calls)
            with contextlib.suppress(asyncio.TimeoutError):
                await changed(quiet)
            if len(self.calls) == count:
                break
        return self.calls[start:]

    async def close(self) -> None:
        self._sandbox.unsubscribe(self._queue)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def describe(calls: list[GraphCall]) -> str:
    if not calls:
        return "none"
    return "; ".join(f"[{call.type}] {call.text!r} {[t for _, t in call.buttons + call.rows]}" for call in calls)


@dataclass
class BotStack:
    sandbox: Sandbox
    running: RunningSandbox
    actions: Server
    rasa: Server
    outbox: Outbox
    rasa_port: int
    action_port: int
    workdir: Path
    action_token: str

    @property
    def config(self) -> SandboxConfig:
        return self.sandbox.config

    def check_alive(self) -> None:
        self.actions.check_alive()
        self.rasa.check_alive()

    def check_no_errors_logged(self) -> None:
        """Both servers are up and neither logged an ERROR line."""
        for server in (self.rasa, self.actions):
            errors = [line for line in server.log_text().splitlines() if " ERROR " in line]
            assert errors == [], f"{server.name} logged errors:\n" + "\n".join(errors)
        self.check_alive()

    async def send(self, wa_id: str, request: Mapping[str, Any], *, timeout: float = 30.0) -> ChatMessage:
        """One user action, as the chat page does it (``{"type": "text", "text": ...}``,
        ``{"type": "button_reply"|"list_reply", "context_id": <bot message id>, "id": <button/row id>}``):
        the sandbox POSTs Meta's signed webhook with a new message id. Returns once the bot answered
        the POST; raises unless it answered 2xx."""
        message = self.sandbox.user_sends(self.sandbox.thread(wa_id), dict(request))
        deadline = time.monotonic() + timeout
        while message.status == "sent":  # until the webhook POST got its answer
            if time.monotonic() >= deadline:
                raise StackError(f"the bot did not answer the webhook POST within {timeout:.0f} s")
            await asyncio.sleep(0.002)
        if message.status == "failed":
            self.check_alive()
            raise StackError(f"the webhook delivery failed: {message.error}")
        return message

    def delivered_payload(self, message_id: str) -> dict[str, Any]:
        """The webhook payload that carried ``message_id`` to the bot."""
        for delivery in self.sandbox.webhook_deliveries:
            value = delivery["payload"]["entry"][0]["changes"][0]["value"]
            if any(m.get("id") == message_id for m in value.get("messages", [])):
                return delivery["payload"]
        raise KeyError("no webhook carried that message id")

    async def replay(self, message_id: str) -> int | None:
        """Deliver the webhook of ``message_id`` again, as Meta does when it retries; the HTTP status."""
        status, _ = await self.sandbox.post_webhook("message", self.delivered_payload(message_id))
        return status


async def wait_until_ready(stack_servers: list[Server], url: str, deadline: float) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            for server in stack_servers:
                server.check_alive()
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            if time.monotonic() >= deadline:
                names = ", ".join(s.name for s in stack_servers)
                tails = "\n".join(f"--- {s.name}\n{s.tail()}" for s in stack_servers)
                raise StackError(f"{url} did not answer in time ({names}); logs:\n{tails}")
            await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def bot_stack(
    model: Path = MODEL,
    *,
    startup_timeout: float = STARTUP_TIMEOUT,
    status_delay: float = 0.5,
    keep_logs: Path | None = None,
    environment: Mapping[str, str] | None = None,
    debug: bool = False,
    rasa_port: int | None = None,
) -> AsyncIterator[BotStack]:
    """The fake Meta, the action server and ``rasa run`` with the WhatsApp channel, all on free ports.

    ``environment`` adds settings for both servers (e.g. ``RATE_LIMIT_MESSAGES``); ``keep_logs``
    is a directory for the logs and endpoints.yml that outlives the run; ``debug`` runs both
    servers with ``--debug`` (every log line Rasa and rasa-sdk have); ``rasa_port`` fixes the channel's
    port when a setting must name it before the start (a bank provider's webhook URL).
    """
    model = model.resolve()
    if not model.is_file():
        raise StackError(f"{model} is missing: run `make train` first")
    rasa_port = rasa_port or free_port()
    action_port = free_port()
    while action_port == rasa_port:
        action_port = free_port()
    config = SandboxConfig.generate(
        host=HOST,
        port=0,
        bot_webhook_url=f"http://{HOST}:{rasa_port}{WEBHOOK_PATH}",
        status_delay=status_delay,
        verify_webhook_on_start=False,  # verified below, once the bot is up
        **E2E_SECRETS,
    )
    with tempfile.TemporaryDirectory(prefix="e2e-whatsapp-") as tmp:
        workdir = keep_logs or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        running = await start_server(config)  # refuses where ENVIRONMENT=production
        servers: list[Server] = []
        outbox: Outbox | None = None
        try:
            charts = {  # as scripts/serve.sh sets them: one directory, the channel's own route
                "CHART_DIR": str(workdir / "charts"),
                "CHART_BASE_URL": f"http://{HOST}:{rasa_port}/webhooks/whatsapp/charts",
            }
            token = {"ACTION_SERVER_TOKEN": secrets.token_hex(32)}
            # The stack's own analytics file: test and bench traffic never enters build/analytics.
            analytics = {"ANALYTICS_PATH": str(workdir / "analytics" / "events.jsonl")}
            env = server_environment(running.config.bot_environment(),
                                     {**charts, **token, **analytics, **(environment or {})})
            endpoints = write_endpoints(workdir, action_port)
            rasa = rasa_executable()
            verbosity = ["--debug"] if debug else []
            actions = launch(
                "action server",
                [rasa, "run", "actions", "--actions", "actions", "--port", str(action_port), *verbosity],
                env,
                workdir / "actions.log",
            )
            servers.append(actions)
            bot = launch(
                "rasa run",
                [
                    venv_python(), "-m", "connectors.rasa_server",
                    "--model", str(model),
                    "--port", str(rasa_port),
                    "--interface", HOST,
                    "--credentials", str(REPO / "credentials.yml"),
                    "--endpoints", str(endpoints),
                    *verbosity,
                ],
                env,
                workdir / "rasa.log",
            )
            servers.append(bot)
            deadline = time.monotonic() + startup_timeout
            await wait_until_ready(servers, f"http://{HOST}:{action_port}/health", deadline)
            # The channel's routes exist only once the model is loaded (Rasa loads it before listening).
            await wait_until_ready(servers, f"http://{HOST}:{rasa_port}/webhooks/whatsapp/", deadline)
            verification = await running.sandbox.verify_bot_webhook()
            if verification["state"] != "verified":
                raise StackError(f"Meta's webhook verification failed: {verification['detail']}")
            outbox = Outbox(running.sandbox)
            yield BotStack(
                sandbox=running.sandbox,
                running=running,
                actions=actions,
                rasa=bot,
                outbox=outbox,
                rasa_port=rasa_port,
                action_port=action_port,
                workdir=workdir,
                action_token=token["ACTION_SERVER_TOKEN"],
            )
        finally:
            # Status webhooks still on their way to a bot that is going away fail; that is no news.
            sandbox_log = logging.getLogger("sandbox")
            level = sandbox_log.level
            sandbox_log.setLevel(logging.ERROR)
            try:
                await stop_servers(servers)
                if outbox is not None:
                    await outbox.close()
                await running.stop()
            finally:
                sandbox_log.setLevel(level)
