"""Storage faults: MongoDB failing at each step of a money movement; nothing is lost or doubled."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from pymongo.errors import AutoReconnect, OperationFailure, PyMongoError

from banking.audit import verify_chain
from banking.errors import AlreadyExecuted, BankingError, OutcomeUnknown, StorageError
from banking.identity import user_key
from banking.models import Receipt
from banking.service import EXECUTION_LEASE, BankingService
from banking.store import ensure_indexes, in_memory_database
from checks.clock import Clock
from checks.interposed_db import Fault, InterposedDatabase, Trace
from checks.reliability.common import SALT, Outcome, captured_logs, new_bank, payee, sender_number

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
    clock = Clock(datetime(2025, 3, 17, 10, 0, tzinfo=timezone.utc))
    base = in_memory_database()
    ensure_indexes(base)
    db = InterposedDatabase(base)
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
            trace = Trace(db)
            _confirm(service, user, op.op_id)
            db.reset()
            figures["injection points"] += len(trace.calls)
            seen: Counter[tuple[str, str]] = Counter()
            for collection, method in trace.calls:
                seen[(collection, method)] += 1
                nth = seen[(collection, method)]
                for error, after in _FAULT_KINDS:
                    fault = functools.partial(Fault, db, collection, method, nth=nth, after=after, error=error)
                    _one_fault(service, db, user, prepare(kind), fault, clock, outcome, figures)
                down = functools.partial(Fault, db, collection, method, nth=nth, persistent=True)
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


def _one_fault(service: BankingService, db: InterposedDatabase, user: str, op: Any, arm: Callable[[], Fault],
               clock: Clock, outcome: Outcome, figures: Counter[str]) -> None:
    before = {account.type: account.balance_kobo for account in service.balances(user)}
    fault = arm()
    first = _confirm(service, user, op.op_id)
    db.reset()
    label = f"{op.kind} with {fault.describe()}"
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
