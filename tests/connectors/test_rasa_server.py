"""`rasa run` as the product starts it: no HTTP API unless asked for with a secret, no channel
that believes a sender id from the request body, and production refuses both even when
`rasa run` is typed by hand."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from banking.errors import ConfigError
from checks.whatsapp_fakes import bound_socket
from connectors.rasa_server import ApiSettings, channel_problems, exposure_problems, rasa_command

REPO = Path(__file__).resolve().parents[2]
SECRET = "s" * 16 + uuid.uuid4().hex  # a test value, 48 characters
WHATSAPP = {"connectors.whatsapp.WhatsAppInput": {"transcriber": "assistant_llm.transcriber.GroqTranscriber"}}


def test_the_shipped_command_has_no_api_and_only_the_whatsapp_channel() -> None:
    command = rasa_command(["--model", "m.tar.gz", "--credentials", str(REPO / "credentials.yml")], environ={})
    assert command == ["rasa", "run", "--model", "m.tar.gz", "--credentials", str(REPO / "credentials.yml")]
    assert "--enable-api" not in command


def test_the_api_is_turned_on_only_with_a_secret() -> None:
    with pytest.raises(ConfigError, match="neither RASA_API_TOKEN nor RASA_JWT_SECRET"):
        ApiSettings.from_env({"RASA_API_ENABLED": "true"})
    on = ApiSettings.from_env({"RASA_API_ENABLED": "true", "RASA_API_TOKEN": SECRET})
    assert on.rasa_arguments() == ["--enable-api", "--auth-token", SECRET]
    jwt = ApiSettings.from_env({"RASA_API_ENABLED": "yes", "RASA_JWT_SECRET": SECRET})
    assert jwt.rasa_arguments() == ["--enable-api", "--jwt-secret", SECRET, "--jwt-method", "HS256"]
    assert SECRET not in repr(on) and SECRET not in repr(jwt)
    with pytest.raises(ConfigError, match="not true or false"):
        ApiSettings.from_env({"RASA_API_ENABLED": "maybe"})


def test_production_refuses_a_weak_api_secret() -> None:
    with pytest.raises(ConfigError, match="RASA_API_TOKEN is a placeholder"):
        ApiSettings.from_env({"ENVIRONMENT": "production", "RASA_API_ENABLED": "1", "RASA_API_TOKEN": "changeme"})


def test_the_api_secret_never_goes_on_a_command_line() -> None:
    for flags in (["--auth-token", SECRET], ["--jwt-secret", SECRET], ["--enable-api"]):
        with pytest.raises(ConfigError):
            rasa_command(["--credentials", str(REPO / "credentials.yml"), *flags], environ={})


def test_the_rest_channel_is_loopback_only_and_never_in_production(tmp_path: Path) -> None:
    local = REPO / "credentials.local.yml"
    assert rasa_command(["--credentials", str(local), "--interface", "127.0.0.1"], environ={})[:2] == ["rasa", "run"]
    with pytest.raises(ConfigError, match="only on loopback"):
        rasa_command(["--credentials", str(local)], environ={})  # Rasa's default interface is 0.0.0.0
    assert channel_problems({"rest": None, **WHATSAPP}, "127.0.0.1", production=True)
    assert channel_problems({"socketio": {}}, "10.1.2.3", production=False)
    assert channel_problems(WHATSAPP, "0.0.0.0", production=True) == []


def test_a_missing_credentials_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the credentials file"):
        rasa_command(["--credentials", str(tmp_path / "nope.yml")], environ={})


def test_the_launcher_refuses_before_loading_anything() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "connectors.rasa_server", "--credentials", "credentials.yml"],
        cwd=REPO, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "RASA_API_ENABLED": "true"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "neither RASA_API_TOKEN nor RASA_JWT_SECRET" in result.stderr


def test_exposure_seen_from_the_routes() -> None:
    whatsapp = ["/webhooks/whatsapp/", "/webhooks/whatsapp/webhook", "/"]
    assert exposure_problems(whatsapp, ["rasa", "run"]) == []
    assert exposure_problems([*whatsapp, "/webhooks/rest/webhook"], ["rasa", "run"])
    api = [*whatsapp, "/conversations/<conversation_id:path>/tracker", "/model"]
    assert exposure_problems(api, ["rasa", "run", "--enable-api"])
    assert exposure_problems(api, ["rasa", "run", "--enable-api", "--auth-token", SECRET]) == []


# A server as `rasa run` builds it (channels registered under /webhooks/), run by Sanic itself.
SERVER = """
import sys
from rasa.core.channels.channel import register
from rasa.core.channels.rest import RestInput
from sanic import Sanic
from connectors.whatsapp import WhatsAppInput
channels = [WhatsAppInput.from_credentials({})] + ([RestInput()] if sys.argv[2] == "rest" else [])
app = Sanic("side_doors", configure_logging=False)
register(channels, app, route="/webhooks/")
app.run("127.0.0.1", int(sys.argv[1]), access_log=False)
"""


def production_environment() -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "ENVIRONMENT": "production",
        "WHATSAPP_API_URL": "http://127.0.0.1:9/v25.0", "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
        "WHATSAPP_API_TOKEN": SECRET, "WHATSAPP_VERIFY_TOKEN": SECRET, "WHATSAPP_APP_SECRET": SECRET,
        "ENCRYPTION_KEY": uuid.uuid4().hex + uuid.uuid4().hex, "USER_ID_SALT": SECRET,
        "MONGODB_URI": "mongodb://127.0.0.1:9",
    }


def start_server(channels: str) -> tuple[subprocess.Popen[str], int]:
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port), channels], cwd=REPO,
                               env=production_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    return process, port


def test_in_production_the_channel_refuses_to_start_beside_the_rest_channel() -> None:
    process, _ = start_server("rest")
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "refusing to start in production: unauthenticated channel routes are served: webhooks/rest" in output


def test_in_production_the_channel_alone_starts() -> None:
    process, port = start_server("whatsapp")
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[0]
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert time.monotonic() < deadline, "the server did not start listening"
            time.sleep(0.2)
    finally:
        process.terminate()
        process.communicate(timeout=30)
