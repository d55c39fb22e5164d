"""Idempotency: replayed YES messages and transfers retried in waves execute at most once."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from rasa.core.channels.channel import UserMessage

from banking.audit import verify_chain
from banking.errors import AlreadyExecuted, BankingError
from banking.identity import user_key
from banking.models import Receipt
from banking.service import BankingService
from checks.reliability.common import (
    SALT,
    Outcome,
    new_bank,
    payee,
    sender_number,
    served_channel,
    tight_thread_switching,
)
from checks.whatsapp_fakes import (
    RecordingAgent,
    text_webhook,
)
from connectors.whatsapp.ratelimit import RateLimitConfig


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
            assert isinstance(receipt, Receipt), receipt  # the sandbox bank settles at once
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
