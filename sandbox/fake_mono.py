"""A fake Mono on 127.0.0.1 answering with the shapes of Mono's v2 API, and sending its webhooks.

Endpoints (header ``mono-sec-key`` checked on each): ``POST /v2/accounts/initiate``
(auth and reauth), ``GET /v2/accounts/{id}``, ``/balance``, ``/transactions`` (pages of
``page_size`` linked by ``meta.next``), ``POST /v2/accounts/{id}/unlink``,
``POST /v2/payments/initiate``, ``GET /v2/payments/verify/{reference}``,
``POST /v3/lookup/account-number`` (a made-up holder name; account numbers starting
``000`` are unknown; a ``nip_code`` that is not six digits is refused with 400, as a 3-digit
bank code would be).

The customer's side of the hosted page is ``finish(reference)``: it POSTs the
``mono.events.account_connected`` webhook (with ``meta.ref``) to the configured webhook
URL, signed with ``mono-webhook-secret`` as Mono does. ``fail_next`` makes the next
calls under a path prefix answer an HTTP error (429, 500, ...), to rehearse failures;
``slow`` delays answers under a path prefix (timeouts).

The customer's side of DirectPay's page is ``settle_payment(reference, status)``: the
payment becomes ``successful``, ``failed``, ``abandoned`` or ``cancelled`` and the
documented ``direct_debit.payment_<status>`` webhook is POSTed, signed, to the webhook URL.
DirectPay's page itself is served too (``GET /pay/<id>``, the payment's ``mono_url``): its
Approve button settles the payment ``successful`` (debited from the account it names), its
Decline button ``cancelled``, each
sends that webhook and sends the browser on to the payment's ``redirect_url``; a page is
used once.

Mono Connect's page is served by the fake itself (``GET /connect/<id>``, the ``mono_url``):
one button links a new account (``MonoAccount`` with ``sample_transactions``), sends the
signed ``account_connected`` webhook to ``webhook_url`` and sends the browser on to the
link's ``redirect_url``, so a test or ``make run`` can play the customer's side.

Runs in its own thread and event loop (``FakeMono.start()``), so synchronous clients
can call it from anywhere.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.hosted_page import WebhookSender, finished, login_page, payment_page

SECRET_KEY = "test_sk_fake_mono_secret_key"
WEBHOOK_SECRET = "fake-mono-webhook-secret-0123456789"


@dataclass
class MonoAccount:
    account_id: str
    name: str = "ADA OKAFOR"
    account_number: str = "0123456789"
    type: str = "SAVINGS_ACCOUNT"
    balance: int = 8_765_432  # kobo
    currency: str = "NGN"
    bank: str = "GTBank"
    bank_code: str = "058"
    data_status: str = "AVAILABLE"
    transactions: list[dict[str, Any]] = field(default_factory=list)
    linked: bool = True


def sample_transactions(count: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """Mono-shaped transactions, newest first, one a day."""
    now = now or datetime.now(timezone.utc)
    categories = ["food_and_drinks", "transport", "airtime", "bills", "transfer", "salary", None]
    found = []
    for index in range(count):
        credit = index % 7 == 5
        found.append({
            "id": f"txn_{index:04d}",
            "narration": "SALARY ACME LTD" if credit else f"POS PURCHASE SHOP {index}",
            "amount": 25_000_000 if credit else 150_000 + 1_000 * index,
            "type": "credit" if credit else "debit",
            "balance": 8_765_432,
            "date": (now - timedelta(days=index, hours=1)).isoformat().replace("+00:00", "Z"),
            "category": categories[index % len(categories)],
        })
    return found


class FakeMono:
    """State and handlers of the fake; read ``requests`` to see what the client sent."""

    def __init__(self, *, page_size: int = 20, port: int = 0) -> None:
        self.page_size = page_size
        self.port = port
        self.pages: dict[str, str] = {}  # Mono Connect page id -> our meta.ref
        self.payment_pages: dict[str, str] = {}  # DirectPay page id -> our payment reference
        self.webhooks = WebhookSender()
        self.accounts: dict[str, MonoAccount] = {}
        self.sessions: dict[str, dict[str, Any]] = {}  # our meta.ref -> initiate body
        self.payments: dict[str, dict[str, Any]] = {}
        self.lookups: list[dict[str, str]] = []  # the nip_code of each account-number lookup
        self.requests: list[dict[str, Any]] = []
        self.fail_next: dict[str, list[int]] = {}
        self.slow: dict[str, float] = {}  # path prefix -> seconds before answering
        self.webhook_url: str | None = None
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- life

    def start(self) -> FakeMono:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-mono", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)  # type: ignore[union-attr]
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)  # type: ignore[union-attr]
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v2/accounts/initiate", self._initiate)
        app.router.add_get("/v2/accounts/{id}", self._details)
        app.router.add_get("/v2/accounts/{id}/balance", self._balance)
        app.router.add_get("/v2/accounts/{id}/transactions", self._transactions)
        app.router.add_post("/v2/accounts/{id}/unlink", self._unlink)
        app.router.add_get("/connect/{page}", self._connect_page)
        app.router.add_post("/connect/{page}", self._connect_finish)
        app.router.add_get("/pay/{page}", self._payment_page)
        app.router.add_post("/pay/{page}", self._payment_decided)
        app.router.add_post("/v2/payments/initiate", self._pay)
        app.router.add_get("/v2/payments/verify/{reference}", self._verify)
        app.router.add_post("/v3/lookup/account-number", self._lookup)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    # ----------------------------------------------------------------- the customer's side

    def add_account(self, account: MonoAccount) -> MonoAccount:
        self.accounts[account.account_id] = account
        return account

    def connected_webhook(self, reference: str, account_id: str, data_status: str = "AVAILABLE") -> dict[str, Any]:
        """The documented ``mono.events.account_connected`` body for a finished page."""
        return {"event": "mono.events.account_connected",
                "data": {"id": account_id, "customer": "65aa78e567adacffd5123456",
                         "meta": {"ref": reference, "data_status": data_status}}}

    def updated_webhook(self, account_id: str, data_status: str) -> dict[str, Any]:
        account = self.accounts[account_id]
        return {"event": "mono.events.account_updated",
                "data": {"account": {"_id": account_id, "name": account.name, "accountNumber": account.account_number,
                                     "currency": account.currency, "balance": account.balance, "type": account.type,
                                     "institution": {"name": account.bank, "bankCode": account.bank_code,
                                                     "type": "PERSONAL_BANKING"}},
                         "meta": {"data_status": data_status, "auth_method": "mobile_banking"}}}

    def reauth_webhook(self, account_id: str) -> dict[str, Any]:
        return {"event": "mono.events.reauthorisation_required", "data": {"account": {"_id": account_id}}}

    def payment_webhook(self, reference: str, status: str) -> dict[str, Any]:
        """The documented ``direct_debit.payment_<status>`` body for one payment (its event id is new each time)."""
        payment = self.payments[reference]
        return {"event": f"direct_debit.payment_{status}", "event_id": secrets.token_urlsafe(32),
                "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                "data": {"type": "onetime-debit", "object": {
                    "_id": secrets.token_hex(12), "id": payment["id"], "status": status,
                    "message": f"Payment was {status}", "description": payment.get("description"),
                    "amount": payment["amount"], "fee": 6100, "currency": "NGN", "liveMode": False,
                    "account": payment.get("account"), "customer": None, "reference": reference,
                    "created_at": payment["created_at"],
                    "updated_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")}}}

    def settle_payment(self, reference: str, status: str = "successful") -> tuple[int, bytes]:
        """The customer approves (``successful``) or not (``failed``, ``abandoned``, ``cancelled``) on
        DirectPay's page: the payment takes that status and Mono's webhook says so."""
        self._settle(reference, status)
        return self.send_webhook(self.payment_webhook(reference, status))

    def _settle(self, reference: str, status: str) -> dict[str, Any]:
        """The payment takes ``status``; a successful one is debited from the account it was paid from, once."""
        payment = self.payments[reference]
        account = self.accounts.get(str(payment.get("account")))
        if status == "successful" and payment["status"] != "successful" and account is not None:
            account.balance -= int(payment["amount"])
        payment["status"] = status
        return payment

    def payment_page_url(self, reference: str) -> str | None:
        """The ``mono_url`` Mono gave for the payment under our reference (its page, until it is used)."""
        payment = self.payments.get(reference)
        return None if payment is None else str(payment["mono_url"])

    def initiations(self, reference: str) -> int:
        """How many times the client asked Mono to start a payment under this reference (accepted or not)."""
        return sum(1 for r in self.requests if r["path"] == "/v2/payments/initiate" and r.get("reference") == reference)

    def send_webhook(self, payload: dict[str, Any], secret: str | None = WEBHOOK_SECRET) -> tuple[int, bytes]:
        """POST a webhook to ``webhook_url`` as Mono does; (status, body bytes sent)."""
        body = json.dumps(payload).encode()
        headers = {"content-type": "application/json"}
        if secret is not None:
            headers["mono-webhook-secret"] = secret

        async def post() -> int:
            async with aiohttp.ClientSession() as session:
                async with session.post(self.webhook_url, data=body, headers=headers) as response:  # type: ignore[arg-type]
                    return response.status

        return asyncio.run_coroutine_threadsafe(post(), self._loop).result(20), body  # type: ignore[arg-type]

    # ----------------------------------------------------------------- Mono Connect's page

    async def _connect_page(self, request: web.Request) -> web.Response:
        reference = self.pages.get(request.match_info["page"])
        if reference is None:
            return web.Response(status=404, text="this link has expired")
        return login_page("Mono", self.sessions[reference].get("meta", {}).get("bank"),
                          "Log in to share your account details (read only) with the assistant.")

    async def _connect_finish(self, request: web.Request) -> web.Response:
        reference = self.pages.pop(request.match_info["page"], None)  # a page finishes once
        if reference is None:
            return web.Response(status=404, text="this link has expired")
        session = self.sessions[reference]
        account_id = session.get("account") or secrets.token_hex(12)  # reauth names the linked account
        if account_id not in self.accounts:
            self.add_account(MonoAccount(account_id, transactions=sample_transactions(30)))
        body = json.dumps(self.connected_webhook(reference, account_id)).encode()
        self.webhooks.send(self.webhook_url, body, {"mono-webhook-secret": WEBHOOK_SECRET})
        return finished("Mono", session.get("redirect_url"))

    # ----------------------------------------------------------------- DirectPay's page

    async def _payment_page(self, request: web.Request) -> web.Response:
        reference = self.payment_pages.get(request.match_info["page"])
        if reference is None:
            return web.Response(status=404, text="this payment link has expired")
        payment = self.payments[reference]
        naira = f"₦{payment['amount'] / 100:,.2f}"
        return payment_page("Mono", naira, str(payment.get("description") or "A one-time debit from your account."))

    async def _payment_decided(self, request: web.Request) -> web.Response:
        reference = self.payment_pages.pop(request.match_info["page"], None)  # a page is used once
        if reference is None:
            return web.Response(status=404, text="this payment link has expired")
        decision = (await request.post()).get("decision")
        status = "successful" if decision == "approve" else "cancelled"
        payment = self._settle(reference, status)
        body = json.dumps(self.payment_webhook(reference, status)).encode()
        self.webhooks.send(self.webhook_url, body, {"mono-webhook-secret": WEBHOOK_SECRET})
        return finished("Mono", payment.get("redirect_url"))

    # ----------------------------------------------------------------- handlers

    def _check(self, request: web.Request) -> web.Response | None:
        self.requests.append({"method": request.method, "path": request.path, "query": dict(request.query),
                              "real_time": request.headers.get("x-real-time")})
        if request.headers.get("mono-sec-key") != SECRET_KEY:
            return web.json_response({"status": "failed", "message": "Invalid secret key"}, status=401)
        for prefix, statuses in self.fail_next.items():
            if request.path.startswith(prefix) and statuses:
                status = statuses.pop(0)
                headers = {"retry-after": "3"} if status == 429 else {}
                return web.json_response({"status": "failed", "message": "error"}, status=status, headers=headers)
        return None

    async def _initiate(self, request: web.Request) -> web.Response:
        refused = self._check(request)
        if refused is not None:
            return refused
        body = await request.json()
        reference = (body.get("meta") or {}).get("ref")
        if (body.get("scope") not in ("auth", "reauth") or not body.get("redirect_url")
                or not isinstance(reference, str)):
            return web.json_response({"status": "failed", "message": "scope, redirect_url and meta.ref are required"},
                                     status=400)
        self.sessions[reference] = body
        page = secrets.token_hex(8)
        self.pages[page] = reference
        return web.json_response({
            "status": "successful", "message": "Request was succesfully completed",
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "data": {"mono_url": f"{self.base_url}/connect/{page}",
                     "customer": "65aa78e567adacffd5123456", "meta": {"ref": reference},
                     "scope": body["scope"], "redirect_url": body["redirect_url"],
                     "created_at": datetime.now(timezone.utc).isoformat()}})

    def _linked_account(self, request: web.Request) -> MonoAccount | web.Response:
        """The linked account the path names, or the refusal Mono answers with."""
        refused = self._check(request)
        if refused is not None:
            return refused
        account = self.accounts.get(request.match_info["id"])
        if account is None or not account.linked:
            return web.json_response({"status": "failed", "message": "Account not found"}, status=404)
        return account

    async def _details(self, request: web.Request) -> web.Response:
        account = self._linked_account(request)
        if isinstance(account, web.Response):
            return account
        return web.json_response({"status": "successful", "message": "Request was succesfully completed", "data": {
            "account": {"id": account.account_id, "name": account.name, "currency": account.currency,
                        "type": account.type, "account_number": account.account_number, "balance": account.balance,
                        "bvn": None, "institution": {"name": account.bank, "bank_code": account.bank_code,
                                                     "type": "PERSONAL_BANKING"}},
            "customer": {"id": "65aa78e567adacffd5123456"},
            "meta": {"data_status": account.data_status, "auth_method": "mobile_banking"}}})

    async def _balance(self, request: web.Request) -> web.Response:
        account = self._linked_account(request)
        if isinstance(account, web.Response):
            return account
        return web.json_response({"status": "successful", "message": "Request was succesfully completed", "data": {
            "id": account.account_id, "name": account.name, "account_number": account.account_number,
            "balance": account.balance, "currency": account.currency}})

    async def _transactions(self, request: web.Request) -> web.Response:
        account = self._linked_account(request)
        if isinstance(account, web.Response):
            return account
        page = int(request.query.get("page", "1"))
        size = self.page_size
        items = account.transactions[(page - 1) * size: page * size]
        pages = max(1, -(-len(account.transactions) // size))
        link = f"{self.base_url}/v2/accounts/{account.account_id}/transactions?page=%d&paginate=true"
        return web.json_response({"status": "successful", "message": "Transaction retrieved successfully",
                                  "data": items,
                                  "meta": {"total": len(account.transactions), "page": page,
                                           "previous": link % (page - 1) if page > 1 else None,
                                           "next": link % (page + 1) if page < pages else None}})

    async def _unlink(self, request: web.Request) -> web.Response:
        account = self._linked_account(request)
        if isinstance(account, web.Response):
            return account
        account.linked = False
        return web.json_response({"status": "successful", "message": "Account unlinked successfully"})

    async def _pay(self, request: web.Request) -> web.Response:
        refused = self._check(request)
        record = self.requests[-1]  # this request's (taken before any await lets another one in)
        body = await request.json()
        record["reference"] = body.get("reference")
        if refused is not None:
            return refused
        if body.get("type") != "onetime-debit" or not isinstance(body.get("amount"), int) or not body.get("reference"):
            return web.json_response({"status": "failed", "message": "invalid payment"}, status=400)
        if body["reference"] in self.payments:
            return web.json_response({"status": "failed", "message": "duplicate reference"}, status=400)
        await self._stall(request)
        payment_id = f"ODI{secrets.token_hex(6).upper()}"
        page = secrets.token_hex(8)
        self.payment_pages[page] = body["reference"]
        mono_url = f"{self.base_url}/pay/{page}"
        self.payments[body["reference"]] = {**body, "status": "pending", "id": payment_id, "mono_url": mono_url,
                                            "created_at": datetime.now(timezone.utc).isoformat()}
        return web.json_response({"status": "successful", "message": "Payment Initiated Successfully", "data": {
            "id": payment_id, "mono_url": mono_url,
            "type": "onetime-debit", "method": body.get("method", "account"), "amount": body["amount"],
            "description": body.get("description"), "reference": body["reference"],
            "created_at": datetime.now(timezone.utc).isoformat()}})

    async def _verify(self, request: web.Request) -> web.Response:
        refused = self._check(request)
        if refused is not None:
            return refused
        await self._stall(request)
        payment = self.payments.get(request.match_info["reference"])
        if payment is None:
            return web.json_response({"status": "failed", "message": "Payment not found"}, status=404)
        return web.json_response({"status": "successful", "message": "Payment retrieved", "data": {
            "id": "txd_wzb8uhew4j9ngru43a123456", "status": payment["status"], "amount": payment["amount"],
            "reference": payment["reference"], "type": "onetime-debit", "currency": "NGN"}})

    async def _lookup(self, request: web.Request) -> web.Response:
        refused = self._check(request)
        if refused is not None:
            return refused
        body = await request.json()
        number, code = str(body.get("account_number") or ""), str(body.get("nip_code") or "")
        self.lookups.append({"nip_code": code})
        if len(code) != 6 or not code.isdigit():  # the NIP institution code, e.g. 000013, not a 3-digit bank code
            return web.json_response({"status": "failed", "message": "invalid nip_code"}, status=400)
        if len(number) != 10 or not number.isdigit():
            return web.json_response({"status": "failed", "message": "invalid account number"}, status=400)
        if number.startswith("000"):
            return web.json_response({"status": "failed", "message": "Account not found"}, status=404)
        names = ("ADEBAYO OKONKWO", "CHIOMA BELLO", "IBRAHIM ADEYEMI", "NGOZI EZE")
        return web.json_response({"status": "successful", "message": "Lookup Successful", "data": {
            "name": names[int(number) % len(names)], "account_number": number, "bvn": None,
            "bank": {"name": "", "code": code}}})

    async def _stall(self, request: web.Request) -> None:
        for prefix, seconds in self.slow.items():
            if request.path.startswith(prefix):
                await asyncio.sleep(seconds)
