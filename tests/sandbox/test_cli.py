"""``python -m sandbox`` as a user runs it: real processes, real ports on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sandbox.config import SandboxConfig, SandboxForbidden
from sandbox.fake_meta.app import create_app
from tests.sandbox.sandbox_fakes import ROOT, clean_env, free_port, sandbox_command

GIVEN_SECRET = "given-app-secret-0123456789abcdef"
GIVEN_TOKEN = "given-access-token-0123456789abcdef"


def wait_until_up(port: int, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the sandbox did not come up")


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("environ", [{"ENVIRONMENT": "production"}, {"SANDBOX_FORBIDDEN": "1"}])
@pytest.mark.parametrize("args", [[], ["--print-env"], ["run", "--", "true"]])
def test_production_refuses_to_start(environ: dict[str, str], args: list[str]) -> None:
    port = free_port()
    result = subprocess.run(
        sandbox_command("--port", str(port), *args)
        if not args or args[0] != "run"
        else sandbox_command("run", "--port", str(port), *args[1:]),
        env=clean_env(**environ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "Refusing to start the WhatsApp sandbox" in result.stderr
    assert "export" not in result.stdout
    with socket.socket() as probe:  # nothing is listening
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_app_factory_refuses_production_too() -> None:
    with pytest.raises(SandboxForbidden):
        create_app(SandboxConfig.generate(), environ={"ENVIRONMENT": "production"})


def test_print_env_gives_throwaway_values_for_the_bot_and_the_sandbox() -> None:
    runs = [
        subprocess.run(
            sandbox_command("--print-env"),
            env=clean_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        for _ in range(2)
    ]

    exports = [
        dict(line[len("export ") :].split("=", 1) for line in run.stdout.splitlines() if line.startswith("export "))
        for run in runs
    ]
    first, second = exports
    assert first["WHATSAPP_API_URL"] == "http://127.0.0.1:8080/v25.0"
    assert first["WHATSAPP_APP_SECRET"] == first["SANDBOX_APP_SECRET"]
    assert first["WHATSAPP_API_TOKEN"] == first["SANDBOX_ACCESS_TOKEN"]
    assert first["WHATSAPP_VERIFY_TOKEN"] == first["SANDBOX_VERIFY_TOKEN"]
    assert first["WHATSAPP_PHONE_NUMBER_ID"] == first["SANDBOX_PHONE_NUMBER_ID"]
    assert len(first["WHATSAPP_APP_SECRET"]) == 64 and int(first["WHATSAPP_APP_SECRET"], 16) >= 0
    assert first["WHATSAPP_APP_SECRET"] != second["WHATSAPP_APP_SECRET"]  # fresh for each run
    assert first["WHATSAPP_API_TOKEN"] != second["WHATSAPP_API_TOKEN"]
    assert "Throwaway" in runs[0].stdout and "not Meta credentials" in runs[0].stdout


def test_print_env_repeats_values_already_exported() -> None:
    env = clean_env(SANDBOX_APP_SECRET=GIVEN_SECRET, SANDBOX_PORT="8181")
    result = subprocess.run(
        sandbox_command("--print-env"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )

    assert f"export WHATSAPP_APP_SECRET={GIVEN_SECRET}" in result.stdout
    assert "export WHATSAPP_API_URL=http://127.0.0.1:8181/v25.0" in result.stdout


def test_run_gives_the_command_the_sandbox_values_and_passes_its_exit_code(tmp_path: Path) -> None:
    port = free_port()
    seen = tmp_path / "env.json"
    child = (
        "import json, os, sys, urllib.request;"
        "names = [n for n in os.environ if n.startswith('WHATSAPP_')];"
        "json.dump({n: os.environ[n] for n in names}, open(sys.argv[1], 'w'));"
        "urllib.request.urlopen(os.environ['WHATSAPP_API_URL'].rsplit('/', 1)[0] + '/healthz');"
        "sys.exit(3)"
    )
    env = clean_env(SANDBOX_APP_SECRET=GIVEN_SECRET, SANDBOX_ACCESS_TOKEN=GIVEN_TOKEN)
    result = subprocess.run(
        sandbox_command("run", "--port", str(port), "--", sys.executable, "-c", child, str(seen)),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 3, result.stderr
    passed = json.loads(seen.read_text())
    assert set(passed) == {
        "WHATSAPP_API_URL",
        "WHATSAPP_PHONE_NUMBER_ID",
        "WHATSAPP_API_TOKEN",
        "WHATSAPP_VERIFY_TOKEN",
        "WHATSAPP_APP_SECRET",
    }
    assert passed["WHATSAPP_API_URL"] == f"http://127.0.0.1:{port}/v25.0"
    assert passed["WHATSAPP_APP_SECRET"] == GIVEN_SECRET and passed["WHATSAPP_API_TOKEN"] == GIVEN_TOKEN
    assert passed["WHATSAPP_PHONE_NUMBER_ID"].isdigit() and len(passed["WHATSAPP_VERIFY_TOKEN"]) == 32
    output = result.stdout + result.stderr
    assert "not Meta credentials" in output and "WHATSAPP_APP_SECRET" in output
    for secret in (GIVEN_SECRET, GIVEN_TOKEN, passed["WHATSAPP_VERIFY_TOKEN"]):
        assert secret not in output  # never printed


STUBBORN = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.signal(signal.SIGINT, signal.SIG_IGN);"


@pytest.mark.parametrize("stubborn", [False, True], ids=["obeys", "ignores-sigterm"])
def test_sigterm_stops_the_sandbox_and_the_command_together(tmp_path: Path, stubborn: bool) -> None:
    """The command gets SIGTERM; one that ignores it is killed after --stop-timeout."""
    port = free_port()
    pid_file = tmp_path / "child.pid"
    child = (STUBBORN if stubborn else "") + (
        "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)"
    )
    timeout = "1" if stubborn else "5"
    process = subprocess.Popen(
        sandbox_command(
            "run", "--port", str(port), "--stop-timeout", timeout, "--", sys.executable, "-c", child, str(pid_file)
        ),
        env=clean_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_up(port, process)
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the command did not start"
            time.sleep(0.05)
        child_pid = int(pid_file.read_text())
        assert is_running(child_pid)

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 128 + signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)
    deadline = time.monotonic() + 10
    while is_running(child_pid):
        assert time.monotonic() < deadline, "the bot command outlived the sandbox"
        time.sleep(0.05)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_serve_prints_a_throwaway_banner_serves_the_page_and_stops_on_ctrl_c() -> None:
    port = free_port()
    process = subprocess.Popen(
        sandbox_command("--port", str(port)),
        env=clean_env(SANDBOX_APP_SECRET=GIVEN_SECRET),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_up(port, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert "WhatsApp sandbox" in response.read().decode()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 128 + signal.SIGINT
    finally:
        if process.poll() is None:
            process.kill()
        stdout, stderr = process.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/" in stdout
    assert "THROWAWAY sandbox secrets were generated" in stdout and "access_token" in stdout
    assert GIVEN_SECRET not in stdout + stderr


def test_run_without_a_command_is_a_usage_error() -> None:
    result = subprocess.run(
        sandbox_command("run"), env=clean_env(), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 64 and "needs the bot command" in result.stderr
