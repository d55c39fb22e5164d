"""The confirmation state machine (banking/confirmations.py): expiry on every path, settling
lapsed claims, one open confirmation per customer, statuses, cancel reasons and receipts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from banking.config import Settings
from banking.confirmations import EXECUTION_LEASE
from banking.errors import (
    AlreadyExecuted,
    ConfirmationExpired,
    ConfirmationSuperseded,
    InsufficientFunds,
    NothingPending,
    OutcomeUnknown,
    StorageError,
)
from banking.models import PendingOperation, Receipt, Settled
from banking.sandbox import SandboxProvider
from banking.service import BankingService
from checks.clock import START, Clock
from checks.interposed_db import Fault, InterposedDatabase, Pause

CHECKING, SAVINGS = 4_532_050, 12_545_000
PAYEE = "0123456789"
TTL = timedelta(seconds=300)


@pytest.fixture
def interposed(db: Any) -> InterposedDatabase:
    return InterposedDatabase(db)


@pytest.fixture
def bank(interposed: InterposedDatabase, clock: Clock) -> BankingService:
    """A service on a database the test can make fail or pause."""
    return BankingService(interposed, SandboxProvider(), Settings(user_id_salt="test-salt"), clock=clock)


@pytest.fixture
def customer(bank: BankingService) -> str:
    key = "b7" * 32
    bank.connect_bank(key, "gtbank")
    return key


def balances(service: BankingService, user: str) -> dict[str, int]:
    return {account.type: account.balance_kobo for account in service.balances(user)}


def trail(db: Any, op_id: str) -> list[tuple[str, str, str | None]]:
    return [(a["action"], a["outcome"], a["reason"]) for a in db["audit"].find({"op_id": op_id}, sort=[("_id", 1)])]


def transfer(service: BankingService, user: str, amount: int = 1_000_000) -> PendingOperation:
    return service.prepare_transfer(user, amount, "checking", account_number=PAYEE, bank="uba")


def abandon_claim(db: Any, op_id: str, at: Any = START) -> None:
    """What a worker that claimed the operation and then died leaves behind."""
    db["operations"].update_one({"_id": op_id}, {"$set": {"status": "executing", "claimed_at": at,
                                                          "claim": "a-worker-that-died"}})


# --------------------------------------------------------------------- never after expiry, on any path


def test_first_claim_after_expiry_is_refused(service: BankingService, db: Any, user: str, clock: Clock) -> None:
    op = transfer(service, user)
    clock.advance(seconds=300)
    assert service.operation_status(user, op.op_id) == "expired"  # reads so before anyone writes it
    assert service.pending_operation(user, op.op_id) is None
    with pytest.raises(ConfirmationExpired):
        service.confirm(user, op.op_id)
    assert db["operations"].find_one({"_id": op.op_id})["status"] == "expired"
    assert balances(service, user) == {"checking": CHECKING, "savings": SAVINGS}


def test_a_retry_after_a_storage_fault_is_refused_once_expired(
        bank: BankingService, interposed: InterposedDatabase, db: Any, customer: str, clock: Clock) -> None:
    op = transfer(bank, customer)
    Fault(interposed, "profiles", "find_one_and_update")  # the money movement fails, nothing applied
    with pytest.raises(StorageError) as failed:
        bank.confirm(customer, op.op_id)
    assert not isinstance(failed.value, OutcomeUnknown)
    assert bank.operation_status(customer, op.op_id) == "pending"  # released, for a retry
    clock.advance(minutes=6)
    with pytest.raises(ConfirmationExpired):
        bank.confirm(customer, op.op_id)
    assert balances(bank, customer) == {"checking": CHECKING, "savings": SAVINGS}
    assert bank.operation_status(customer, op.op_id) == "expired"
    assert [outcome for _, outcome, _ in trail(db, op.op_id)] == ["requested", "confirmed", "expired"]


def test_a_claim_abandoned_three_days_ago_is_settled_as_expired_not_run(
        bank: BankingService, interposed: InterposedDatabase, db: Any, customer: str, clock: Clock) -> None:
    op = transfer(bank, customer)
    outage = Fault(interposed, "profiles", "find_one_and_update", persistent=True)
    with pytest.raises(OutcomeUnknown):  # the worker cannot even ask whether it ran
        bank.confirm(customer, op.op_id)
    outage.heal()
    assert bank.operation_status(customer, op.op_id) == "executing"
    clock.advance(days=3)
    with pytest.raises(ConfirmationExpired):
        bank.confirm(customer, op.op_id)
    assert balances(bank, customer) == {"checking": CHECKING, "savings": SAVINGS}
    assert bank.operation_status(customer, op.op_id) == "expired"
    assert op.op_id in db["profiles"].find_one({"_id": customer})["voided_ops"]
    assert trail(db, op.op_id)[-1] == ("transfer", "expired", "claim_lapsed")
    with pytest.raises(ConfirmationExpired):  # and stays so
        bank.confirm(customer, op.op_id)


def test_a_claim_lapsed_but_unexpired_is_reclaimed_and_run_once(
        service: BankingService, db: Any, user: str, clock: Clock) -> None:
    op = transfer(service, user)
    abandon_claim(db, op.op_id)
    with pytest.raises(AlreadyExecuted) as busy:  # within the lease, someone may still be running it
        service.confirm(user, op.op_id)
    assert busy.value.receipt is None
    clock.advance(seconds=EXECUTION_LEASE.total_seconds())
    receipt = service.confirm(user, op.op_id)
    assert receipt.new_balance_kobo == CHECKING - 1_000_000
    assert [outcome for _, outcome, _ in trail(db, op.op_id)] == ["requested", "reclaimed", "confirmed", "executed"]


def test_a_worker_that_stalls_past_its_lease_cannot_apply_an_op_settled_as_expired(
        bank: BankingService, interposed: InterposedDatabase, db: Any, customer: str, clock: Clock) -> None:
    op = transfer(bank, customer)
    pause = Pause(interposed, "profiles", "find_one_and_update")  # just before the money moves
    outcome: list[Any] = []

    def stalled_worker() -> None:
        try:
            outcome.append(bank.confirm(customer, op.op_id))
        except Exception as error:  # noqa: BLE001 - the test inspects whatever it raised
            outcome.append(error)

    worker = threading.Thread(target=stalled_worker)
    worker.start()
    assert pause.reached.wait(10)
    clock.advance(days=3)
    settled = bank.settle_lapsed(customer)
    assert settled == [Settled(op_id=op.op_id, kind="transfer", amount_kobo=1_000_000,
                               destination_label=op.destination_label, outcome="expired", reference=None)]
    pause.release()
    worker.join(10)
    assert isinstance(outcome[0], ConfirmationExpired)
    assert balances(bank, customer) == {"checking": CHECKING, "savings": SAVINGS}
    assert bank.operation_status(customer, op.op_id) == "expired"
    assert db["profiles"].find_one({"_id": customer})["link"]["ledger"] == {}


def test_the_deadline_is_checked_again_just_before_the_effect(
        bank: BankingService, interposed: InterposedDatabase, customer: str, clock: Clock) -> None:
    op = transfer(bank, customer)
    clock.advance(seconds=299)

    def slow(collection: str, method: str) -> None:
        if (collection, method) == ("audit", "insert_one"):
            clock.advance(seconds=2)  # the claim was in time; the effect would not be

    interposed.before = slow
    with pytest.raises(ConfirmationExpired):
        bank.confirm(customer, op.op_id)
    assert balances(bank, customer) == {"checking": CHECKING, "savings": SAVINGS}
    assert bank.operation_status(customer, op.op_id) == "expired"


# --------------------------------------------------------------------- settle_lapsed


def test_settle_lapsed_records_an_op_that_had_taken_effect_and_gives_its_receipt(
        bank: BankingService, interposed: InterposedDatabase, db: Any, customer: str, clock: Clock) -> None:
    op = bank.prepare_bill(customer, 1_900_000, "checking", "DStv", "7012345678")
    outage = Fault(interposed, "operations", "update_one", persistent=True)  # the money moves; recording fails
    receipt = bank.confirm(customer, op.op_id)  # the customer still hears it went through
    outage.heal()
    assert bank.operation_status(customer, op.op_id) == "executing"
    assert bank.settle_lapsed(customer) == []  # not lapsed yet
    clock.advance(minutes=3)
    (settled,) = bank.settle_lapsed(customer)
    assert settled == Settled(op_id=op.op_id, kind="bill", amount_kobo=1_900_000,
                              destination_label=op.destination_label, outcome="executed",
                              reference=receipt.reference)
    assert bank.operation_status(customer, op.op_id) == "executed"
    assert bank.executed_receipt(customer, op.op_id).reference == receipt.reference
    assert balances(bank, customer)["checking"] == CHECKING - 1_900_000  # once
    assert trail(db, op.op_id)[-1] == ("bill", "executed", "settled")
    with pytest.raises(AlreadyExecuted) as again:
        bank.confirm(customer, op.op_id)
    assert again.value.receipt.reference == receipt.reference


def test_a_yes_after_the_lease_gets_the_receipt_of_an_op_that_had_taken_effect(
        service: BankingService, db: Any, user: str, clock: Clock) -> None:
    op = transfer(service, user)
    receipt = service.confirm(user, op.op_id)
    abandon_claim(db, op.op_id)  # as if the worker died after the money moved, before recording it
    clock.advance(days=3)  # long expired: it is still reported as done, never as expired
    with pytest.raises(AlreadyExecuted) as done:
        service.confirm(user, op.op_id)
    assert (done.value.receipt.reference, done.value.receipt.amount_kobo) == (receipt.reference, 1_000_000)
    assert service.operation_status(user, op.op_id) == "executed"
    assert balances(service, user)["checking"] == CHECKING - 1_000_000


def test_settle_lapsed_settles_every_lapsed_op_of_the_customer_and_no_one_elses(
        service: BankingService, db: Any, user: str, clock: Clock) -> None:
    ran = transfer(service, user, 200_000)
    receipt = service.confirm(user, ran.op_id)
    abandon_claim(db, ran.op_id)
    never = transfer(service, user, 300_000)
    abandon_claim(db, never.op_id)
    other = "d9" * 32
    service.connect_bank(other, "GTBank")
    theirs = transfer(service, other)
    abandon_claim(db, theirs.op_id)
    clock.advance(days=3)
    assert [(s.op_id, s.outcome, s.reference) for s in service.settle_lapsed(user)] == [
        (ran.op_id, "executed", receipt.reference), (never.op_id, "expired", None)]
    assert service.settle_lapsed(user) == []  # settled once
    assert service.operation_status(other, theirs.op_id) == "executing"
    assert balances(service, user)["checking"] == CHECKING - 200_000


def test_settle_lapsed_leaves_an_unexpired_op_that_did_not_run_for_the_customers_yes(
        service: BankingService, db: Any, user: str, clock: Clock) -> None:
    op = transfer(service, user)
    abandon_claim(db, op.op_id)
    clock.advance(minutes=3)
    assert service.settle_lapsed(user) == []
    assert service.operation_status(user, op.op_id) == "executing"
    assert service.confirm(user, op.op_id).amount_kobo == 1_000_000


# --------------------------------------------------------------------- one open confirmation per customer


@pytest.mark.parametrize("newer", [
    lambda s, u: s.prepare_transfer(u, 1_000, "savings", to_account_type="checking"),
    lambda s, u: s.prepare_bill(u, 1_000, "checking", "DStv", "7012345678"),
    lambda s, u: s.prepare_airtime(u, 10_000, "checking", "MTN", "08031234567"),
    lambda s, u: s.prepare_freeze(u),
    lambda s, u: s.prepare_set_limit(u, 100_000),
    lambda s, u: s.prepare_disconnect(u),
])
def test_holding_any_new_operation_supersedes_the_pending_one(
        service: BankingService, db: Any, user: str, newer: Callable[[BankingService, str], PendingOperation]) -> None:
    old = transfer(service, user)
    new = newer(service, user)
    assert service.operation_status(user, old.op_id) == "superseded"
    assert db["operations"].find_one({"_id": old.op_id})["superseded_by"] == new.op_id
    assert trail(db, old.op_id) == [("transfer", "requested", None), ("transfer", "superseded", "newer_request")]
    with pytest.raises(ConfirmationSuperseded) as stale:
        service.confirm(user, old.op_id)
    assert isinstance(stale.value, NothingPending)
    with pytest.raises(ConfirmationSuperseded):
        service.cancel(user, old.op_id)
    assert service.latest_pending(user) == new and service.pending_operation(user, new.op_id) == new
    assert balances(service, user) == {"checking": CHECKING, "savings": SAVINGS}


def test_a_refused_request_supersedes_nothing_and_other_customers_are_untouched(
        service: BankingService, user: str) -> None:
    other = "d8" * 32
    service.connect_bank(other, "GTBank")
    mine, theirs = transfer(service, user), transfer(service, other)
    with pytest.raises(InsufficientFunds):
        service.prepare_transfer(user, 10**9, "checking", account_number=PAYEE, bank="uba")
    assert service.operation_status(user, mine.op_id) == "pending"
    assert service.operation_status(other, theirs.op_id) == "pending"


def test_holds_made_in_the_same_instant_leave_exactly_the_last_open(service: BankingService, user: str) -> None:
    held = [transfer(service, user, 1_000 + n) for n in range(5)]  # the test clock does not move
    assert [service.operation_status(user, op.op_id) for op in held] == ["superseded"] * 4 + ["pending"]
    assert service.latest_pending(user) == held[-1]


# --------------------------------------------------------------------- status, pending, receipt


def test_operation_status_through_the_lifecycle(service: BankingService, db: Any, user: str, clock: Clock) -> None:
    op = transfer(service, user)
    assert service.operation_status(user, op.op_id) == "pending"
    assert service.pending_operation(user, op.op_id) == op
    assert service.executed_receipt(user, op.op_id) is None
    receipt = service.confirm(user, op.op_id)
    assert service.operation_status(user, op.op_id) == "executed"
    assert service.pending_operation(user, op.op_id) is None
    assert service.executed_receipt(user, op.op_id) == receipt

    cancelled = transfer(service, user)
    service.cancel(user, cancelled.op_id)
    refused = transfer(service, user, CHECKING - 1_000_000)
    db["profiles"].update_one({"_id": user}, {"$inc": {"link.accounts.checking.balance_kobo": -1}})
    with pytest.raises(InsufficientFunds):
        service.confirm(user, refused.op_id)
    assert [service.operation_status(user, o.op_id) for o in (cancelled, refused)] == ["cancelled", "refused"]


@pytest.mark.parametrize("op_id", [None, "", "0" * 32, {"$ne": None}, ["x"], 42])
def test_unknown_or_malformed_ids_have_no_status(service: BankingService, user: str, op_id: Any) -> None:
    assert service.operation_status(user, op_id) is None
    assert service.pending_operation(user, op_id) is None
    assert service.executed_receipt(user, op_id) is None


def test_another_customers_operation_is_unknown(service: BankingService, user: str) -> None:
    other = "d7" * 32
    service.connect_bank(other, "GTBank")
    op = transfer(service, user)
    receipt = service.confirm(user, op.op_id)
    assert receipt is not None
    assert service.operation_status(other, op.op_id) is None
    assert service.pending_operation(other, transfer(service, user).op_id) is None
    assert service.executed_receipt(other, op.op_id) is None


def test_receipt_of_a_scheduled_change_carries_when_it_takes_effect(service: BankingService, user: str) -> None:
    op = service.prepare_set_limit(user, 100_000_000)
    receipt = service.confirm(user, op.op_id)
    assert receipt.effective_at == START + timedelta(hours=24)
    assert service.executed_receipt(user, op.op_id) == receipt


# --------------------------------------------------------------------- cancel


@pytest.mark.parametrize("reason", ["customer", "closed"])
def test_cancel_records_its_reason(service: BankingService, db: Any, user: str, reason: str) -> None:
    op = transfer(service, user)
    service.cancel(user, op.op_id, reason=reason)
    assert db["operations"].find_one({"_id": op.op_id})["reason"] == reason
    assert trail(db, op.op_id)[-1] == ("transfer", "cancelled", reason)
    assert service.operation_status(user, op.op_id) == "cancelled"


def test_cancel_refuses_an_unknown_reason(service: BankingService, user: str) -> None:
    op = transfer(service, user)
    with pytest.raises(ValueError, match="customer, closed"):
        service.cancel(user, op.op_id, reason="because")
    assert service.operation_status(user, op.op_id) == "pending"


def test_cancelling_an_expired_confirmation_says_so(service: BankingService, user: str, clock: Clock) -> None:
    op = transfer(service, user)
    clock.advance(minutes=5)
    with pytest.raises(ConfirmationExpired):
        service.cancel(user, op.op_id)
    assert service.operation_status(user, op.op_id) == "expired"


def test_cancelling_a_lapsed_claim_voids_it_so_a_stalled_worker_cannot_run_it(
        bank: BankingService, interposed: InterposedDatabase, db: Any, customer: str, clock: Clock) -> None:
    op = transfer(bank, customer)
    pause = Pause(interposed, "profiles", "find_one_and_update")
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(_attempt(bank, customer, op.op_id)))
    worker.start()
    assert pause.reached.wait(10)
    clock.advance(minutes=3)  # lapsed, not expired
    bank.cancel(customer, op.op_id, reason="customer")
    pause.release()
    worker.join(10)
    assert isinstance(outcome[0], ConfirmationExpired)
    assert bank.operation_status(customer, op.op_id) == "cancelled"
    assert balances(bank, customer) == {"checking": CHECKING, "savings": SAVINGS}


def _attempt(service: BankingService, user: str, op_id: str) -> Any:
    try:
        return service.confirm(user, op_id)
    except Exception as error:  # noqa: BLE001 - the caller inspects whatever it raised
        return error


def test_every_status_is_one_the_module_names(service: BankingService, user: str) -> None:
    from banking.confirmations import STATUSES

    # at_provider and failed: payments made at Mono (test_mono_payments.py)
    assert STATUSES == ("pending", "executing", "at_provider", "executed", "expired", "cancelled", "superseded",
                        "refused", "failed")
    op = transfer(service, user)
    assert service.operation_status(user, op.op_id) in STATUSES
    assert isinstance(service.confirm(user, op.op_id), Receipt)
