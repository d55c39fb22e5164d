"""Reliability and security scenarios, shared by tests/reliability (small sizes) and
scripts/reliability_report.py (full size).

Each scenario builds what it needs (the channel mounted in a real Sanic app on
127.0.0.1, the fake Graph API of tests/connectors, in-memory MongoDB, the banking
core with the sandbox bank), runs, and returns an ``Outcome``: figures to print
and a list of problems (empty when everything held). Nothing here talks to the
network beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import io
import itertools
import json
import logging
import random
import re
import string
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from pymongo.errors import AutoReconnect, OperationFailure, PyMongoError
from rasa.core.channels.channel import UserMessage
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Sanic

from banking.audit import verify_chain
from banking.config import Settings
from banking.crypto import Keyring
from banking.errors import AlreadyExecuted, BankingError, OutcomeUnknown, StorageError
from banking.identity import user_key
from banking.models import Receipt
from banking.sandbox import SandboxProvider
from banking.service import EXECUTION_LEASE, BankingService
from banking.store import ensure_indexes, in_memory_database
from connectors.tracker_store import EncryptedMongoTrackerStore
from connectors.whatsapp import WhatsAppConfig, WhatsAppInput
from connectors.whatsapp_graph import RetryPolicy
from connectors.whatsapp_ratelimit import RateLimitConfig
from tests.connectors.whatsapp_fakes import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    TOKEN,
    VERIFY_TOKEN,
    FakeGraphApi,
    RecordingAgent,
    Scripted,
    WebhookServer,
    graph_error,
    load_payload,
    sign,
    text_webhook,
)

SALT = "reliability-salt-4f1c9e2a7b"
KEY_HEX = "9c3e71a04bd25f86e1a7c0394d8b62f5a17e4c09b3d86f2e5a0c71b94e3d28f6"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.5, total_timeout=5.0)
DEFAULT_LIMIT_KOBO = Settings().daily_transfer_limit_kobo


@dataclass
class Outcome:
    """What one scenario measured, and what (if anything) went wrong."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)

    def lines(self) -> list[str]:
        width = max((len(name) for name in self.figures), default=0)
        verdict = "ok" if not self.problems else f"{len(self.problems)} PROBLEM(S)"
        lines = [f"{self.name} ({self.seconds:.1f} s): {verdict}"]
        lines += [f"  {name:<{width}}  {value}" for name, value in self.figures.items()]
        lines += [f"  ! {problem}" for problem in self.problems[:20]]
        return lines


def sender_number(index: int) -> str:
    """A distinct Nigerian WhatsApp id (13 digits) per simulated user."""
    return f"234809{index:07d}"


def channel_config(graph: FakeGraphApi, rate_limit: RateLimitConfig | None = None) -> WhatsAppConfig:
    return WhatsAppConfig(
        phone_number_id=PHONE_NUMBER_ID, api_token=TOKEN, verify_token=VERIFY_TOKEN, app_secret=APP_SECRET,
        api_url=graph.api_url, user_id_salt=SALT, rate_limit=rate_limit or RateLimitConfig(),
    )


@contextlib.asynccontextmanager
async def served_channel(rate_limit: RateLimitConfig | None = None, *, graph: FakeGraphApi | None = None,
                         retry: RetryPolicy = FAST_RETRY, database: Any = None,
                         agent: RecordingAgent | None = None, **options: Any) -> Any:
    """The fake Graph API, a channel on it, and a Sanic app serving the channel; all stopped afterwards.

    Yields (graph, channel, server); ``options`` go to WhatsAppInput (e.g. a ``rate_limiter``)."""
    graph = graph or FakeGraphApi()
    await graph.start()
    # Sanic 21.12 rewrites its protocol methods when an app starts; test mode keeps a second app working.
    previous_mode = Sanic.test_mode
    Sanic.test_mode = True
    channel = WhatsAppInput(channel_config(graph, rate_limit), database=database or in_memory_database(),
                            retry=retry, **options)
    server = WebhookServer(channel, agent or RecordingAgent())
    try:
        await server.start()
        yield graph, channel, server
    finally:
        await server.stop()
        await graph.stop()
        Sanic.test_mode = previous_mode


@contextlib.contextmanager
def captured_logs(*names: str, level: int = logging.INFO) -> Iterator[list[logging.LogRecord]]:
    """Every record at ``level`` or above from the named loggers, while the block runs."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level)
    loggers = [logging.getLogger(name) for name in names]
    previous = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > level:
            logger.setLevel(level)
    try:
        yield records
    finally:
        for logger, old_level in previous:
            logger.removeHandler(handler)
            logger.setLevel(old_level)


@contextlib.contextmanager
def tight_thread_switching() -> Iterator[None]:
    """Switch threads as often as possible so races between confirmations actually happen."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def new_bank(db: Any = None, *, clock: Callable[[], datetime] | None = None,
             limit_kobo: int = DEFAULT_LIMIT_KOBO) -> BankingService:
    if db is None:
        db = in_memory_database()
        ensure_indexes(db)
    options: dict[str, Any] = {"keyring": Keyring(bytes.fromhex(KEY_HEX))}
    if clock is not None:
        options["clock"] = clock
    return BankingService(db, SandboxProvider(), Settings(user_id_salt=SALT, daily_transfer_limit_kobo=limit_kobo),
                          **options)


def payee(rng: random.Random) -> str:
    """A well-formed NUBAN the sandbox resolves (never the magic 000/999 prefixes)."""
    return f"{rng.randint(1, 8)}{rng.randrange(10**8, 10**9)}"


# =============================================================================== concurrency


async def concurrency(users: int = 50, messages_per_user: int = 20, seed: int = 1) -> Outcome:
    """``users`` users at once, each sending ``messages_per_user`` messages in order, over real HTTP.

    The rate limit is switched off explicitly: the point is the channel's plumbing under load.
    """
    outcome = Outcome(f"concurrency: {users} users x {messages_per_user} messages")
    started = time.perf_counter()
    rng = random.Random(seed)
    handled: dict[str, list[str]] = defaultdict(list)

    async def reply(message: UserMessage) -> None:
        handled[message.sender_id].append(message.text or "")
        await asyncio.sleep(rng.random() * 0.003)  # Rasa takes a moment; users overtake each other
        await message.output_channel.send_text_message(message.sender_id, f"ack {message.text}")

    agent = RecordingAgent()
    agent.responder = reply
    statuses: list[int] = []
    async with served_channel(RateLimitConfig.unlimited(), agent=agent) as (graph, channel, server):
        senders = [sender_number(index) for index in range(users)]

        async def user(index: int) -> None:
            for number in range(messages_per_user):
                payload = text_webhook(senders[index], f"wamid.load-{index}-{number}", f"u{index} m{number}")
                statuses.append((await server.post(payload))[0])

        await asyncio.gather(*(user(index) for index in range(users)))
        await server.settle(timeout=120)
        replies = graph.delivered()

    expected = {sender: [f"u{index} m{number}" for number in range(messages_per_user)]
                for index, sender in enumerate(senders)}
    total = users * messages_per_user
    received = sum(len(texts) for texts in handled.values())
    distinct = sum(len(set(texts)) for texts in handled.values())
    lost = sum(len(set(texts) - set(handled.get(sender, []))) for sender, texts in expected.items())
    out_of_order = sum(1 for sender, texts in expected.items() if handled.get(sender) != texts)
    cross_talk = 0
    replies_to: dict[str, list[str]] = defaultdict(list)
    for body in replies:
        text = body.get("text", {}).get("body", "")
        match = re.fullmatch(r"ack u(\d+) m(\d+)", text)
        if match is None or body.get("to") != senders[int(match.group(1))]:
            cross_talk += 1
            continue
        replies_to[body["to"]].append(text.removeprefix("ack "))
    replies_in_order = sum(1 for sender, texts in expected.items() if replies_to.get(sender) == texts)
    server_errors = sum(1 for status in statuses if status >= 500)

    outcome.figures.update({
        "messages sent": total,
        "webhook answers 200": sum(1 for status in statuses if status == 200),
        "5xx responses": server_errors,
        "messages handed to the bot": received,
        "lost messages": lost,
        "duplicates handed on": received - distinct,
        "users handled out of order": out_of_order,
        "replies delivered": len(replies),
        "replies to the wrong user": cross_talk,
        "users whose replies arrived in order": replies_in_order,
    })
    outcome.check(statuses == [200] * total, f"{total - statuses.count(200)} webhook posts were not answered 200")
    outcome.check(lost == 0, f"{lost} messages were lost")
    outcome.check(received == distinct == total, f"{received} handed on for {total} sent ({distinct} distinct)")
    outcome.check(out_of_order == 0, f"{out_of_order} users' messages were handled out of order")
    outcome.check(cross_talk == 0, f"{cross_talk} replies went to the wrong user")
    outcome.check(len(replies) == total, f"{len(replies)} replies delivered for {total} messages")
    outcome.check(replies_in_order == users, f"only {replies_in_order} of {users} users got their replies in order")
    outcome.seconds = time.perf_counter() - started
    return outcome


# =============================================================================== idempotency


@dataclass
class _Planned:
    shard: _Shard
    user: str
    op_id: str
    copies: int
    concurrent: bool


@dataclass
class _Shard:
    """One bank database with its customers (mongomock scans every document on each query and unique
    insert, so 1,000 transfers are spread over databases of ``SHARD_SIZE`` transfers each)."""

    service: BankingService
    db: Any
    users: list[str]
    initial: dict[str, dict[str, int]]


SHARD_SIZE = 100


def _books_problems(service: BankingService, db: Any, users: list[str],
                    initial: dict[str, dict[str, int]], op_ids: set[str]) -> tuple[int, list[str]]:
    """(double executions, problems): each op in the ledger once, balances = opening - debits + credits."""
    problems: list[str] = []
    seen: Counter[str] = Counter()
    for user in users:
        document = db["profiles"].find_one({"_id": user})
        ledger = list(document["link"]["ledger"].values())
        seen.update(entry["op_id"] for entry in ledger)
        applied = Counter(document.get("applied_ops", []))
        if any(count > 1 for count in applied.values()):
            problems.append(f"user {user[:8]}: an op id is in applied_ops twice")
        if {entry["op_id"] for entry in ledger} != set(applied):
            problems.append(f"user {user[:8]}: ledger and applied_ops disagree")
        balances = {account.type: account.balance_kobo for account in service.balances(user)}
        for account, opening in initial[user].items():
            out = sum(entry["amount_kobo"] for entry in ledger if entry["account"] == account)
            into = sum(entry["amount_kobo"] for entry in ledger if entry.get("to_account") == account)
            if balances[account] != opening - out + into:
                problems.append(f"user {user[:8]} {account}: balance {balances[account]} != opening {opening} "
                                f"- {out} + {into}")
        spent = sum(document.get("spent", {}).values())
        external = sum(entry["amount_kobo"] for entry in ledger if entry.get("to_account") is None)
        if spent != external:
            problems.append(f"user {user[:8]}: {spent} counted against the daily limit, {external} sent out")
    doubles = sum(1 for count in seen.values() if count > 1)
    missing = op_ids - set(seen)
    if missing:
        problems.append(f"{len(missing)} confirmed operations never executed")
    executed_audits = Counter(record["op_id"] for record in db["audit"].find({"outcome": "executed"}))
    if any(executed_audits[op_id] != 1 for op_id in op_ids):
        problems.append("an operation does not have exactly one 'executed' audit record")
    chain = verify_chain(db)
    if not chain.intact:
        problems.append(f"audit chain: {chain.summary()}")
    statuses = Counter(op["status"] for op in db["operations"].find({"_id": {"$in": sorted(op_ids)}}))
    if statuses != Counter({"executed": len(op_ids)}):
        problems.append(f"operation statuses {dict(statuses)}")
    return doubles, problems


def idempotency_core(transfers: int = 1000, users: int = 20, seed: int = 2, wave: int = 25) -> Outcome:
    """``transfers`` confirmed transfers, each YES delivered 2-5 times to ``confirm()`` (half of them
    at the same instant from several threads, the rest replayed later, once the customer has moved on
    to their next transfer), ``users`` customers per bank database; then every ledger, balance, limit
    counter, status and audit record is checked.

    A customer has one open confirmation at a time (a newer hold supersedes the older), so the
    transfers go in rounds: in each, every customer of every database holds one transfer, the late
    replays of the previous round arrive (each customer now has a newer transfer open, which they must
    leave alone), and the round's YES are delivered in waves of ``wave`` transfers."""
    outcome = Outcome(f"idempotency (banking core): {transfers} transfers, replayed YES")
    started = time.perf_counter()
    rng = random.Random(seed)
    shards: list[_Shard] = []
    rounds: list[list[tuple[_Shard, str]]] = []  # who holds a transfer in each round
    for first in range(0, transfers, SHARD_SIZE):
        service = new_bank(limit_kobo=5_000_000 * 100)
        keys = [user_key(sender_number(first + index), SALT) for index in range(users)]
        for key in keys:
            service.connect_bank(key, rng.choice(["gtbank", "access", "uba", "zenith"]))
        shard = _Shard(service, service._db, keys,
                       {key: {a.type: a.balance_kobo for a in service.balances(key)} for key in keys})
        shards.append(shard)
        for index in range(min(SHARD_SIZE, transfers - first)):
            if index // users == len(rounds):
                rounds.append([])
            rounds[index // users].append((shard, keys[index % users]))

    def hold(shard: _Shard, key: str) -> _Planned:
        amount = rng.randint(100, 20_000)
        if rng.random() < 0.6:
            op = shard.service.prepare_transfer(key, amount, "checking", account_number=payee(rng),
                                                bank=rng.choice(["access", "opay", "kuda"]))
        else:
            source, target = rng.choice([("checking", "savings"), ("savings", "checking")])
            op = shard.service.prepare_transfer(key, amount, source, to_account_type=target)
        return _Planned(shard, key, op.op_id, rng.randint(2, 5), rng.random() < 0.5)

    results: dict[str, list[Any]] = defaultdict(list)
    lock = threading.Lock()

    def deliver(plan: _Planned, barrier: threading.Barrier | None) -> None:
        if barrier is not None:
            barrier.wait()
        try:
            result: Any = plan.shard.service.confirm(plan.user, plan.op_id)
        except BankingError as error:
            result = error
        with lock:
            results[plan.op_id].append(result)

    def replay(plans: list[_Planned]) -> int:
        """The late replays (Meta, or an impatient customer, after the fact); how many were sent."""
        sent = 0
        for plan in plans:
            if not plan.concurrent:
                for _ in range(plan.copies - 1):
                    deliver(plan, None)
                    sent += 1
        return sent

    plans: list[_Planned] = []
    previous: list[_Planned] = []
    most_open, untouched, replayed_after_next_hold = 0, 0, 0
    with tight_thread_switching():
        for customers in rounds:
            rng.shuffle(customers)  # holds, and then waves, mix customers and databases
            held = [hold(shard, key) for shard, key in customers]
            plans += held
            replayed_after_next_hold += replay(previous)
            # Each customer now has exactly this round's transfer open, whatever the replays did.
            for shard in shards:
                open_ops = list(shard.db["operations"].find({"status": "pending"}, {"user": 1}))
                most_open = max([most_open, *Counter(op["user"] for op in open_ops).values()])
                expected = {plan.op_id for plan in held if plan.shard is shard}
                untouched += len(expected & {op["_id"] for op in open_ops})
                outcome.check({op["_id"] for op in open_ops} == expected,
                              "the open confirmations are not exactly the ones just held")
            for start in range(0, len(held), wave):
                threads = []
                for plan in held[start:start + wave]:
                    firsts = plan.copies if plan.concurrent else 1
                    barrier = threading.Barrier(firsts) if firsts > 1 else None
                    threads += [threading.Thread(target=deliver, args=(plan, barrier)) for _ in range(firsts)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            previous = held
        replay(previous)  # the last round has no next transfer to wait for

    doubles, problems, superseded = 0, [], 0
    for shard in shards:
        shard_doubles, shard_problems = _books_problems(
            shard.service, shard.db, shard.users, shard.initial,
            {plan.op_id for plan in plans if plan.shard is shard})
        doubles += shard_doubles
        problems += shard_problems
        superseded += shard.db["operations"].count_documents({"status": "superseded"})
    deliveries = sum(plan.copies for plan in plans)
    answers = [result for outcomes in results.values() for result in outcomes]
    receipts = sum(1 for result in answers if isinstance(result, Receipt))
    already = sum(1 for result in answers if isinstance(result, AlreadyExecuted))
    other = [result for result in answers if not isinstance(result, (Receipt, AlreadyExecuted))]
    one_receipt = sum(1 for plan in plans if sum(isinstance(r, Receipt) for r in results[plan.op_id]) == 1)
    outcome.figures.update({
        "transfers confirmed": transfers,
        "bank databases / customers": f"{len(shards)} / {len(shards) * users}",
        "rounds (one open confirmation per customer)": len(rounds),
        "YES deliveries": deliveries,
        "duplicate deliveries": deliveries - transfers,
        "of them concurrent (same instant)": sum(plan.copies - 1 for plan in plans if plan.concurrent),
        "of them replayed after the customer's next hold": replayed_after_next_hold,
        "executions (receipts)": receipts,
        "'already done' answers": already,
        "other answers": len(other),
        "most open confirmations of one customer": most_open,
        "held transfers still open at their first YES": untouched,
        "superseded confirmations": superseded,
        "double executions": doubles,
        "lost transfers": sum(1 for plan in plans if not any(isinstance(r, Receipt) for r in results[plan.op_id])),
    })
    outcome.check(len(plans) == untouched == transfers,
                  f"{len(plans)} transfers held for {transfers}, {untouched} still open at their first YES")
    outcome.check(most_open <= 1, f"a customer had {most_open} confirmations open at once")
    outcome.check(superseded == 0, f"{superseded} confirmations were superseded before their YES")
    outcome.check(one_receipt == transfers, f"{transfers - one_receipt} ops did not get exactly one receipt")
    outcome.check(receipts + already == deliveries, f"unexpected answers: {Counter(type(r).__name__ for r in other)}")
    outcome.check(doubles == 0, f"{doubles} operations executed more than once")
    outcome.problems += problems
    outcome.seconds = time.perf_counter() - started
    return outcome


async def idempotency_channel(yes_messages: int = 200, users: int = 20, seed: int = 3) -> Outcome:
    """YES webhooks delivered 2-5 times each (some at once, some replayed after the answer) through the
    channel's MongoDB dedup to a bot that confirms the user's pending transfer (``users`` users at once,
    each YES after the previous one was answered; a bank database per ``SHARD_SIZE`` transfers)."""
    outcome = Outcome(f"idempotency (channel dedup): {yes_messages} YES messages, redelivered")
    started = time.perf_counter()
    rng = random.Random(seed)
    banks = [new_bank(limit_kobo=5_000_000 * 100) for _ in range(-(-yes_messages // SHARD_SIZE))]
    senders = [sender_number(1000 + index) for index in range(users)]
    keys = {sender: user_key(sender, SALT) for sender in senders}
    bank_of = {sender: banks[index % len(banks)] for index, sender in enumerate(senders)}
    for sender, key in keys.items():
        bank_of[sender].connect_bank(key, "gtbank")
    initial = {key: {account.type: account.balance_kobo for account in bank_of[sender].balances(key)}
               for sender, key in keys.items()}
    pending: dict[str, str] = {}
    handled: Counter[str] = Counter()
    done: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
    answers: Counter[str] = Counter()

    async def bot(message: UserMessage) -> None:
        handled[message.message_id or ""] += 1
        try:
            receipt = await asyncio.to_thread(bank_of[message.sender_id].confirm, keys[message.sender_id],
                                              pending[message.sender_id])
            answers["receipt"] += 1
            text = f"Done: {receipt.reference}"
        except AlreadyExecuted:
            answers["already"] += 1
            text = "That was already done."
        await message.output_channel.send_text_message(message.sender_id, text)
        done[message.message_id or ""].set()

    agent = RecordingAgent()
    agent.responder = bot
    posts: list[int] = []
    op_ids: list[str] = []
    # Several YES per user inside a minute: the per-user limit is raised explicitly for this scenario.
    async with served_channel(RateLimitConfig(messages=10_000), agent=agent) as (graph, channel, server):

        async def user(sender: str, count: int) -> None:
            for number in range(count):
                op = await asyncio.to_thread(bank_of[sender].prepare_transfer, keys[sender],
                                             rng.randint(100, 9_999), "checking", account_number=payee(rng),
                                             bank="access")
                op_ids.append(op.op_id)
                pending[sender] = op.op_id
                message_id = f"wamid.yes-{sender}-{number}"
                payload = text_webhook(sender, message_id, "YES")
                copies, at_once = rng.randint(2, 5), rng.random() < 0.5
                first = copies if at_once else 1
                posts.extend(status for status, _ in await asyncio.gather(*(server.post(payload)
                                                                             for _ in range(first))))
                await asyncio.wait_for(done[message_id].wait(), 30)
                for _ in range(copies - first):  # Meta retrying after the answer went out
                    posts.append((await server.post(payload))[0])
                    await asyncio.sleep(rng.random() * 0.002)

        share = [yes_messages // users + (1 if index < yes_messages % users else 0) for index in range(users)]
        await asyncio.gather(*(user(sender, count) for sender, count in zip(senders, share, strict=True)))
        await server.settle(timeout=60)
        replies = graph.delivered_texts()

    doubles, problems = 0, []
    for bank in banks:
        customers = [keys[sender] for sender in senders if bank_of[sender] is bank]
        ops = {op["_id"] for op in bank._db["operations"].find({})}
        bank_doubles, bank_problems = _books_problems(bank, bank._db, customers, initial, ops & set(op_ids))
        doubles += bank_doubles
        problems += bank_problems
    handled_twice = sum(1 for count in handled.values() if count > 1)
    outcome.figures.update({
        "YES messages": yes_messages,
        "webhook deliveries": len(posts),
        "duplicate deliveries": len(posts) - yes_messages,
        "5xx responses": sum(1 for status in posts if status >= 500),
        "handed to the bot": sum(handled.values()),
        "handed on more than once": handled_twice,
        "transfers executed": answers["receipt"],
        "double executions": doubles,
        "replies delivered": len(replies),
    })
    outcome.check(set(posts) == {200}, f"webhook answers {Counter(posts)}")
    outcome.check(len(handled) == yes_messages and handled_twice == 0,
                  f"{len(handled)} YES handled ({handled_twice} more than once) for {yes_messages}")
    outcome.check(answers == Counter({"receipt": yes_messages}), f"bot answers {dict(answers)}")
    outcome.check(len(replies) == yes_messages, f"{len(replies)} replies for {yes_messages} YES")
    outcome.check(doubles == 0, f"{doubles} transfers executed twice")
    outcome.problems += problems
    outcome.seconds = time.perf_counter() - started
    return outcome


# =============================================================================== storage faults


class InjectedFault:
    """Raise ``error`` at the ``nth`` call of ``collection.method``, before or after the call took effect;
    ``persistent``: and at every later call too (the database stays down until the fault is removed)."""

    def __init__(self, collection: str, method: str, nth: int, error: type[PyMongoError], after: bool,
                 persistent: bool = False) -> None:
        self.collection, self.method, self.nth, self.error, self.after = collection, method, nth, error, after
        self.persistent = persistent
        self.calls = 0
        self.fired = False

    def describe(self) -> str:
        when = "after it was applied (reply lost)" if self.after else "before it was applied"
        down = ", database down from then on" if self.persistent else ""
        return f"{self.error.__name__} at {self.collection}.{self.method} #{self.nth} {when}{down}"

    def hit(self, collection: str, method: str, after: bool) -> None:
        if self.fired:
            if self.persistent and not after:
                raise AutoReconnect("injected: database still unreachable")
            return
        if (collection, method) != (self.collection, self.method):
            return
        if not after:
            self.calls += 1
        if self.calls == self.nth and after == self.after:
            self.fired = True
            if self.error is OperationFailure:
                raise OperationFailure("injected: write conflict", code=112)
            raise self.error("injected: connection reset by peer")


class FaultyDatabase:
    """A database whose collections report every call to the armed fault and record a trace."""

    def __init__(self, database: Any) -> None:
        self._database = database
        self.fault: InjectedFault | None = None
        self.trace: list[tuple[str, str]] | None = None

    def __getitem__(self, name: str) -> _FaultyCollection:
        return _FaultyCollection(self._database[name], name, self)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._database, name)

    def _hit(self, collection: str, method: str, after: bool) -> None:
        if self.trace is not None and not after:
            self.trace.append((collection, method))
        if self.fault is not None:
            self.fault.hit(collection, method, after)


class _FaultyCollection:
    def __init__(self, collection: Any, name: str, owner: FaultyDatabase) -> None:
        self._collection, self._name, self._owner = collection, name, owner

    @property
    def name(self) -> str:
        return self._name

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        attribute = getattr(self._collection, method)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._owner._hit(self._name, method, after=False)
            result = attribute(*args, **kwargs)
            self._owner._hit(self._name, method, after=True)
            return result

        return call


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 17, 10, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


_FAULT_KINDS: tuple[tuple[type[PyMongoError], bool], ...] = (
    (AutoReconnect, False), (AutoReconnect, True), (OperationFailure, False))


def _confirm(service: BankingService, user: str, op_id: str) -> Any:
    try:
        return service.confirm(user, op_id)
    except BankingError as error:
        return error


def storage_faults(kinds: tuple[str, ...] = ("external", "own", "bill")) -> Outcome:
    """Every database call a confirmation makes fails in turn: once (before it applied, or after it
    applied with the reply lost; AutoReconnect and OperationFailure), or for good (the database stays
    down until the confirmation has answered). The books stay straight, the customer is told the truth
    (StorageError, "nothing was moved", only when nothing moved), and a later YES finishes the job."""
    outcome = Outcome("storage faults during confirmation")
    started = time.perf_counter()
    rng = random.Random(4)
    clock = _Clock()
    base = in_memory_database()
    ensure_indexes(base)
    db = FaultyDatabase(base)
    service = new_bank(db, clock=clock)
    user = user_key(sender_number(4242), SALT)
    service.connect_bank(user, "gtbank")

    def prepare(kind: str) -> Any:
        if kind == "external":
            return service.prepare_transfer(user, rng.randint(100, 5_000), "checking", account_number=payee(rng),
                                            bank="access")
        if kind == "own":
            return service.prepare_transfer(user, rng.randint(100, 5_000), "savings", to_account_type="checking")
        return service.prepare_bill(user, rng.randint(100, 5_000), "checking", "Ikeja Electric", "45012345678")

    figures: Counter[str] = Counter()
    with captured_logs("banking", level=logging.ERROR) as errors:
        for kind in kinds:
            op = prepare(kind)
            db.trace = []
            _confirm(service, user, op.op_id)
            points = db.trace
            db.trace = None
            figures["injection points"] += len(points)
            seen: Counter[tuple[str, str]] = Counter()
            for collection, method in points:
                seen[(collection, method)] += 1
                for error, after in _FAULT_KINDS:
                    fault = InjectedFault(collection, method, seen[(collection, method)], error, after)
                    _one_fault(service, db, user, prepare(kind), fault, clock, outcome, figures)
                down = InjectedFault(collection, method, seen[(collection, method)], AutoReconnect, False, True)
                _one_fault(service, db, user, prepare(kind), down, clock, outcome, figures)
    chain = verify_chain(base)
    outcome.check(chain.intact, f"audit chain: {chain.summary()}")
    outcome.figures.update({
        "database calls in a confirmation (injection points)": figures["injection points"],
        "faults injected": figures["faults"] + figures["outages"],
        "  single failures": figures["faults"],
        "  database down from that call on": figures["outages"],
        "customer told 'nothing was moved, try again'": figures["retry message"],
        "customer told the outcome is unknown (database unreachable)": figures["unknown"],
        "customer got the receipt despite the fault": figures["receipt"],
        "operations pending again right away": figures["pending again"],
        "operations finished by a YES after the lease": figures["lease"],
        "half-applied transfers": figures["half-applied"],
        "'nothing was moved' said when money moved": figures["false retry"],
        "double executions": figures["double"],
        "executed ops without their 'executed' audit record (error logged)": figures["audit lost"],
        "errors logged by the banking core": len(errors),
    })
    outcome.seconds = time.perf_counter() - started
    return outcome


def _one_fault(service: BankingService, db: FaultyDatabase, user: str, op: Any, fault: InjectedFault,
               clock: _Clock, outcome: Outcome, figures: Counter[str]) -> None:
    label = f"{op.kind} with {fault.describe()}"
    before = {account.type: account.balance_kobo for account in service.balances(user)}
    db.fault = fault
    first = _confirm(service, user, op.op_id)
    db.fault = None
    if not fault.fired:
        return  # this call is not on the path of this operation
    figures["outages" if fault.persistent else "faults"] += 1

    def times_applied() -> int:
        document = db["profiles"].find_one({"_id": user})
        return sum(1 for entry in document["link"]["ledger"].values() if entry["op_id"] == op.op_id)

    def status() -> str:
        return db["operations"].find_one({"_id": op.op_id})["status"]

    def books_ok(times: int) -> bool:
        after = {account.type: account.balance_kobo for account in service.balances(user)}
        moved = {account: before[account] - after[account] for account in before}
        expected = {account: 0 for account in before}
        if times:
            expected[op.source] = op.amount_kobo
            if op.kind == "transfer" and op.holder_name is None:  # own accounts: the other side gains it
                expected[next(account for account in before if account != op.source)] = -op.amount_kobo
        return moved == expected

    times = times_applied()
    if times > 1:
        figures["double"] += 1
    if not books_ok(times):
        figures["half-applied"] += 1
        outcome.problems.append(f"{label}: balances do not match the ledger")
    if isinstance(first, Receipt):
        figures["receipt"] += 1
        outcome.check(times == 1, f"{label}: a receipt, but applied {times}x")
        outcome.check(fault.persistent or status() == "executed", f"{label}: a receipt, but the op is {status()}")
    elif isinstance(first, OutcomeUnknown):
        figures["unknown"] += 1
        outcome.check(fault.persistent, f"{label}: outcome unknown after a single failure")
    elif isinstance(first, StorageError):
        figures["retry message"] += 1
        if times:
            figures["false retry"] += 1
            outcome.problems.append(f"{label}: told 'nothing was moved, try again' but the money moved")
        if status() == "pending":
            figures["pending again"] += 1
        else:
            outcome.check(fault.persistent, f"{label}: nothing moved, yet the op is {status()} after one failure")
    else:
        outcome.problems.append(f"{label}: the customer got {type(first).__name__}: {first}")

    answers = [_confirm(service, user, op.op_id)]  # the database is back; the customer says YES again
    if status() != "executed":
        clock.now += EXECUTION_LEASE + timedelta(seconds=1)
        figures["lease"] += 1
        answers.append(_confirm(service, user, op.op_id))
    for answer in answers:
        finished = isinstance(answer, Receipt) or (isinstance(answer, AlreadyExecuted)
                                                   and (answer.receipt is not None or answer is not answers[-1]))
        outcome.check(finished, f"{label}: a later YES got {type(answer).__name__}: {answer}")
    times = times_applied()
    if times > 1:
        figures["double"] += 1
    outcome.check(times == 1 and status() == "executed" and books_ok(1),
                  f"{label}: after the database came back the op is {status()}, applied {times}x")
    audits = [record["outcome"] for record in db["audit"].find({"op_id": op.op_id})]
    if audits.count("executed") == 0 and fault.persistent:
        figures["audit lost"] += 1
    else:
        outcome.check(audits.count("executed") == 1, f"{label}: audit outcomes {audits}")


# =============================================================================== Graph API outage


class OutageGraphApi(FakeGraphApi):
    """The fake Graph API, with a switch that makes every call fail with 503 until it is turned back."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def _scripted(self, kind: str) -> Scripted | None:
        if self.down:
            return Scripted(503, graph_error(2, "Service temporarily unavailable"))
        return await super()._scripted(kind)


async def graph_outage(users: int = 20, outage_seconds: float = 0.15) -> Outcome:
    """Meta down then back (replies retried and delivered), then down for longer than the retry budget
    (every undelivered reply logged, one record each), then back again."""
    outcome = Outcome(f"Graph API outage: {users} users")
    started = time.perf_counter()
    retry = RetryPolicy(max_attempts=5, base_delay=0.05, max_delay=0.2, jitter=0.5, total_timeout=1.5)
    graph = OutageGraphApi()
    with captured_logs("connectors.whatsapp", "connectors.whatsapp_graph", level=logging.WARNING) as records:
        async with served_channel(RateLimitConfig.unlimited(), graph=graph, retry=retry) as (_, channel, server):
            senders = [sender_number(2000 + index) for index in range(users)]

            async def round_of(tag: str) -> None:
                await asyncio.gather(*(server.post(text_webhook(sender, f"wamid.{tag}-{index}", f"{tag} {index}"))
                                       for index, sender in enumerate(senders)))

            graph.down = True
            await round_of("blip")
            await asyncio.sleep(outage_seconds)
            graph.down = False
            await server.settle(timeout=30)
            blip_delivered = [text for text in graph.delivered_texts() if text.startswith("You said: blip")]
            blip_attempts = sum(1 for request in graph.of_kind("message")
                                if request.json.get("text", {}).get("body", "").startswith("You said: blip"))
            lost_in_blip = [r for r in records if "was not delivered" in r.getMessage()]

            graph.down = True
            await round_of("down")
            await server.settle(timeout=30)
            graph.down = False
            down_delivered = [text for text in graph.delivered_texts() if text.startswith("You said: down")]
            undelivered_logs = [r for r in records if "was not delivered" in r.getMessage()]
            gave_up_logs = [r for r in records if "giving up" in r.getMessage() and "send text" in r.getMessage()]
            who = Counter(r.getMessage().rsplit(" to ", 1)[-1] for r in undelivered_logs)

            await server.post(text_webhook(senders[0], "wamid.back-0", "back again"))
            await server.settle(timeout=10)
            back = "You said: back again" in graph.delivered_texts()
            refused = sum(1 for request in graph.requests if request.status == 503)

    outcome.figures.update({
        "replies during a short outage": users,
        "  delivered after retries": len(blip_delivered),
        "  send attempts (incl. retries)": blip_attempts,
        "  lost": users - len(blip_delivered),
        "replies during a long outage": users,
        "  delivered": len(down_delivered),
        "  undelivered, each logged": len(undelivered_logs),
        "  'giving up' errors logged": len(gave_up_logs),
        "  silently dropped": users - len(down_delivered) - len(undelivered_logs),
        "delivered once Meta is back": int(back),
        "Graph API calls failed on purpose (503)": refused,
    })
    outcome.check(len(blip_delivered) == users and not lost_in_blip,
                  f"short outage: {len(blip_delivered)} of {users} replies delivered")
    outcome.check(blip_attempts > users, "the short outage caused no retries (it did not bite)")
    outcome.check(not down_delivered and len(undelivered_logs) == users,
                  f"long outage: {len(undelivered_logs)} undelivered replies logged for {users}")
    outcome.check(len(who) == users and set(who.values()) == {1}, "an undelivered reply was logged twice or not at all")
    outcome.check(len(gave_up_logs) == users, f"{len(gave_up_logs)} 'giving up' errors for {users} replies")
    outcome.check(not any(sender in r.getMessage() for r in records for sender in senders),
                  "a log record carries a phone number")
    outcome.check(back, "the channel did not recover once Meta was back")
    outcome.seconds = time.perf_counter() - started
    return outcome


# =============================================================================== fuzzing


_SIGNATURES = ("valid", "valid", "valid", "valid", "valid", "valid", "none", "wrong", "garbage")
_HEADER_ALPHABET = string.ascii_letters + string.digits + "=-_:; ,."
_TEMPLATES = ("text", "text_batch", "interactive_button_reply", "interactive_list_reply", "template_button",
              "audio_voice", "image", "sticker", "location", "contacts", "reaction", "document", "video",
              "unsupported", "statuses_delivered", "statuses_failed_131047")

json_leaf = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
             | st.text(max_size=30))
json_any = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def _huge(char: str, size: int) -> str:
    return char * size


huge_text = st.builds(_huge, st.sampled_from(["x", "9", "\u00e9", "\U0001f4b8", "\x00", " "]),
                      st.integers(5_000, 300_000))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, outermost first."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


_TEMPLATE_DATA = {name: load_payload(name) for name in _TEMPLATES}
_serial = itertools.count()


def _set(payload: Any, path: tuple[Any, ...], action: str, replacement: Any) -> Any:
    """``payload`` with the value at ``path`` deleted or replaced."""
    if not path:
        return replacement
    parent = payload
    for step in path[:-1]:
        parent = parent[step]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return payload


@st.composite
def meta_payload(draw: Any) -> Any:
    """A recorded Meta webhook with a new sender and message id, then 0-4 fields deleted or replaced by
    anything (another type, random JSON, a huge string): the parser's every branch, valid or not."""
    name = draw(st.sampled_from(_TEMPLATES))
    payload = json.loads(json.dumps(_TEMPLATE_DATA[name]))
    sender = sender_number(3000 + draw(st.integers(0, 999)))  # some users send a lot: the rate limit joins in
    for change in payload["entry"][0]["changes"]:
        # Fresh ids from a counter (hypothesis favours small numbers, and dedup would swallow repeats).
        for message in change["value"].get("messages", []):
            message.update({"from": sender, "id": f"wamid.fz-{next(_serial)}"})
        for status in change["value"].get("statuses", []):
            status.update({"recipient_id": sender, "id": f"wamid.fz-{next(_serial)}"})
    for _ in range(draw(st.integers(0, 4))):
        paths = _paths(payload)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["delete", "delete", "json", "leaf", "huge", "digits"]))
        replacement: Any = None
        if action == "json":
            replacement = copy.deepcopy(draw(json_any))  # later mutations must not edit a drawn value
        elif action == "leaf":
            replacement = draw(json_leaf)
        elif action == "huge":
            replacement = draw(huge_text)
        elif action == "digits":
            replacement = str(draw(st.integers(-(10**30), 10**30)))
        payload = _set(payload, path, action, replacement)
    return payload


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, allow_nan=True).encode()


@st.composite
def webhook_body(draw: Any) -> bytes:
    """Raw bytes to POST: mutated Meta webhooks, random JSON, random or cut bytes, huge or deep bodies."""
    shape = draw(st.sampled_from(["meta"] * 6 + ["json", "bytes", "truncated", "deep", "huge"]))
    if shape == "meta":
        return _encode(draw(meta_payload()))
    if shape == "json":
        return _encode(draw(json_any))
    if shape == "bytes":
        return draw(st.binary(max_size=512))
    if shape == "truncated":
        body = _encode(draw(meta_payload()))
        # A fraction, not a length: ids come from a counter, so the body's length is not the draw's to know.
        return body[: len(body) * draw(st.integers(0, 999)) // 1000]
    if shape == "deep":
        depth = draw(st.integers(100, 50_000))
        return ("[" * depth + "]" * draw(st.sampled_from([depth, 0, depth // 2]))).encode()
    return _encode({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {
        "metadata": {"phone_number_id": PHONE_NUMBER_ID},
        "messages": [{"from": "2348031230000", "id": f"wamid.huge-{draw(st.integers(0, 2**32))}", "type": "text",
                      "text": {"body": "x" * draw(st.integers(100_000, 2_000_000))}}]}}]}]})


def fuzz_inputs(count: int, seed: int = 5, batch: int = 5) -> list[tuple[bytes, str]]:
    """``count`` (body, signature mode) pairs drawn by hypothesis: generation only (no shrinking, no
    example database), ``batch`` inputs per example, which keeps hypothesis's per-example cost down."""
    drawn: list[tuple[bytes, str]] = []
    round_seed = seed
    while len(drawn) < count:
        before = len(drawn)

        @settings(max_examples=-(-(count - len(drawn)) // batch), database=None, phases=[Phase.generate],
                  deadline=None, suppress_health_check=list(HealthCheck))
        @hypothesis_seed(round_seed)
        @given(st.lists(st.tuples(webhook_body(), st.sampled_from(_SIGNATURES)), min_size=batch, max_size=batch))
        def collect(inputs: list[tuple[bytes, str]]) -> None:
            drawn.extend(inputs)

        collect()
        round_seed += 1
        if len(drawn) == before:
            break
    return drawn[:count]


def _signature(body: bytes, mode: str, rng: random.Random) -> str | None:
    if mode == "valid":
        return sign(body)
    if mode == "wrong":
        return sign(body, "not-the-app-secret")
    if mode == "garbage":
        return "".join(rng.choice(_HEADER_ALPHABET) for _ in range(rng.randint(0, 80)))
    return None


async def fuzz(count: int = 1000, seed: int = 5, in_flight: int = 32) -> Outcome:
    """POST ``count`` generated bodies, signed and not; no 5xx, and the server still answers afterwards."""
    outcome = Outcome(f"webhook fuzzing: {count} generated inputs")
    started = time.perf_counter()
    inputs = fuzz_inputs(count, seed)
    generated = time.perf_counter() - started
    rng = random.Random(seed)
    statuses: Counter[int] = Counter()
    agent = RecordingAgent()

    async def quiet(message: UserMessage) -> None:
        await message.output_channel.send_text_message(message.sender_id, "ok")

    agent.responder = quiet
    with captured_logs("connectors", level=logging.ERROR) as errors:
        async with served_channel(agent=agent) as (graph, channel, server), \
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            gate = asyncio.Semaphore(in_flight)

            async def post(body: bytes, mode: str) -> None:
                signature = _signature(body, mode, rng)
                headers = {"Content-Type": "application/json"}
                if signature is not None:
                    headers["X-Hub-Signature-256"] = signature
                # aiohttp wants big bodies as a stream (it warns about raw bytes over 1 MB).
                data: Any = io.BytesIO(body) if len(body) > 512 * 1024 else body
                async with gate:
                    try:
                        async with http.post(server.webhook_url, data=data, headers=headers) as response:
                            await response.read()
                            status = response.status
                    except Exception as error:  # the server must never hang up or time out
                        outcome.problems.append(f"POST failed: {type(error).__name__}: {error}")
                        return
                statuses[status] += 1

            await asyncio.gather(*(post(body, mode) for body, mode in inputs))
            await server.settle(timeout=120)
            handled_by_fuzz = len(agent.messages)
            final = text_webhook("2348031239999", "wamid.after-the-fuzz", "still there?")
            final_status, _ = await server.post(final)
            await server.settle(timeout=10)
            alive = final_status == 200 and agent.texts[-1:] == ["still there?"]
            alive = alive and graph.delivered()[-1]["to"] == "2348031239999"
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    crashes = [record for record in errors if record.exc_info]  # an exception escaped the channel's code
    outcome.figures.update({
        "fuzz inputs": len(inputs),
        "  signed with the app secret": sum(1 for _, mode in inputs if mode == "valid"),
        "  unsigned / wrongly signed / garbage header": "{} / {} / {}".format(
            *(sum(1 for _, m in inputs if m == mode) for mode in ("none", "wrong", "garbage"))),
        "  bytes posted": sum(len(body) for body, _ in inputs),
        "  largest body (bytes)": max((len(body) for body, _ in inputs), default=0),
        "answers by status": dict(sorted(statuses.items())),
        "5xx responses": server_errors,
        "messages that reached the bot": handled_by_fuzz,
        "errors logged by the channel (e.g. Meta refusing a media id)": len(errors),
        "crashes in background work": len(crashes),
        "valid message afterwards handled": int(alive),
        "generation time (s)": round(generated, 1),
    })
    outcome.check(len(inputs) == count, f"only {len(inputs)} inputs could be generated")
    outcome.check(server_errors == 0, f"{server_errors} answers were 5xx")
    outcome.check(sum(statuses.values()) == len(inputs), "some posts got no answer")
    outcome.check(not crashes, f"background work crashed: {Counter(r.getMessage()[:60] for r in crashes)}")
    outcome.check(alive, "a valid message after the fuzzing was not handled")
    outcome.seconds = time.perf_counter() - started
    return outcome


# =============================================================================== secrets at rest


PHONE = "2348031234567"
RECIPIENT = "0123456789"
METER = "45012345678"
CONVERSATION = (
    "Hello, please connect my GTBank account",
    f"Send 5000 naira to {RECIPIENT[:3]} {RECIPIENT[3:6]} {RECIPIENT[6:]} at Access Bank",
    "YES",
    f"Pay 2500 for my Ikeja Electric prepaid meter {METER}",
    "YES",
    "What's my balance now?",
)
DOMAIN_YAML = """
version: "3.1"
intents: [greet, connect_bank, transfer_money, pay_bill, affirm, check_balance]
entities: [account_number, amount, bank, meter_number]
slots:
  account_number: {type: any, mappings: [{type: custom}]}
  amount: {type: any, mappings: [{type: custom}]}
  bank: {type: any, mappings: [{type: custom}]}
  meter_number: {type: any, mappings: [{type: custom}]}
  pending_op_id: {type: any, mappings: [{type: custom}]}
responses:
  utter_greet: [{text: "Hi!"}]
"""


def realistic_wamid(phone: str, serial: int) -> str:
    """A message id shaped like Meta's: base64 of a record that starts with the sender's number."""
    record = b"\x1c\x18\x0d" + phone.encode() + b"\x15\x02\x00\x12\x18\x14" + f"3EB0{serial:016X}".encode()
    return "wamid." + base64.b64encode(record).decode()


class ScriptedBot:
    """Stands in for Rasa + the action server: understands the scripted conversation, keeps the
    conversation in the encrypted tracker store and calls the banking core, as the real ones do."""

    def __init__(self, bank: BankingService, store: EncryptedMongoTrackerStore, domain: Domain) -> None:
        self.bank, self.store, self.domain = bank, store, domain

    async def handle(self, message: UserMessage) -> None:
        sender = message.sender_id
        tracker = await self.store.retrieve(sender)
        if tracker is None:
            tracker = DialogueStateTracker(sender, self.domain.slots)
            for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
                tracker.update(event)
        text = message.text or ""
        intent, slots, reply = await self._act(user_key(sender, SALT), text, tracker)
        tracker.update(UserUttered(text, intent={"name": intent, "confidence": 1.0},
                                   parse_data={"intent": {"name": intent, "confidence": 1.0}, "text": text,
                                               "entities": [{"entity": k, "value": v} for k, v in slots.items()]},
                                   input_channel="whatsapp", message_id=message.message_id,
                                   metadata=message.metadata))
        for name, value in slots.items():
            tracker.update(SlotSet(name, value))
        tracker.update(ActionExecuted("action_reply"))
        tracker.update(BotUttered(reply))
        tracker.update(ActionExecuted("action_listen"))
        await self.store.save(tracker)
        await message.output_channel.send_text_message(sender, reply)

    async def _act(self, user: str, text: str, tracker: DialogueStateTracker) -> tuple[str, dict[str, Any], str]:
        lowered = text.lower()
        if "connect" in lowered:
            profile = await asyncio.to_thread(self.bank.connect_bank, user, "gtbank")
            lines = ", ".join(f"{a.name} {a.masked_number}" for a in profile.accounts)
            return "connect_bank", {"bank": "gtbank"}, f"Connected {profile.bank}: {lines}."
        if lowered.startswith("send"):
            amount, number = re.search(r"send (\d+) naira to ([\d ]+) at", lowered).groups()
            number = number.replace(" ", "")
            op = await asyncio.to_thread(self.bank.prepare_transfer, user, int(amount) * 100, "checking",
                                         account_number=number, bank="access")
            return ("transfer_money", {"account_number": number, "amount": amount, "pending_op_id": op.op_id},
                    f"Send ₦{amount} to {op.destination_label}? Reply YES to confirm.")
        if lowered.startswith("pay"):
            amount, meter = re.search(r"pay (\d+) .* meter (\d+)", lowered).groups()
            op = await asyncio.to_thread(self.bank.prepare_bill, user, int(amount) * 100, "checking",
                                         "Ikeja Electric", meter)
            return ("pay_bill", {"meter_number": meter, "amount": amount, "pending_op_id": op.op_id},
                    f"Pay ₦{amount} to {op.destination_label}? Reply YES to confirm.")
        if lowered == "yes":
            receipt = await asyncio.to_thread(self.bank.confirm, user, tracker.get_slot("pending_op_id"))
            return "affirm", {"pending_op_id": None}, f"Done. Reference {receipt.reference}."
        balances = await asyncio.to_thread(self.bank.balances, user)
        return "check_balance", {}, "; ".join(f"{a.name} {a.masked_number}: {a.balance_kobo}" for a in balances)


def dump_databases(databases: dict[str, Any]) -> tuple[dict[tuple[str, str], str], int]:
    """Every collection of every database as JSON text, keyed by (database, collection); and the document count."""
    dumped, documents = {}, 0
    for label, database in databases.items():
        for name in sorted(database.list_collection_names()):
            found = list(database[name].find({}))
            documents += len(found)
            dumped[(label, name)] = json.dumps(found, default=str, ensure_ascii=False)
    return dumped, documents


async def secrets_conversation() -> Outcome:
    """A whole conversation (connect, transfer, bill) through the channel, the encrypted tracker store
    and the banking core; then no database may show the number, the texts, account numbers or tokens."""
    outcome = Outcome("secrets at rest after a full conversation")
    started = time.perf_counter()
    keyring = Keyring(bytes.fromhex(KEY_HEX))
    channel_db, tracker_db = in_memory_database(), in_memory_database()
    bank = new_bank()
    domain = Domain.from_dict(yaml.safe_load(DOMAIN_YAML))
    store = EncryptedMongoTrackerStore(domain, database=tracker_db, keyring=keyring,
                                       environ={"USER_ID_SALT": SALT, "ENCRYPTION_KEY": KEY_HEX})
    bot = ScriptedBot(bank, store, domain)
    agent = RecordingAgent()
    agent.responder = bot.handle
    with captured_logs("connectors", "banking", "actions", level=logging.DEBUG) as records:
        async with served_channel(agent=agent, database=channel_db) as (graph, channel, server):
            for serial, text in enumerate(CONVERSATION):
                status, _ = await server.post(text_webhook(PHONE, realistic_wamid(PHONE, serial), text))
                outcome.check(status == 200, f"message {serial} answered {status}")
                await server.settle(timeout=10)
            for serial in range(len(graph.delivered())):  # Meta's delivery receipts for the replies
                receipt = load_payload("statuses_delivered")
                stored = receipt["entry"][0]["changes"][0]["value"]["statuses"][0]
                stored.update({"id": realistic_wamid(PHONE, 100 + serial), "recipient_id": PHONE})
                await server.post(receipt)
            await server.settle(timeout=10)
            replies = graph.delivered_texts()
    user = user_key(PHONE, SALT)
    own_numbers = [seed.number for seed in SandboxProvider().connect(user, "gtbank")]
    secrets = {
        "phone number": [PHONE, "+" + PHONE, "0" + PHONE[3:], PHONE[3:]],
        "message texts": [text for text in CONVERSATION if len(text) >= 8],
        "recipient's account number": [RECIPIENT, f"{RECIPIENT[:3]} {RECIPIENT[3:6]} {RECIPIENT[6:]}"],
        "own account numbers": own_numbers,
        "meter number": [METER],
        "recipient's and meter holder's names": [
            SandboxProvider().name_enquiry(RECIPIENT, "Access Bank"),
            SandboxProvider().validate_biller_ref("Ikeja Electric", METER)],
        "WhatsApp API token": [TOKEN],
        "WhatsApp app secret": [APP_SECRET],
        "WhatsApp verify token": [VERIFY_TOKEN],
        "encryption key": [KEY_HEX, KEY_HEX.upper()],
        "user id salt": [SALT],
    }
    dumped, documents = dump_databases({"channel": channel_db, "tracker store": tracker_db, "bank": bank._db})
    found = [(what, f"{database}.{collection}")
             for what, values in secrets.items() for (database, collection), text in dumped.items()
             if any(value in text for value in values)]
    encoded_phone = base64_forms(PHONE)
    encoded = sorted({f"{database}.{collection}" for (database, collection), text in dumped.items()
                      if any(form in text for form in encoded_phone)})
    logged = sorted({what for what, values in secrets.items()
                     for record in records if any(value in record.getMessage() for value in values)})
    outcome.figures.update({
        "messages in the conversation": len(CONVERSATION),
        "replies delivered": len(replies),
        "databases dumped": 3,
        "collections dumped": len(dumped),
        "documents dumped": documents,
        "bytes dumped": sum(len(text) for text in dumped.values()),
        "kinds of secret looked for": len(secrets),
        "found in clear": len(found),
        "phone number base64-encoded in stored message ids": ", ".join(encoded) or "nowhere",
        "secrets in log records": len(logged),
    })
    outcome.check(len(replies) == len(CONVERSATION), f"{len(replies)} replies for {len(CONVERSATION)} messages")
    outcome.check(any(text.startswith("Done. Reference") for text in replies[2:3]), "the transfer did not run")
    outcome.check(any(text.startswith("Done. Reference") for text in replies[4:5]), "the bill was not paid")
    for what, where in found:
        outcome.problems.append(f"{what} in clear in {where}")
    for what in logged:
        outcome.problems.append(f"{what} in a log record")
    outcome.seconds = time.perf_counter() - started
    return outcome


def base64_forms(text: str) -> list[str]:
    """What base64 of any data holding ``text`` must contain, whatever the text's alignment: the
    encoding of its whole 3-byte groups, starting at each of its first three bytes."""
    data = text.encode()
    return [base64.b64encode(data[start:start + (len(data) - start) // 3 * 3]).decode() for start in range(3)]

