"""A fake Plaid on 127.0.0.1 with the documented request and response shapes, and signed webhooks.

Endpoints (``PLAID-CLIENT-ID``/``PLAID-SECRET`` headers checked): ``/link/token/create``
(Hosted Link: ``hosted_link_url``), ``/item/public_token/exchange``, ``/accounts/balance/get``,
``/transactions/sync`` (pages of ``page_size``; ``mutate_once`` answers the first
continuation with TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION), ``/item/remove``,
``/webhook_verification_key/get``. ``signed(payload)`` gives a webhook body and its
``Plaid-Verification`` JWT (ES256, body SHA-256, iat), as Plaid signs them.

Its Hosted Link page is served by the fake itself (``GET /hl/<id>``, the ``hosted_link_url``):
one button finishes the link (``finish``), sends the signed SESSION_FINISHED webhook to the
``webhook`` URL the link token was made with, and sends the browser on to the
``completion_redirect_uri``, so a test or ``make run`` can play the customer's side.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import threading
import time
from datetime import date, timedelta
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox.hosted_page import WebhookSender, finished, login_page

CLIENT_ID = "fake_plaid_client_id"
SECRET = "fake_plaid_secret"
KID = "6c5516e1-92dc-479e-a8ff-5a51992e0001"


def _error(status: int, error_type: str, code: str) -> web.Response:
    return web.json_response({"error_type": error_type, "error_code": code, "error_message": code.lower(),
                              "display_message": None, "request_id": secrets.token_hex(4)}, status=status)


class FakePlaid:
    def __init__(self, *, page_size: int = 10, port: int = 0) -> None:
        self.page_size = page_size
        self.port = port
        self.pages: dict[str, str] = {}  # hosted page id -> link_token
        self.webhooks = WebhookSender()
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.link_tokens: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}  # access_token -> item
        self.public_tokens: dict[str, str] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.mutate_once = False
        self.fail_next: dict[str, list[tuple[int, str, str]]] = {}
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakePlaid:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-plaid", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)  # type: ignore[union-attr,arg-type]
        self._loop.call_soon_threadsafe(self._loop.stop)  # type: ignore[union-attr]
        self._thread.join(10)  # type: ignore[union-attr]
        self._loop.close()  # type: ignore[union-attr]

    async def _start(self) -> None:
        app = web.Application()
        for path in ("/link/token/create", "/item/public_token/exchange", "/accounts/balance/get",
                     "/transactions/sync", "/item/remove", "/webhook_verification_key/get"):
            app.router.add_post(path, self._handle)
        app.router.add_get("/hl/{page}", self._hosted_page)
        app.router.add_post("/hl/{page}", self._hosted_finish)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    # ----------------------------------------------------------------- the customer's side and webhooks

    def finish(self, link_token: str, transactions: int = 25) -> str:
        """The customer finishes Hosted Link: a public token for a new item with Plaid's sandbox accounts:
        a checking account, two that hold savings (a savings account and a CD) and a credit card."""
        public = f"public-sandbox-{secrets.token_hex(8)}"
        access = f"access-sandbox-{secrets.token_hex(8)}"
        item_id = f"item-{secrets.token_hex(6)}"
        start = date.today()
        self.items[access] = {"item_id": item_id, "removed": False, "accounts": [
            {"account_id": "acc-checking-1", "balances": {"available": 1204.1, "current": 1250.0, "limit": None,
                                                          "iso_currency_code": "USD", "unofficial_currency_code": None},
             "mask": "0000", "name": "Plaid Checking", "official_name": "Plaid Gold Standard 0% Interest Checking",
             "type": "depository", "subtype": "checking"},
            {"account_id": "acc-savings-1", "balances": {"available": None, "current": 210.5, "limit": None,
                                                         "iso_currency_code": "USD", "unofficial_currency_code": None},
             "mask": "1111", "name": "Plaid Saving", "official_name": "Plaid Silver Standard 0.1% Interest Saving",
             "type": "depository", "subtype": "savings"},
            {"account_id": "acc-cd-1", "balances": {"available": None, "current": 1000.0, "limit": None,
                                                    "iso_currency_code": "USD", "unofficial_currency_code": None},
             "mask": "2222", "name": "Plaid CD", "official_name": "Plaid Bronze Standard 0.2% Interest CD",
             "type": "depository", "subtype": "cd"},
            {"account_id": "acc-credit-1", "balances": {"available": None, "current": 410.0, "limit": 2000.0,
                                                        "iso_currency_code": "USD", "unofficial_currency_code": None},
             "mask": "3333", "name": "Plaid Credit Card", "official_name": None, "type": "credit",
             "subtype": "credit card"}],
            "transactions": [
                {"transaction_id": f"txn-{index}", "account_id": "acc-checking-1",
                 "amount": -1500.0 if index % 10 == 9 else 12.5 + index, "iso_currency_code": "USD",
                 "unofficial_currency_code": None, "date": (start - timedelta(days=index)).isoformat(),
                 "authorized_date": None, "name": "ACME PAYROLL" if index % 10 == 9 else f"Coffee Shop {index}",
                 "merchant_name": None if index % 10 == 9 else "Coffee Shop", "pending": False,
                 "payment_channel": "in store",
                 "personal_finance_category": ({"primary": "INCOME", "detailed": "INCOME_WAGES",
                                                "confidence_level": "VERY_HIGH"} if index % 10 == 9 else
                                               {"primary": "FOOD_AND_DRINK", "detailed": "FOOD_AND_DRINK_COFFEE",
                                                "confidence_level": "HIGH"})}
                for index in range(transactions)] + [
                {"transaction_id": "txn-cd-interest", "account_id": "acc-cd-1", "amount": -2.5,
                 "iso_currency_code": "USD", "unofficial_currency_code": None,
                 "date": (start - timedelta(days=40)).isoformat(), "authorized_date": None,
                 "name": "INTEREST PAYMENT", "merchant_name": None, "pending": False, "payment_channel": "other",
                 "personal_finance_category": {"primary": "INCOME", "detailed": "INCOME_INTEREST_EARNED",
                                               "confidence_level": "VERY_HIGH"}}]}
        self.public_tokens[public] = access
        self.link_tokens[link_token]["public_token"] = public
        return public

    def session_finished(self, link_token: str) -> dict[str, Any]:
        return {"webhook_type": "LINK", "webhook_code": "SESSION_FINISHED", "status": "SUCCESS",
                "link_session_id": f"356dbb28-7f98-44d1-8e6d-{secrets.token_hex(6)}", "link_token": link_token,
                "public_tokens": [self.link_tokens[link_token]["public_token"]], "environment": "sandbox"}

    def login_required(self, item_id: str) -> dict[str, Any]:
        return {"webhook_type": "ITEM", "webhook_code": "ERROR", "item_id": item_id,
                "error": {"error_type": "ITEM_ERROR", "error_code": "ITEM_LOGIN_REQUIRED",
                          "error_message": "the login details of this item have changed", "display_message": None,
                          "status": 400}, "environment": "sandbox"}

    def signed(self, payload: dict[str, Any], *, iat: float | None = None, key: Any = None) -> tuple[bytes, str]:
        body = json.dumps(payload, indent=2).encode()
        token = jwt.encode({"iat": int(iat if iat is not None else time.time()),
                            "request_body_sha256": hashlib.sha256(body).hexdigest()},
                           key or self.key, algorithm="ES256", headers={"kid": KID})
        return body, token

    # ----------------------------------------------------------------- the hosted page

    async def _hosted_page(self, request: web.Request) -> web.Response:
        if request.match_info["page"] not in self.pages:
            return web.Response(status=404, text="this link has expired")
        return login_page("Plaid", "your bank", "Sign in to share your accounts (read only) with the assistant.")

    async def _hosted_finish(self, request: web.Request) -> web.Response:
        token = self.pages.pop(request.match_info["page"], None)  # a page finishes once
        if token is None:
            return web.Response(status=404, text="this link has expired")
        self.finish(token)
        body, signature = self.signed(self.session_finished(token))
        self.webhooks.send(self.link_tokens[token].get("webhook"), body, {"Plaid-Verification": signature})
        return finished("Plaid", (self.link_tokens[token].get("hosted_link") or {}).get("completion_redirect_uri"))

    # ----------------------------------------------------------------- handlers

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        path = request.path
        self.requests.append((path, body))
        if (request.headers.get("PLAID-CLIENT-ID"), request.headers.get("PLAID-SECRET")) != (CLIENT_ID, SECRET):
            return _error(400, "INVALID_INPUT", "INVALID_API_KEYS")
        if self.fail_next.get(path):
            return _error(*self.fail_next[path].pop(0))
        request_id = secrets.token_hex(5)
        if path == "/link/token/create":
            if "hosted_link" not in body or not body.get("user", {}).get("client_user_id"):
                return _error(400, "INVALID_REQUEST", "MISSING_FIELDS")
            token = f"link-sandbox-{secrets.token_hex(8)}"
            self.link_tokens[token] = body
            page = secrets.token_hex(10)
            self.pages[page] = token
            return web.json_response({"link_token": token, "expiration": "2030-01-01T00:00:00Z",
                                      "request_id": request_id, "hosted_link_url": f"{self.base_url}/hl/{page}"})
        if path == "/item/public_token/exchange":
            access = self.public_tokens.pop(body.get("public_token"), None)
            if access is None:
                return _error(400, "INVALID_INPUT", "INVALID_PUBLIC_TOKEN")
            return web.json_response({"access_token": access, "item_id": self.items[access]["item_id"],
                                      "request_id": request_id})
        if path == "/webhook_verification_key/get":
            if body.get("key_id") != KID:
                return _error(400, "INVALID_INPUT", "INVALID_WEBHOOK_VERIFICATION_KEY_ID")
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
            return web.json_response({"key": {**jwk, "alg": "ES256", "kid": KID, "use": "sig",
                                              "created_at": 1560466150, "expired_at": None},
                                      "request_id": request_id})
        item = self.items.get(body.get("access_token"))
        if item is None or item["removed"]:
            return _error(400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN")
        if path == "/accounts/balance/get":
            return web.json_response({"accounts": item["accounts"], "item": {"item_id": item["item_id"]},
                                      "request_id": request_id})
        if path == "/item/remove":
            item["removed"] = True
            return web.json_response({"request_id": request_id})
        start = int(body.get("cursor") or 0)
        if start and self.mutate_once:
            self.mutate_once = False
            return _error(400, "TRANSACTIONS_ERROR", "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION")
        page = item["transactions"][start:start + self.page_size]
        more = start + self.page_size < len(item["transactions"])
        return web.json_response({"added": page, "modified": [], "removed": [], "accounts": [],
                                  "next_cursor": str(start + len(page)), "has_more": more,
                                  "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE",
                                  "request_id": request_id})
