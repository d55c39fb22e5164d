"""``make run BANK_PROVIDER=mono`` (or ``plaid``): the sandbox starts a fake of the provider
beside the chat page and hands the bot its settings; the link the bot gets opens the fake's
own page, whose button links the bank, sends the browser back to the bot's "done" page and
sends the provider's signed webhook to the bot's server. Real processes on 127.0.0.1: the
bot is played by a small script that asks for the link as the real one does and records
the webhook it receives (the whole stack's side is tests/e2e/test_bank_providers.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.config import wanted_provider
from sandbox.providers import bank_routes
from tests.sandbox.sandbox_fakes import ROOT, clean_env, free_port, sandbox_command

BOT = r'''
import json, os, sys, threading, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

port, provider, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
received = threading.Event()
seen = {"settings": {k: v for k, v in os.environ.items()
                     if k.startswith(("MONO_", "PLAID_", "BANK_"))}}

class Channel(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        seen["webhook"] = {"path": self.path, "body": json.loads(body),
                           "signed": bool(self.headers.get("mono-webhook-secret") or
                                          self.headers.get("plaid-verification"))}
        self.send_response(200); self.end_headers(); received.set()
    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", port), Channel)
threading.Thread(target=server.serve_forever, daemon=True).start()

def post(url, body, headers):
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json", **headers})
    return json.load(urllib.request.urlopen(request, timeout=10))

env = os.environ
if provider == "mono":
    answer = post(env["MONO_BASE_URL"] + "/v2/accounts/initiate",
                  {"customer": {"name": "A"}, "meta": {"ref": "lnk_test"}, "scope": "auth",
                   "redirect_url": env["BANK_LINK_REDIRECT_URL"]}, {"mono-sec-key": env["MONO_SECRET_KEY"]})
    page = answer["data"]["mono_url"]
else:
    answer = post(env["PLAID_BASE_URL"] + "/link/token/create",
                  {"user": {"client_user_id": "u1"}, "products": ["transactions"], "webhook": env["PLAID_WEBHOOK_URL"],
                   "hosted_link": {"completion_redirect_uri": env["BANK_LINK_REDIRECT_URL"]}},
                  {"PLAID-CLIENT-ID": env["PLAID_CLIENT_ID"], "PLAID-SECRET": env["PLAID_SECRET"]})
    page = answer["hosted_link_url"]
seen["page"] = page
seen["page_text"] = urllib.request.urlopen(page, timeout=10).read().decode()

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None

try:
    urllib.request.build_opener(NoRedirect).open(urllib.request.Request(page, b"", method="POST"), timeout=10)
except urllib.error.HTTPError as done:
    seen["tapped"] = [done.code, done.headers["Location"]]
seen["webhook_arrived"] = received.wait(15)
json.dump(seen, open(out, "w"))
sys.exit(3)
'''


@pytest.mark.parametrize("provider", ["mono", "plaid"])
def test_the_link_opens_the_fake_providers_page_and_its_button_sends_the_webhook_to_the_bot(
        tmp_path: Path, provider: str) -> None:
    port, bot_port = free_port(), free_port()
    bot_script, seen_file = tmp_path / "bot.py", tmp_path / "seen.json"
    bot_script.write_text(BOT)
    webhook = f"http://127.0.0.1:{bot_port}/webhooks/whatsapp/webhook"
    result = subprocess.run(
        sandbox_command("run", "--port", str(port), "--bot-webhook-url", webhook, "--",
                        sys.executable, str(bot_script), str(bot_port), provider, str(seen_file)),
        env=clean_env(BANK_PROVIDER=provider), cwd=ROOT, capture_output=True, text=True, timeout=90)

    assert result.returncode == 3, result.stdout + result.stderr
    seen = json.loads(seen_file.read_text())
    routes = f"http://127.0.0.1:{bot_port}/webhooks/whatsapp/bank"
    settings = seen["settings"]
    assert settings["BANK_LINK_REDIRECT_URL"] == f"{routes}/done"
    base = settings["MONO_BASE_URL" if provider == "mono" else "PLAID_BASE_URL"]
    assert base.startswith("http://127.0.0.1:") and seen["page"].startswith(base)  # the fake's own page
    assert "Link my account" in seen["page_text"]
    assert seen["tapped"] == [303, f"{routes}/done"]  # back to the bot's "go back to WhatsApp" page
    assert seen["webhook_arrived"] and seen["webhook"]["signed"]
    assert seen["webhook"]["path"] == f"/webhooks/whatsapp/bank/{provider}"
    if provider == "mono":
        assert seen["webhook"]["body"]["event"] == "mono.events.account_connected"
        assert seen["webhook"]["body"]["data"]["meta"]["ref"] == "lnk_test"
    else:
        assert seen["webhook"]["body"]["webhook_code"] == "SESSION_FINISHED"
        assert seen["webhook"]["body"]["public_tokens"]
    assert f"a fake {provider.capitalize()} on {base}" in result.stdout


def test_a_provider_is_faked_only_when_its_own_keys_are_absent() -> None:
    assert wanted_provider({"BANK_PROVIDER": "mono"}) == "mono"
    assert wanted_provider({"BANK_PROVIDER": "Plaid"}) == "plaid"
    assert wanted_provider({"BANK_PROVIDER": "mono", "MONO_SECRET_KEY": "test_sk_real"}) is None
    assert wanted_provider({"BANK_PROVIDER": "plaid", "PLAID_CLIENT_ID": "abc"}) is None
    assert wanted_provider({"BANK_PROVIDER": "sandbox"}) is None and wanted_provider({}) is None
    assert bank_routes("http://localhost:5005/webhooks/whatsapp/webhook") == "http://localhost:5005/webhooks/whatsapp/bank"
