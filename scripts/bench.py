"""Throughput and latency of the whole stack under open-loop load, beside Rasa's own REST channel.

    PYTHONPATH=. RASA_TELEMETRY_ENABLED=false .venv/bin/python scripts/bench.py \
        [--rates 5,10,20,40,80] [--duration 20] [--customers 60] [--paths whatsapp,rest] [--quick]

For each path, a fresh stack on free loopback ports with the same model:

- **whatsapp**: the fake Meta (in this process), the action server and ``rasa run`` with the
  WhatsApp channel, as the product runs (``checks/stack.py``). Customers write through
  Meta's signed webhooks; a sample runs from the start of the webhook POST to the moment the
  fake Graph API accepts the first message the bot sends that customer (read receipts and
  typing indicators do not count). The fake Meta sends its sent/delivered status webhooks,
  as Meta does. The per-user rate limit stays on: customers write at most one message every
  ``SPACING`` seconds, under its 20 a minute.
- **rest**: the action server and ``rasa run`` with Rasa's REST channel
  (``python -m connectors.rasa_server --interface 127.0.0.1 --credentials credentials.local.yml``,
  loopback only, never ``make serve``); a sample runs from the start of the POST to
  ``/webhooks/rest/webhook`` to its answer (which carries the whole turn).

Both use the project's endpoints (encrypted tracker store, in memory). Both stacks are up at
once but measured one after the other, rate by rate (WhatsApp's step, then REST's), so that
other work on the machine weighs on both alike; an idle stack costs next to nothing. Before
measuring, ``--customers`` customers connect GTBank on each (not measured). Then, for each
rate, messages arrive for ``--duration`` seconds at Poisson times (open loop: an arrival never
waits for an answer), each from a customer who is not waiting for a reply and has not written
in the last ``SPACING`` seconds; when there is none, a new customer
arrives and starts by connecting a bank. Each customer walks the mix ``CYCLE``: a balance
question, a transaction search, another balance question, a spending summary, and a transfer
(the request, a tap on Checking, a tap on Yes). After the arrivals a step waits for its
answers (up to ``--turn-timeout``); an unanswered message is a lost reply.

Per rate and path: offered and achieved throughput, p50/p95/p99 latency, errors (webhook not
2xx, the bot's "something went wrong", a reply the mix did not expect, rate-limit notices),
lost replies, CPU milliseconds per message of each process, and resident memory. Afterwards:
peak RSS (VmHWM) of each process, the highest rate with p95 <= 1 s, and the ratio of
WhatsApp's p95 to REST's at each rate. Results are appended to ``results/bench.jsonl`` (one
line per run) and plotted to ``results/bench.png``. A step whose p95 is over
``--overload-p95`` seconds ends the ladder (``--keep-going`` runs every rate).
The machine's load average and any ``rasa train`` running beside are recorded, since both
disturb the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from checks.processes import cpu_seconds

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RATES = (5, 10, 20, 40, 80)
QUICK_RATES = (5, 10, 20)
SPACING = 3.5  # seconds between one customer's messages: with connecting's 2, at most 19 a minute (limit 20)
SUSTAINABLE_P95 = 1.0  # seconds
CUSTOMER_BASE = 2348100000000  # fake Nigerian numbers for made-up customers
GTBANK = '/inform{"bank":"GTBank"}'
TRANSFER = "send 2k to 0123456789 gtbank"


# ------------------------------------------------------------ the mix


@dataclass(frozen=True)
class Reply:
    """One message of the bot, whichever channel carried it."""

    at: float  # time.perf_counter()
    text: str
    choices: tuple[tuple[str, str], ...] = ()  # (payload, title) of its buttons or list rows
    message_id: str | None = None  # WhatsApp's wamid, for a tap's context
    tap: str = "button_reply"  # how WhatsApp answers one of its choices: button_reply or list_reply


@dataclass(frozen=True)
class Step:
    """One kind of customer message: what is sent, and when its turn is complete."""

    kind: str
    text: str | None  # None: a tap on the choice ``choose`` picks from the previous turn
    done: Callable[[Sequence[Reply]], bool]
    choose: str | None = None  # title of the choice the *next* step taps


def _has_text(*fragments: str) -> Callable[[Sequence[Reply]], bool]:
    return lambda replies: any(all(f.casefold() in r.text.casefold() for f in fragments) for r in replies)


def _has_choice(title: str) -> Callable[[Sequence[Reply]], bool]:
    return lambda replies: any(title in (t for _, t in r.choices) for r in replies)


CONNECT = Step("connect", "connect my bank", _has_choice("GTBank"), choose="GTBank")
PICK_BANK = Step("connect_tap", None, _has_text("GTBank is connected"))
BALANCE = Step("balance", "what is my balance", _has_text("balances"))
SEARCH = Step("search", "show my debits last week", _has_text("Money out"))
SPENDING = Step("spending", "where is my money going", _has_text("Your spending"))
TRANSFER_REQUEST = Step("transfer", TRANSFER, _has_choice("Checking"), choose="Checking")
PICK_SOURCE = Step("transfer_source", None, _has_choice("Yes"), choose="Yes")
CONFIRM = Step("transfer_yes", None, _has_text("Sent!"))
ONBOARDING = (CONNECT, PICK_BANK)
CYCLE = (BALANCE, SEARCH, BALANCE, SPENDING, TRANSFER_REQUEST, PICK_SOURCE, CONFIRM)
ENTRIES = tuple(i for i, step in enumerate(CYCLE) if step.text is not None)  # where a customer may start the cycle
STEPS = {step.kind: step for step in (*ONBOARDING, *CYCLE)}
PROBLEM_TEXTS = ("something went wrong", "sending messages very fast")


Tap = tuple[str, str | None]  # (button_reply or list_reply, the message id the tap answers)


def choice(replies: Sequence[Reply], title: str) -> tuple[str, Tap] | None:
    """(payload, tap) of the choice titled ``title`` in a turn's replies (the latest one offering it)."""
    for reply in reversed(replies):
        for payload, choice_title in reply.choices:
            if choice_title == title:
                return payload, (reply.tap, reply.message_id)
    return None


@dataclass
class Turn:
    """One customer message and what came back."""

    customer: str
    kind: str
    sent_at: float
    replies: list[Reply] = field(default_factory=list)
    done_at: float | None = None
    error: str | None = None

    @property
    def first_at(self) -> float | None:
        return self.replies[0].at if self.replies else None

    @property
    def latency(self) -> float | None:
        return None if self.first_at is None else self.first_at - self.sent_at


@dataclass
class Customer:
    """A made-up customer walking the mix: onboarding first, then ``CYCLE`` round and round."""

    wa_id: str
    entry: int = 0  # where in CYCLE this customer starts, once connected
    position: int = 0  # index into ONBOARDING + CYCLE (CYCLE repeats), counted from the entry
    turn: Turn | None = None  # the turn awaiting its answer
    last_sent: float = -math.inf
    previous: list[Reply] = field(default_factory=list)  # the last complete turn's replies

    def next_step(self) -> Step:
        return self._step(self.position)

    def _step(self, position: int) -> Step:
        if position < len(ONBOARDING):
            return ONBOARDING[position]
        return CYCLE[(position - len(ONBOARDING) + self.entry) % len(CYCLE)]

    def request(self) -> tuple[Step, str, Tap | None]:
        """The next step with its text (or tapped payload) and, for a tap, what it answers."""
        step = self.next_step()
        if step.text is not None:
            return step, step.text, None
        wanted = self._wanted_choice()
        found = choice(self.previous, wanted) if wanted else None
        if found is None:  # the last turn did not offer it: start the cycle again
            self.position = len(ONBOARDING) if self.position >= len(ONBOARDING) else 0
            step = self.next_step()
            return step, step.text or "", None
        return step, found[0], found[1]

    def _wanted_choice(self) -> str | None:
        return self._step(self.position - 1).choose if self.position > 0 else None

    def finished(self, turn: Turn, ok: bool) -> None:
        """The turn is over: move on in the mix, or back to the cycle's start after a surprise."""
        self.turn = None
        self.previous = list(turn.replies)
        if ok:
            self.position += 1
        elif self.position >= len(ONBOARDING):
            self.position = len(ONBOARDING)
        else:
            self.position = 0


class Crowd:
    """Customers available to write: idle ones first (longest idle first), else a new one."""

    def __init__(self, prefix: int = CUSTOMER_BASE, spacing: float = SPACING, seed: int = 0) -> None:
        self._prefix = prefix
        self._spacing = spacing
        self._rng = random.Random(seed)
        self.customers: dict[str, Customer] = {}
        self._idle: deque[Customer] = deque()
        self._waiting: set[str] = set()  # wa_ids in _idle

    def new(self) -> Customer:
        customer = Customer(str(self._prefix + len(self.customers)), entry=self._rng.choice(ENTRIES))
        self.customers[customer.wa_id] = customer
        return customer

    def idle(self, customer: Customer) -> None:
        """``customer`` may write again (once ``spacing`` after their last message)."""
        if customer.wa_id not in self._waiting:
            self._waiting.add(customer.wa_id)
            self._idle.append(customer)

    def pick(self, now: float) -> Customer:
        """The longest-idle customer whose last message is ``spacing`` old, else a new customer."""
        for _ in range(len(self._idle)):
            customer = self._idle.popleft()
            if customer.turn is None and customer.last_sent + self._spacing <= now:
                self._waiting.discard(customer.wa_id)
                return customer
            self._idle.append(customer)
        return self.new()


# ------------------------------------------------------------ statistics


def percentile(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile (no interpolation): a value that was measured; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def arrival_times(rate: float, duration: float, rng: random.Random) -> list[float]:
    """Poisson arrivals at ``rate`` per second over ``duration`` seconds (offsets from 0)."""
    times: list[float] = []
    at = 0.0
    while True:
        at += rng.expovariate(rate)
        if at >= duration:
            return times
        times.append(at)


def summarise(turns: Sequence[Turn], rate: float, started: float, duration: float) -> dict[str, Any]:
    """One step's figures from its turns (latencies in milliseconds)."""
    answered = [t for t in turns if t.first_at is not None]
    latencies = [t.latency * 1000 for t in answered if t.latency is not None]
    last = max((t.first_at for t in answered if t.first_at is not None), default=started)
    span = max(last - started, duration, 1e-9)
    errors: dict[str, int] = {}
    for turn in turns:
        if turn.error:
            errors[turn.error] = errors.get(turn.error, 0) + 1
    by_kind: dict[str, int] = {}
    for turn in turns:
        by_kind[turn.kind] = by_kind.get(turn.kind, 0) + 1

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "rate": rate,
        "sent": len(turns),
        "offered_per_s": round(len(turns) / duration, 2),
        "answered": len(answered),
        "throughput_per_s": round(len(answered) / span, 2),
        "p50_ms": rounded(percentile(latencies, 50)),
        "p95_ms": rounded(percentile(latencies, 95)),
        "p99_ms": rounded(percentile(latencies, 99)),
        "max_ms": rounded(max(latencies, default=None) if latencies else None),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "lost": len(turns) - len(answered),
        "mix": by_kind,
    }


def highest_sustainable(steps: Iterable[Mapping[str, Any]], limit_ms: float = SUSTAINABLE_P95 * 1000) -> float | None:
    """The highest rate whose p95 is within ``limit_ms`` with nothing lost, every lower rate passing too."""
    best = None
    for step in sorted(steps, key=lambda s: s["rate"]):
        p95 = step.get("p95_ms")
        if p95 is None or p95 > limit_ms or step.get("lost", 0) > 0:
            break
        best = step["rate"]
    return best


def compare(whatsapp: Sequence[Mapping[str, Any]], rest: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """WhatsApp's p50/p95 over REST's at each rate both ran."""
    rest_by_rate = {step["rate"]: step for step in rest}
    rows = []
    for step in whatsapp:
        other = rest_by_rate.get(step["rate"])
        if other is None:
            continue
        row: dict[str, Any] = {"rate": step["rate"]}
        for key in ("p50_ms", "p95_ms"):
            mine, theirs = step.get(key), other.get(key)
            row[key.replace("_ms", "_ratio")] = round(mine / theirs, 2) if mine and theirs else None
        rows.append(row)
    return rows


# ------------------------------------------------------------ processes


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process in kB, from /proc."""
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


def training_running() -> list[str]:
    """Command lines of other processes that train a model (they take the CPU the bench measures)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            if " train" in command and "rasa" in command:
                found.append(command.strip()[:120])
    return found


def all_cpu_seconds() -> dict[int, float]:
    """CPU seconds of every process on the machine, by pid."""
    return {int(entry.name): cpu_seconds(int(entry.name)) for entry in Path("/proc").iterdir() if entry.name.isdigit()}


def others_cpu(before: Mapping[int, float], after: Mapping[int, float], ours: Iterable[int]) -> float:
    """CPU seconds other processes used between two ``all_cpu_seconds`` snapshots (a new one counts whole)."""
    mine = set(ours)
    return sum(value - before.get(pid, 0.0) for pid, value in after.items()
               if pid not in mine and value >= before.get(pid, 0.0))


@dataclass
class Processes:
    """The processes of one path, by name -> pid."""

    pids: dict[str, int]

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def memory(self) -> dict[str, dict[str, float]]:
        return {name: {key: round(value / 1024, 1) for key, value in proc_status(pid).items()}
                for name, pid in self.pids.items()}


# ------------------------------------------------------------ channels


class Channel:
    """How the bench talks to one stack: ``send`` starts a customer message; answers arrive via ``on_reply``."""

    name = "channel"

    def __init__(self) -> None:
        self.on_reply: Callable[[str, Reply], None] = lambda wa_id, reply: None
        self.on_failure: Callable[[str, str], None] = lambda wa_id, error: None

    def send(self, wa_id: str, text: str, tap: Tap | None) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class WhatsAppChannel(Channel):
    """Meta's signed webhooks from the fake Meta; answers as the fake Graph API accepts them."""

    name = "whatsapp"

    def __init__(self, stack: Any) -> None:
        super().__init__()
        self.stack = stack
        sandbox = stack.sandbox
        original = sandbox.bot_sends

        def bot_sends(outbound: Any) -> Any:  # timestamped as the Graph API accepts the message
            at = time.perf_counter()
            message = original(outbound)
            self.on_reply(outbound.wa_id, whatsapp_reply(at, message.id, outbound.body))
            return message

        sandbox.bot_sends = bot_sends
        self._pending: set[asyncio.Task[Any]] = set()

    def send(self, wa_id: str, text: str, tap: Tap | None) -> None:
        sandbox = self.stack.sandbox
        request: dict[str, str | None]
        if tap is None:
            request = {"type": "text", "text": text}
        else:
            request = {"type": tap[0], "context_id": tap[1], "id": text}
        message = sandbox.user_sends(sandbox.thread(wa_id), request)
        task = asyncio.ensure_future(self._watch(wa_id, message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _watch(self, wa_id: str, message: Any) -> None:
        while message.status == "sent":
            await asyncio.sleep(0.05)
        if message.status == "failed":
            self.on_failure(wa_id, "webhook POST failed")

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)


def whatsapp_reply(at: float, message_id: str, body: Mapping[str, Any]) -> Reply:
    """A Graph API message body as a Reply (text, reply buttons or list rows)."""
    if body.get("type") == "interactive":
        interactive = body.get("interactive", {})
        text = str(interactive.get("body", {}).get("text", ""))
        action = interactive.get("action", {})
        if interactive.get("type") == "list":
            rows = [(row["id"], row["title"]) for section in action.get("sections", [])
                    for row in section.get("rows", [])]
            return Reply(at, text, tuple(rows), message_id, "list_reply")
        buttons = [(b["reply"]["id"], b["reply"]["title"]) for b in action.get("buttons", [])]
        return Reply(at, text, tuple(buttons), message_id, "button_reply")
    return Reply(at, str(body.get("text", {}).get("body", "") or body.get("type", "")), (), message_id)


class RestChannel(Channel):
    """Rasa's REST channel: one POST per message, the turn's messages in its answer."""

    name = "rest"

    def __init__(self, url: str) -> None:
        super().__init__()
        import aiohttp

        self.url = url
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=120), connector=aiohttp.TCPConnector(limit=0))
        self._pending: set[asyncio.Task[Any]] = set()

    def send(self, wa_id: str, text: str, tap: Tap | None) -> None:
        task = asyncio.ensure_future(self._post(wa_id, text))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, wa_id: str, text: str) -> None:
        import aiohttp

        try:
            async with self._session.post(self.url, json={"sender": wa_id, "message": text}) as response:
                body = await response.json(content_type=None) if response.status == 200 else None
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            self.on_failure(wa_id, f"POST failed ({type(error).__name__})")
            return
        at = time.perf_counter()
        if status != 200 or not isinstance(body, list):
            self.on_failure(wa_id, f"POST answered {status}")
            return
        for message in body:
            choices = tuple((str(b.get("payload", "")), str(b.get("title", ""))) for b in message.get("buttons") or [])
            self.on_reply(wa_id, Reply(at, str(message.get("text") or ""), choices))
        if not body:
            self.on_reply(wa_id, Reply(at, ""))

    async def close(self) -> None:
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self._session.close()


# ------------------------------------------------------------ the load


class Load:
    """Customers, their turns, and the answers matched to them."""

    def __init__(self, channel: Channel, turn_timeout: float, spacing: float = SPACING, seed: int = 0) -> None:
        self.channel = channel
        self.crowd = Crowd(spacing=spacing, seed=seed)
        self.turn_timeout = turn_timeout
        self.turns: list[Turn] = []
        self.unmatched = 0
        channel.on_reply = self._reply
        channel.on_failure = self._failure
        self._changed = asyncio.Event()

    def send(self, customer: Customer | None = None) -> Turn:
        now = time.perf_counter()
        customer = customer or self.crowd.pick(now)
        step, text, tap = customer.request()
        turn = Turn(customer.wa_id, step.kind, now)
        customer.turn = turn
        customer.last_sent = now
        self.turns.append(turn)
        self.channel.send(customer.wa_id, text, tap)
        return turn

    def _reply(self, wa_id: str, reply: Reply) -> None:
        customer = self.crowd.customers.get(wa_id)
        turn = customer.turn if customer else None
        if customer is None or turn is None:
            self.unmatched += 1  # a late message of a turn already given up
            return
        turn.replies.append(reply)
        if any(problem in reply.text.casefold() for problem in PROBLEM_TEXTS):
            turn.error = "the bot reported a problem" if "wrong" in reply.text else "rate-limited"
            self._finish(customer, turn, ok=False)
        elif STEPS[turn.kind].done(turn.replies):
            self._finish(customer, turn, ok=True)

    def _failure(self, wa_id: str, error: str) -> None:
        customer = self.crowd.customers.get(wa_id)
        if customer is not None and customer.turn is not None:
            customer.turn.error = error
            self._finish(customer, customer.turn, ok=False)

    def _finish(self, customer: Customer, turn: Turn, ok: bool) -> None:
        turn.done_at = time.perf_counter()
        customer.finished(turn, ok)
        self.crowd.idle(customer)
        self._changed.set()

    def expire(self, now: float) -> None:
        """Give up on turns older than the timeout: lost (no answer) or unexpected (not the answer the mix wants)."""
        for customer in self.crowd.customers.values():
            turn = customer.turn
            if turn is not None and now - turn.sent_at > self.turn_timeout:
                turn.error = turn.error or ("unexpected reply" if turn.replies else None)
                self._finish(customer, turn, ok=False)

    def open_turns(self) -> int:
        return sum(1 for c in self.crowd.customers.values() if c.turn is not None)

    async def settle(self, deadline: float) -> None:
        """Until every open turn is over (answered or expired), or ``deadline``."""
        while self.open_turns() and time.perf_counter() < deadline:
            self._changed.clear()
            self.expire(time.perf_counter())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.25)
        self.expire(math.inf)  # past the deadline: whatever is still open is lost

    async def onboard(self, count: int, concurrency: int) -> None:
        """``count`` customers connect GTBank, a few at a time (not measured)."""
        customers = [self.crowd.new() for _ in range(count)]
        queue = deque(customers)

        async def worker() -> None:
            while queue:
                customer = queue.popleft()
                while customer.position < len(ONBOARDING):
                    turn = self.send(customer)
                    while customer.turn is turn:
                        self._changed.clear()
                        self.expire(time.perf_counter())
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(self._changed.wait(), 0.25)
                    if turn.error or turn.done_at is None:
                        raise RuntimeError(f"onboarding failed at {turn.kind}: {turn.error or 'no answer'}; "
                                           f"replies {[r.text[:60] for r in turn.replies]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def step(self, rate: float, duration: float, rng: random.Random) -> tuple[list[Turn], float]:
        """Open-loop arrivals at ``rate`` for ``duration`` s; the step's turns once answered or expired."""
        first = len(self.turns)
        started = time.perf_counter()
        for offset in arrival_times(rate, duration, rng):
            delay = started + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            self.send()
        await self.settle(started + duration + self.turn_timeout + 5)
        return self.turns[first:], started


# ------------------------------------------------------------ stacks


@contextlib.asynccontextmanager
async def whatsapp_stack(model: Path, startup_timeout: float) -> AsyncIterator[tuple[Channel, Processes]]:
    from checks.stack import bot_stack

    async with bot_stack(model, startup_timeout=startup_timeout) as stack:
        channel = WhatsAppChannel(stack)
        try:
            yield channel, Processes({"rasa": stack.rasa.process.pid, "actions": stack.actions.process.pid,
                                      "bench+fake_meta": os.getpid()})
        finally:
            await channel.close()


@contextlib.asynccontextmanager
async def rest_stack(model: Path, startup_timeout: float) -> AsyncIterator[tuple[Channel, Processes]]:
    """The action server and ``rasa run`` with Rasa's REST channel, on loopback only."""
    from checks.stack import (
        HOST,
        free_port,
        launch,
        rasa_executable,
        server_environment,
        stop_servers,
        venv_python,
        wait_until_ready,
        write_endpoints,
    )

    action_port, rasa_port = free_port(), free_port()
    token = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="bench-rest-") as tmp:
        workdir = Path(tmp)
        charts = {  # as the WhatsApp stack sets them, so the action server does the same work for both
            "CHART_DIR": str(workdir / "charts"),
            "CHART_BASE_URL": f"http://{HOST}:{rasa_port}/webhooks/whatsapp/charts",
        }
        env = server_environment({}, {"ACTION_SERVER_TOKEN": token, **charts})
        endpoints = write_endpoints(workdir, action_port)
        servers = []
        try:
            servers.append(launch("action server", [rasa_executable(), "run", "actions", "--actions", "actions",
                                                    "--port", str(action_port)], env, workdir / "actions.log"))
            servers.append(launch("rasa run (REST)", [
                venv_python(), "-m", "connectors.rasa_server", "--model", str(model), "--port", str(rasa_port),
                "--interface", HOST, "--credentials", str(REPO / "credentials.local.yml"),
                "--endpoints", str(endpoints)], env, workdir / "rasa.log"))
            deadline = time.monotonic() + startup_timeout
            await wait_until_ready(servers, f"http://{HOST}:{action_port}/health", deadline)
            await wait_until_ready(servers, f"http://{HOST}:{rasa_port}/webhooks/rest/", deadline)
            channel = RestChannel(f"http://{HOST}:{rasa_port}/webhooks/rest/webhook")
            try:
                yield channel, Processes({"rasa": servers[1].process.pid, "actions": servers[0].process.pid,
                                          "bench": os.getpid()})
            finally:
                await channel.close()
        finally:
            await stop_servers(servers)


STACKS = {"whatsapp": whatsapp_stack, "rest": rest_stack}


# ------------------------------------------------------------ a run


@dataclass
class PathRun:
    """One path's stack, load and figures so far."""

    name: str
    load: Load
    processes: Processes
    rng: random.Random
    steps: list[dict[str, Any]] = field(default_factory=list)
    overloaded: bool = False


async def run_paths(args: argparse.Namespace) -> dict[str, Any]:
    """Every path's stack up at once; then, rate by rate, one path's step after the other's, so that
    whatever else the machine does meanwhile weighs on both alike. An idle stack costs next to nothing."""
    async with contextlib.AsyncExitStack() as exits:
        runs = []
        for name in args.paths:
            log(f"{name}: starting the stack (loading the model takes a minute)")
            started = time.monotonic()
            channel, processes = await exits.enter_async_context(STACKS[name](args.model, args.startup_timeout))
            log(f"{name}: up in {time.monotonic() - started:.0f} s")
            runs.append(PathRun(name, Load(channel, args.turn_timeout, seed=args.seed), processes,
                                random.Random(args.seed)))
        ours = {pid for run in runs for pid in run.processes.pids.values()}
        for run in runs:
            log(f"{run.name}: {args.customers} customers connect GTBank")
            await run.load.onboard(args.customers, concurrency=6)
            if args.warmup > 0:
                log(f"{run.name}: warming up at {min(args.rates):g}/s for {args.warmup:g} s (not measured)")
                await run.load.step(min(args.rates), args.warmup, run.rng)
        for rate in args.rates:
            for run in runs:
                if not run.overloaded:
                    await measure_step(run, rate, args, ours)
        return {run.name: {
            "steps": run.steps,
            "peak_rss_mb": {name: values.get("VmHWM") for name, values in run.processes.memory().items()},
            "highest_sustainable_rate": highest_sustainable(run.steps),
            "unmatched_replies": run.load.unmatched,
        } for run in runs}


async def measure_step(run: PathRun, rate: float, args: argparse.Namespace, ours: set[int]) -> None:
    """One rate on one path, with the CPU each process spent per answered message."""
    disturbance = {"loadavg_1m": round(os.getloadavg()[0], 2), "training": training_running()}
    everyone_before, cpu_before = all_cpu_seconds(), run.processes.cpu()
    turns, step_started = await run.load.step(rate, args.duration, run.rng)
    everyone_after, cpu_after = all_cpu_seconds(), run.processes.cpu()
    elapsed = time.perf_counter() - step_started
    summary = summarise(turns, rate, step_started, args.duration)
    answered = max(summary["answered"], 1)
    summary["cpu_ms_per_message"] = {name: round((cpu_after[name] - cpu_before[name]) * 1000 / answered, 1)
                                     for name in cpu_after}
    # Other work on the machine meanwhile (a training, a test run): the cores it took, on average.
    summary["other_processes_cores"] = round(others_cpu(everyone_before, everyone_after, ours) / elapsed, 2)
    summary["memory_mb"] = run.processes.memory()
    summary["customers"] = len(run.load.crowd.customers)
    summary["before"] = disturbance
    run.steps.append(summary)
    log(format_step(run.name, summary))
    if not args.keep_going and (summary["p95_ms"] is None or summary["p95_ms"] > args.overload_p95 * 1000):
        run.overloaded = True
        log(f"{run.name}: overloaded at {rate:g}/s (p95 over {args.overload_p95:g} s); higher rates skipped")


def format_step(path: str, s: Mapping[str, Any]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    cpu = " ".join(f"{name} {value:.0f}" for name, value in s.get("cpu_ms_per_message", {}).items())
    return (f"{path:8} {s['rate']:>5g}/s  sent {s['sent']:>5}  thru {s['throughput_per_s']:>6.1f}/s  "
            f"p50 {ms(s['p50_ms']):>6}  p95 {ms(s['p95_ms']):>6}  p99 {ms(s['p99_ms']):>6} ms  "
            f"errors {s['errors']}  lost {s['lost']}  cpu ms/msg: {cpu}  "
            f"others {s.get('other_processes_cores', 0):.2f} cores")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def plot(record: Mapping[str, Any], path: Path) -> None:
    """p50 and p95 against offered rate, both paths, log-scale latency."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    styles = {"whatsapp": "tab:green", "rest": "tab:blue"}
    for name, result in record["paths"].items():
        steps = [s for s in result["steps"] if s["p95_ms"] is not None]
        rates = [s["rate"] for s in steps]
        axis.plot(rates, [s["p95_ms"] for s in steps], "o-", color=styles.get(name), label=f"{name} p95")
        axis.plot(rates, [s["p50_ms"] for s in steps], "o--", color=styles.get(name), alpha=0.6,
                  label=f"{name} p50")
    axis.axhline(SUSTAINABLE_P95 * 1000, color="grey", linewidth=0.8, linestyle=":")
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    rates = sorted({s["rate"] for result in record["paths"].values() for s in result["steps"]})
    axis.set_xticks(rates)
    axis.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    axis.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axis.set_xlabel("offered load (messages per second)")
    axis.set_ylabel("webhook POST → first reply (ms)")
    others = max((s.get("other_processes_cores", 0) for result in record["paths"].values()
                  for s in result["steps"]), default=0)
    axis.set_title(f"make bench {record['started'][:16]} (other processes: up to {others:.1f} cores)",
                   fontsize=10)
    axis.legend()
    axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    record: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": _commit(),
        "model": str(args.model),
        "rates": list(args.rates),
        "duration_s": args.duration,
        "customers": args.customers,
        "cpus": os.cpu_count(),
        "loadavg_before": round(os.getloadavg()[0], 2),
        "training_before": training_running(),
        "paths": {},
    }
    record["paths"] = await run_paths(args)
    if "whatsapp" in record["paths"] and "rest" in record["paths"]:
        record["whatsapp_over_rest"] = compare(record["paths"]["whatsapp"]["steps"], record["paths"]["rest"]["steps"])
    record["training_after"] = training_running()
    return record


def _commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    return None


def report(record: Mapping[str, Any]) -> str:
    lines = []
    for name, result in record["paths"].items():
        lines.append(f"{name}: highest rate with p95 <= {SUSTAINABLE_P95:g} s and nothing lost: "
                     f"{result['highest_sustainable_rate']}/s; peak RSS MB {result['peak_rss_mb']}")
        for step in result["steps"]:
            lines.append("  " + format_step(name, step))
    for row in record.get("whatsapp_over_rest", []):
        lines.append(f"whatsapp / rest at {row['rate']:g}/s: p50 x{row['p50_ratio']}, p95 x{row['p95_ratio']}")
    if record.get("training_before") or record.get("training_after"):
        lines.append("NOTE: a model was training on this machine during the run; the figures are disturbed")
    busy = [f"{name} {step['rate']:g}/s" for name, result in record["paths"].items() for step in result["steps"]
            if step.get("other_processes_cores", 0) > 0.2]
    if busy:
        lines.append("NOTE: other processes took over 0.2 cores during " + ", ".join(busy) + "; those figures are "
                     "disturbed")
    return "\n".join(lines)


def parse_rates(text: str) -> list[float]:
    rates = [float(part) for part in text.split(",") if part.strip()]
    if not rates or any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError("rates are positive numbers, comma-separated")
    return rates


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    from checks.stack import MODEL, STARTUP_TIMEOUT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=parse_rates, default=list(DEFAULT_RATES), help="messages per second, rising")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals per rate (default 20)")
    parser.add_argument("--customers", type=int, default=80, help="customers connected before measuring")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds at the lowest rate first, not measured")
    parser.add_argument("--paths", default="whatsapp,rest", help="whatsapp, rest or both (default both)")
    parser.add_argument("--quick", action="store_true", help="rates 5,10,20 for 8 s each, 20 customers, 5 s warm-up")
    parser.add_argument("--turn-timeout", type=float, default=30.0, help="seconds before a reply counts as lost")
    parser.add_argument("--overload-p95", type=float, default=5.0, help="a p95 over this (s) ends the ladder")
    parser.add_argument("--keep-going", action="store_true", help="run every rate even once overloaded")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--startup-timeout", type=float, default=STARTUP_TIMEOUT)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench.jsonl")
    parser.add_argument("--plot", type=Path, default=REPO / "results" / "bench.png")
    args = parser.parse_args(argv)
    if args.quick:
        args.rates, args.duration, args.customers, args.warmup = list(QUICK_RATES), 8.0, 20, 5.0
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not args.paths or any(p not in STACKS for p in args.paths):
        parser.error(f"--paths takes {', '.join(STACKS)}")
    if not args.model.is_file():
        parser.error(f"{args.model} is missing: run `make train` first")
    logging.getLogger("sandbox").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _interrupt)  # so `timeout`/`kill` also stop the servers it started
    try:
        record = asyncio.run(bench(args))
    except KeyboardInterrupt:
        log("interrupted; the stacks were stopped")
        return 130
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, sort_keys=True) + "\n")
    plot(record, args.plot)
    print(report(record))
    log(f"appended to {args.out}; plot in {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

