"""Prepare, confirm, cancel: checks, refusals, expiry, freeze, limits, idempotency and audit."""

from __future__ import annotations

import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from banking.config import Settings
from banking.crypto import is_sealed
from banking.errors import (
    AccountFrozen,
    AlreadyExecuted,
    BankingError,
    ConfirmationExpired,
    InsufficientFunds,
    InvalidAmount,
    InvalidDetails,
    LimitExceeded,
    NameEnquiryFailed,
    NotConnected,
    NotFrozen,
    NothingPending,
    ProviderUnavailable,
    UnknownAccount,
)
from banking.models import Receipt
from banking.service import BankingService
from checks.clock import START, Clock

CHECKING, SAVINGS = 4_532_050, 12_545_000
PAYEE = "0123456789"


def balances(service: BankingService, user: str) -> dict[str, int]:
    return {account.type: account.balance_kobo for account in service.balances(user)}


def statuses(db: Any, user: str) -> Counter[str]:
    return Counter(op["status"] for op in db["operations"].find({"user": user}))


def audit_trail(db: Any, user: str) -> list[tuple[str, str, str | None]]:
    return [(a["action"], a["outcome"], a["reason"]) for a in db["audit"].find({"user": user}, sort=[("_id", 1)])]


def ledger(db: Any, user: str) -> list[dict[str, Any]]:
    """The link's executed movements, keyed by op id in the customer document."""
    return list(db["profiles"].find_one({"_id": user})["link"]["ledger"].values())


def meanwhile(db: Any, user: str, **changes: Any) -> None:
    """What another device's confirmed operation does to the customer document between a prepare and its YES."""
    db["profiles"].update_one({"_id": user}, changes)


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Make threads interleave as often as possible so races would show."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


# --------------------------------------------------------------------- preparing


def test_prepare_external_transfer_does_name_enquiry_and_holds(service: BankingService, db: Any, user: str) -> None:
    op = service.prepare_transfer(user, 1_000_000, "checking", account_number="012 345 6789", bank="access")
    holder = service.name_enquiry(PAYEE, "Access Bank")
    assert (op.kind, op.amount_kobo, op.source, op.holder_name) == ("transfer", 1_000_000, "checking", holder)
    assert op.destination_label == f"{holder}, Access Bank ******6789"
    assert op.expires_at == START + timedelta(seconds=300)
    assert re.fullmatch(r"[0-9a-f]{32}", op.op_id)
    stored = db["operations"].find_one({"_id": op.op_id})
    assert (stored["status"], stored["user"]) == ("pending", user)
    assert is_sealed(stored["params"]["account_number"]) and PAYEE not in repr(stored)  # sealed at rest
    assert balances(service, user) == {"checking": CHECKING, "savings": SAVINGS}  # nothing moved yet
    assert service.latest_pending(user) == op


def test_prepare_own_account_transfer(service: BankingService, user: str) -> None:
    op = service.prepare_transfer(user, 5_000_000, "savings", to_account_type="current")
    assert (op.source, op.destination_label, op.holder_name) == ("savings", "Checking", None)


def test_prepare_bill_and_airtime(service: BankingService, user: str) -> None:
    bill = service.prepare_bill(user, 2_500_000, "checking", "ikedc", "4501-2345-678")
    name = service.validate_biller_ref("Ikeja Electric", "45012345678")
    assert (bill.kind, bill.holder_name, bill.destination_label) == (
        "bill", name, f"Ikeja Electric ******5678 ({name})")
    airtime = service.prepare_airtime(user, 100_000, "checking", "airtel", "+234 803 123 4567")
    assert (airtime.kind, airtime.destination_label) == ("airtime", "Airtel 0803****567")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s, u: s.prepare_transfer(u, 0, "checking", to_account_type="savings"), InvalidAmount),
        (lambda s, u: s.prepare_transfer(u, -100, "checking", to_account_type="savings"), InvalidAmount),
        (lambda s, u: s.prepare_transfer(u, 10.5, "checking", to_account_type="savings"), InvalidAmount),
        (lambda s, u: s.prepare_transfer(u, True, "checking", to_account_type="savings"), InvalidAmount),
        (lambda s, u: s.prepare_transfer(u, 1_000, "checking", to_account_type="checking"), InvalidAmount),
        (lambda s, u: s.prepare_transfer(u, 1_000, "current", to_account_type="checking"), InvalidAmount),
        (lambda s, u: s.prepare_transfer(u, 1_000, "crypto", to_account_type="savings"), UnknownAccount),
        (lambda s, u: s.prepare_transfer(u, 1_000, "checking", to_account_type="pension"), UnknownAccount),
        (lambda s, u: s.prepare_transfer(u, CHECKING + 1, "checking", to_account_type="savings"), InsufficientFunds),
        (lambda s, u: s.prepare_transfer(u, 1_000, "checking"), InvalidDetails),
        (lambda s, u: s.prepare_transfer(u, 1_000, "checking", account_number=PAYEE), InvalidDetails),
        (lambda s, u: s.prepare_transfer(u, 1_000, "checking", account_number="12345", bank="uba"), InvalidDetails),
        (lambda s, u: s.prepare_transfer(u, 1_000, "checking", account_number=PAYEE, bank="Atlantis"), InvalidDetails),
        (lambda s, u: s.prepare_transfer(u, 1_000, "checking", to_account_type="savings", account_number=PAYEE,
                                         bank="uba"), InvalidDetails),
        (lambda s, u: s.prepare_transfer(u, 1_000, "checking", account_number="0001234567", bank="uba"),
         NameEnquiryFailed),
        (lambda s, u: s.prepare_transfer(u, 1_000, "checking", account_number="9991234567", bank="uba"),
         ProviderUnavailable),
        (lambda s, u: s.prepare_bill(u, 1_000, "checking", "Hogwarts Power", "45012345678"), InvalidDetails),
        (lambda s, u: s.prepare_bill(u, 1_000, "checking", "DStv", "123"), InvalidDetails),
        (lambda s, u: s.prepare_bill(u, CHECKING + 1, "checking", "DStv", "7012345678"), InsufficientFunds),
        (lambda s, u: s.prepare_airtime(u, 1_000, "checking", "MTN", "08031234567"), InvalidAmount),  # below ₦50
        (lambda s, u: s.prepare_airtime(u, 5_000_100, "savings", "MTN", "08031234567"), InvalidAmount),
        (lambda s, u: s.prepare_airtime(u, 10_000, "checking", "Vodafone", "08031234567"), InvalidDetails),
        (lambda s, u: s.prepare_airtime(u, 10_000, "checking", "MTN", "0803123"), InvalidDetails),
        (lambda s, u: s.prepare_set_limit(u, 0), InvalidAmount),
        (lambda s, u: s.prepare_set_limit(u, 500_000_001), InvalidAmount),
        (lambda s, u: s.prepare_unfreeze(u), NotFrozen),
    ],
)
def test_prepare_refusals(service: BankingService, db: Any, user: str,
                          call: Callable[[BankingService, str], Any], error: type[BankingError]) -> None:
    with pytest.raises(error) as raised:
        call(service, user)
    assert type(raised.value) is error
    assert statuses(db, user) == Counter()
    assert audit_trail(db, user)[-1][1:] == ("refused", raised.value.code)


def test_insufficient_funds_and_limit_carry_numbers(make_service: Callable[..., BankingService], user: str) -> None:
    service = make_service(Settings(daily_transfer_limit_kobo=1_000_000))
    with pytest.raises(InsufficientFunds) as poor:
        service.prepare_transfer(user, CHECKING + 1, "checking", to_account_type="savings")
    assert poor.value.available_kobo == CHECKING and "₦45,320.50" in str(poor.value)
    service.connect_bank("d1" * 32, "GTBank")  # its profile gets the ₦10,000 limit
    with pytest.raises(LimitExceeded) as over:
        service.prepare_transfer("d1" * 32, 1_000_001, "checking", account_number=PAYEE, bank="uba")
    assert (over.value.remaining_kobo, over.value.limit_kobo) == (1_000_000, 1_000_000)
    assert "₦10,000" in str(over.value)


# --------------------------------------------------------------------- confirming


def test_confirm_external_transfer_moves_money_once(service: BankingService, db: Any, user: str) -> None:
    op = service.prepare_transfer(user, 1_000_000, "checking", account_number=PAYEE, bank="access")
    receipt = service.confirm(user, op.op_id)
    assert receipt == Receipt(op_id=op.op_id, reference=f"SBX-{op.op_id[:16].upper()}", kind="transfer",
                              amount_kobo=1_000_000, source="checking", destination_label=op.destination_label,
                              new_balance_kobo=CHECKING - 1_000_000, executed_at=START, source_label="Checking")
    assert balances(service, user) == {"checking": CHECKING - 1_000_000, "savings": SAVINGS}
    assert db["operations"].find_one({"_id": op.op_id})["status"] == "executed"
    profile = db["profiles"].find_one({"_id": user})
    assert [e["reference"] for e in ledger(db, user)] == [receipt.reference]
    assert profile["applied_ops"] == [op.op_id]
    assert profile["spent"] == {"2025-03-15": 1_000_000}
    assert audit_trail(db, user)[-3:] == [("transfer", "requested", None), ("transfer", "confirmed", None),
                                          ("transfer", "executed", None)]


def test_confirm_own_account_transfer_keeps_the_total(service: BankingService, user: str) -> None:
    receipt = service.confirm(user, service.prepare_transfer(user, 2_000_000, "savings",
                                                             to_account_type="checking").op_id)
    assert receipt.new_balance_kobo == SAVINGS - 2_000_000
    assert balances(service, user) == {"checking": CHECKING + 2_000_000, "savings": SAVINGS - 2_000_000}
    assert service.get_limit(user).spent_today_kobo == 0


def test_confirming_twice_executes_once(service: BankingService, db: Any, user: str) -> None:
    op = service.prepare_bill(user, 1_900_000, "checking", "DStv", "7012345678")
    first = service.confirm(user, op.op_id)
    with pytest.raises(AlreadyExecuted) as again:
        service.confirm(user, op.op_id)
    assert again.value.receipt == first
    assert balances(service, user)["checking"] == CHECKING - 1_900_000
    assert len(ledger(db, user)) == 1


def test_confirm_someone_elses_or_unknown_op_is_nothing_pending(service: BankingService, user: str) -> None:
    service.connect_bank("d2" * 32, "GTBank")
    op = service.prepare_transfer(user, 1_000, "checking", to_account_type="savings")
    with pytest.raises(NothingPending):
        service.confirm("d2" * 32, op.op_id)
    with pytest.raises(NothingPending):
        service.confirm(user, "0" * 32)
    assert balances(service, "d2" * 32)["checking"] == CHECKING
    service.confirm(user, op.op_id)  # still confirmable by its owner


@pytest.mark.parametrize(
    ("call", "error"),
    [(lambda s, u: s.prepare_transfer(u, 1_000, ["checking", "savings"], to_account_type="savings"), UnknownAccount),
     (lambda s, u: s.prepare_transfer(u, 1_000, "checking", account_number=1234567890, bank="uba"), InvalidDetails),
     (lambda s, u: s.prepare_transfer(u, 1_000, "checking", account_number=PAYEE, bank=["uba"]), InvalidDetails),
     (lambda s, u: s.prepare_bill(u, 1_000, "checking", None, "7012345678"), InvalidDetails),
     (lambda s, u: s.prepare_bill(u, 1_000, "checking", "DStv", 7012345678), InvalidDetails),
     (lambda s, u: s.prepare_airtime(u, 10_000, "checking", {"mtn": 1}, "08031234567"), InvalidDetails),
     (lambda s, u: s.prepare_airtime(u, 10_000, "checking", "MTN", 8031234567), InvalidDetails),
     (lambda s, u: s.receipt(u, {"$gt": ""}), UnknownAccount)],
)
def test_slot_values_that_are_not_strings_are_refused_cleanly(
        service: BankingService, user: str, call: Callable[[BankingService, str], Any], error: type) -> None:
    with pytest.raises(error):
        call(service, user)


@pytest.mark.parametrize("op_id", [None, "", {"$ne": None}, ["x"], 42])
def test_op_ids_that_are_not_strings_never_reach_a_query(service: BankingService, user: str, op_id: Any) -> None:
    service.prepare_transfer(user, 1_000, "checking", to_account_type="savings")
    with pytest.raises(NothingPending):
        service.confirm(user, op_id)
    with pytest.raises(NothingPending):
        service.cancel(user, op_id)
    assert balances(service, user) == {"checking": CHECKING, "savings": SAVINGS}


def test_expired_confirmation(service: BankingService, db: Any, user: str, clock: Clock) -> None:
    op = service.prepare_transfer(user, 1_000_000, "checking", account_number=PAYEE, bank="uba")
    clock.advance(seconds=300)
    with pytest.raises(ConfirmationExpired):
        service.confirm(user, op.op_id)
    with pytest.raises(ConfirmationExpired):
        service.confirm(user, op.op_id)
    assert db["operations"].find_one({"_id": op.op_id})["status"] == "expired"
    assert balances(service, user)["checking"] == CHECKING
    assert [o for a, o, _ in audit_trail(db, user) if a == "transfer"] == ["requested", "expired"]
    assert service.latest_pending(user) is None


def test_confirm_just_before_expiry_works(service: BankingService, user: str, clock: Clock) -> None:
    op = service.prepare_transfer(user, 1_000_000, "checking", to_account_type="savings")
    clock.advance(seconds=299.9)
    assert service.confirm(user, op.op_id).amount_kobo == 1_000_000


def test_cancel(service: BankingService, db: Any, user: str) -> None:
    op = service.prepare_airtime(user, 50_000, "checking", "MTN", "08031234567")
    service.cancel(user, op.op_id)
    assert db["operations"].find_one({"_id": op.op_id})["status"] == "cancelled"
    with pytest.raises(NothingPending):
        service.confirm(user, op.op_id)
    with pytest.raises(NothingPending):
        service.cancel(user, op.op_id)
    with pytest.raises(NothingPending):
        service.cancel(user, "nope")
    assert balances(service, user)["checking"] == CHECKING
    assert audit_trail(db, user)[-2:] == [("airtime", "requested", None), ("airtime", "cancelled", "customer")]


def test_cancel_after_execution_is_already_executed(service: BankingService, user: str) -> None:
    op = service.prepare_airtime(user, 50_000, "checking", "MTN", "08031234567")
    receipt = service.confirm(user, op.op_id)
    with pytest.raises(AlreadyExecuted) as late:
        service.cancel(user, op.op_id)
    assert late.value.receipt == receipt


def test_funds_are_checked_again_at_execution(service: BankingService, db: Any, user: str) -> None:
    second = service.prepare_transfer(user, 4_000_000, "checking", account_number=PAYEE, bank="uba")
    meanwhile(db, user, **{"$inc": {"link.accounts.checking.balance_kobo": -4_000_000}})
    with pytest.raises(InsufficientFunds) as refused:
        service.confirm(user, second.op_id)
    assert refused.value.available_kobo == CHECKING - 4_000_000
    assert db["operations"].find_one({"_id": second.op_id})["status"] == "refused"
    assert audit_trail(db, user)[-1] == ("transfer", "refused", "insufficient_funds")
    with pytest.raises(NothingPending):
        service.confirm(user, second.op_id)


def test_an_op_reclaimed_after_a_crash_is_not_applied_twice(service: BankingService, db: Any, user: str) -> None:
    op = service.prepare_transfer(user, 1_000_000, "checking", account_number=PAYEE, bank="uba")
    first = service.confirm(user, op.op_id)
    # a worker died after moving the money but before recording the result; the op is claimable again
    db["operations"].update_one({"_id": op.op_id}, {"$set": {"status": "pending", "result": None}})
    again = service.confirm(user, op.op_id)
    assert (again.reference, again.amount_kobo) == (first.reference, first.amount_kobo)
    assert balances(service, user)["checking"] == CHECKING - 1_000_000
    assert len(ledger(db, user)) == 1
    assert service.get_limit(user).spent_today_kobo == 1_000_000


def test_an_op_still_executing_reports_already_executed(service: BankingService, db: Any, user: str) -> None:
    op = service.prepare_transfer(user, 1_000, "checking", to_account_type="savings")
    db["operations"].update_one({"_id": op.op_id}, {"$set": {"status": "executing"}})
    with pytest.raises(AlreadyExecuted) as running:
        service.confirm(user, op.op_id)
    assert running.value.receipt is None  # not applied yet, so there is no receipt to show
    assert balances(service, user)["checking"] == CHECKING


# --------------------------------------------------------------------- freeze


def test_a_freeze_supersedes_the_transfer_awaiting_a_yes(service: BankingService, db: Any, user: str) -> None:
    transfer = service.prepare_transfer(user, 1_000_000, "checking", account_number=PAYEE, bank="uba")
    freeze = service.prepare_freeze(user)
    assert (freeze.kind, freeze.amount_kobo, freeze.source, freeze.destination_label, freeze.cooling_off) == (
        "freeze", 0, None, "all your GTBank accounts", None)
    service.confirm(user, freeze.op_id)
    assert service.profile(user).frozen and service.profile(user).frozen_at == START
    with pytest.raises(NothingPending):
        service.confirm(user, transfer.op_id)
    assert balances(service, user) == {"checking": CHECKING, "savings": SAVINGS}


@pytest.mark.parametrize("own_accounts", [False, True])
def test_a_freeze_from_another_device_blocks_the_yes(service: BankingService, db: Any, user: str,
                                                     own_accounts: bool) -> None:
    op = (service.prepare_transfer(user, 1_000_000, "savings", to_account_type="checking") if own_accounts
          else service.prepare_transfer(user, 1_000_000, "checking", account_number=PAYEE, bank="uba"))
    meanwhile(db, user, **{"$set": {"frozen": True, "frozen_at": START}})
    with pytest.raises(AccountFrozen):
        service.confirm(user, op.op_id)
    assert db["operations"].find_one({"_id": op.op_id})["status"] == "refused"
    assert balances(service, user) == {"checking": CHECKING, "savings": SAVINGS}
    assert audit_trail(db, user)[-1] == ("transfer", "refused", "account_frozen")


def test_frozen_accounts_refuse_every_money_op_until_unfrozen(service: BankingService, user: str,
                                                              clock: Clock) -> None:
    service.confirm(user, service.prepare_freeze(user).op_id)
    for prepare in (lambda: service.prepare_transfer(user, 1_000, "checking", to_account_type="savings"),
                    lambda: service.prepare_transfer(user, 1_000, "checking", account_number=PAYEE, bank="uba"),
                    lambda: service.prepare_bill(user, 1_000, "checking", "DStv", "7012345678"),
                    lambda: service.prepare_airtime(user, 10_000, "checking", "MTN", "08031234567"),
                    lambda: service.prepare_freeze(user)):
        with pytest.raises(AccountFrozen):
            prepare()
    unfreeze = service.prepare_unfreeze(user)
    assert service.profile(user).frozen  # nothing changes before the YES
    service.confirm(user, unfreeze.op_id)
    assert service.profile(user).frozen  # nor before the cooling-off has passed
    clock.advance(hours=24)
    assert not service.profile(user).frozen
    receipt = service.confirm(user, service.prepare_transfer(user, 1_000, "checking", to_account_type="savings").op_id)
    assert receipt.new_balance_kobo == CHECKING - 1_000


# --------------------------------------------------------------------- limits


def test_daily_limit_spans_transfer_bill_and_airtime(make_service: Callable[..., BankingService], db: Any,
                                                     clock: Clock) -> None:
    service = make_service(Settings(daily_transfer_limit_kobo=5_000_000))  # ₦50,000
    user = "e1" * 32
    service.connect_bank(user, "GTBank")
    service.confirm(user, service.prepare_transfer(user, 3_000_000, "savings", to_account_type="checking").op_id)
    assert service.get_limit(user).remaining_kobo == 5_000_000  # moves between own accounts do not count
    service.confirm(user, service.prepare_transfer(user, 2_000_000, "checking", account_number=PAYEE,
                                                   bank="uba").op_id)
    service.confirm(user, service.prepare_bill(user, 1_900_000, "checking", "DStv", "7012345678").op_id)
    service.confirm(user, service.prepare_airtime(user, 1_000_000, "checking", "MTN", "08031234567").op_id)
    assert service.get_limit(user).remaining_kobo == 100_000
    with pytest.raises(LimitExceeded) as over:
        service.prepare_airtime(user, 100_100, "checking", "MTN", "08031234567")
    assert over.value.remaining_kobo == 100_000
    service.confirm(user, service.prepare_airtime(user, 100_000, "checking", "Glo", "08051234567").op_id)
    assert service.get_limit(user).remaining_kobo == 0
    clock.advance(hours=14, minutes=30)  # 01:00 on Sunday in Lagos
    assert service.get_limit(user).remaining_kobo == 5_000_000
    service.confirm(user, service.prepare_transfer(user, 5_000_000, "savings", account_number=PAYEE,
                                                   bank="uba").op_id)


def test_daily_limit_is_enforced_at_execution(make_service: Callable[..., BankingService], db: Any) -> None:
    service = make_service(Settings(daily_transfer_limit_kobo=5_000_000))
    user = "e2" * 32
    service.connect_bank(user, "GTBank")
    first = service.prepare_transfer(user, 3_000_000, "checking", account_number=PAYEE, bank="uba")
    service.confirm(user, first.op_id)
    second = service.prepare_bill(user, 2_000_000, "savings", "DStv", "7012345678")  # fits when prepared
    meanwhile(db, user, **{"$inc": {"spent.2025-03-15": 1_000_000}})  # another device's payment
    with pytest.raises(LimitExceeded) as over:
        service.confirm(user, second.op_id)
    assert over.value.remaining_kobo == 1_000_000
    assert balances(service, user) == {"checking": CHECKING - 3_000_000, "savings": SAVINGS}
    assert audit_trail(db, user)[-1] == ("bill", "refused", "limit_exceeded")


def test_a_lower_limit_takes_effect_on_confirm(service: BankingService, user: str) -> None:
    op = service.prepare_set_limit(user, 500_000)
    assert (op.kind, op.amount_kobo, op.destination_label, op.cooling_off) == (
        "set_limit", 500_000, "daily transfer limit", None)
    assert service.get_limit(user).limit_kobo == 50_000_000
    receipt = service.confirm(user, op.op_id)
    assert receipt.effective_at is None and service.get_limit(user).limit_kobo == 500_000
    with pytest.raises(LimitExceeded):
        service.prepare_transfer(user, 500_001, "checking", account_number=PAYEE, bank="uba")


def test_limit_lowered_after_prepare_refuses_at_execution(service: BankingService, db: Any, user: str) -> None:
    transfer = service.prepare_transfer(user, 1_000_000, "checking", account_number=PAYEE, bank="uba")
    meanwhile(db, user, **{"$set": {"daily_limit_kobo": 500_000}})
    with pytest.raises(LimitExceeded):
        service.confirm(user, transfer.op_id)


# --------------------------------------------------------------------- disconnect by confirmation


def test_prepare_disconnect_then_confirm(service: BankingService, db: Any, user: str) -> None:
    waiting = service.prepare_transfer(user, 1_000, "checking", to_account_type="savings")
    op = service.prepare_disconnect(user)
    assert (op.kind, op.destination_label) == ("disconnect", "GTBank")
    assert service.is_connected(user)
    receipt = service.confirm(user, op.op_id)
    assert (receipt.kind, receipt.amount_kobo, receipt.new_balance_kobo) == ("disconnect", 0, None)
    assert not service.is_connected(user)
    assert db["transactions"].count_documents({"user": user}) == 0
    assert db["operations"].find_one({"_id": waiting.op_id})["status"] == "superseded"
    with pytest.raises(NothingPending):
        service.confirm(user, waiting.op_id)
    with pytest.raises(NotConnected):
        service.balances(user)


@pytest.mark.parametrize("relinked", [False, True])
def test_an_op_left_over_after_disconnect_cannot_move_money(service: BankingService, db: Any, user: str,
                                                            relinked: bool) -> None:
    op = service.prepare_transfer(user, 1_000, "checking", to_account_type="savings")
    meanwhile(db, user, **{"$unset": {"link": ""}})  # unlinked from another device between prepare and YES
    if relinked:
        service.connect_bank(user, "Zenith")  # a new link is not the one the customer was shown
    with pytest.raises(NotConnected):
        service.confirm(user, op.op_id)
    assert db["operations"].find_one({"_id": op.op_id})["status"] == "refused"


# --------------------------------------------------------------------- concurrency


def test_twenty_threads_confirming_one_op_execute_it_once(service: BankingService, db: Any, user: str,
                                                          fast_switching: None) -> None:
    op = service.prepare_transfer(user, 1_234_500, "checking", account_number=PAYEE, bank="uba")
    barrier = threading.Barrier(20)
    outcomes: list[Any] = []

    def confirm() -> None:
        barrier.wait()
        try:
            outcomes.append(service.confirm(user, op.op_id))
        except BankingError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=confirm) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    receipts = [o for o in outcomes if isinstance(o, Receipt)]
    assert len(outcomes) == 20 and len(receipts) == 1
    assert all(isinstance(o, AlreadyExecuted) for o in outcomes if not isinstance(o, Receipt))
    assert balances(service, user)["checking"] == CHECKING - 1_234_500
    profile = db["profiles"].find_one({"_id": user})
    assert len(ledger(db, user)) == 1 and profile["applied_ops"] == [op.op_id]
    assert profile["spent"]["2025-03-15"] == 1_234_500
    assert [o for a, o, _ in audit_trail(db, user) if a == "transfer"] == ["requested", "confirmed", "executed"]


def test_two_hundred_yes_taps_from_twenty_customers_execute_each_op_once(
        make_service: Callable[..., BankingService], db: Any, fast_switching: None) -> None:
    """One open confirmation per customer; each tapped ten times at once (a movement racing on one
    customer document is tests/banking/test_customers.py's)."""
    service = make_service(Settings(daily_transfer_limit_kobo=500_000_000))
    users = [f"{index:02x}" * 32 for index in range(100, 120)]
    ops = {}
    for index, user in enumerate(users):
        service.connect_bank(user, "GTBank")
        amount = 10_000 + 3_333 * index
        ops[user] = (service.prepare_transfer(user, amount, "savings", to_account_type="checking") if index % 3 == 0
                     else service.prepare_airtime(user, amount, "checking", "MTN", "08031234567") if index % 3 == 1
                     else service.prepare_transfer(user, amount, "checking", account_number=PAYEE, bank="uba"))
    taps = [(user, op) for user, op in ops.items() for _ in range(10)]
    barrier = threading.Barrier(len(taps))
    outcomes: dict[str, list[Any]] = {user: [] for user in users}

    def confirm(user: str, op_id: str) -> None:
        barrier.wait()
        try:
            outcomes[user].append(service.confirm(user, op_id))
        except BankingError as error:
            outcomes[user].append(error)

    threads = [threading.Thread(target=confirm, args=(user, op.op_id)) for user, op in taps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for user, op in ops.items():
        receipts = [o for o in outcomes[user] if isinstance(o, Receipt)]
        assert len(outcomes[user]) == 10 and len(receipts) == 1, outcomes[user]
        assert all(isinstance(o, AlreadyExecuted) for o in outcomes[user] if not isinstance(o, Receipt))
        after = balances(service, user)
        moved = {"checking": CHECKING - after["checking"], "savings": SAVINGS - after["savings"]}
        if op.holder_name is None and op.kind == "transfer":
            assert moved == {"checking": -op.amount_kobo, "savings": op.amount_kobo}
        else:
            assert moved == {"checking": op.amount_kobo, "savings": 0}
        assert [e["op_id"] for e in ledger(db, user)] == [op.op_id]
        assert db["profiles"].find_one({"_id": user})["applied_ops"] == [op.op_id]
    assert statuses(db, users[0]) + statuses(db, users[1]) == Counter({"executed": 2})
    outcomes_by_kind = Counter(o for user in users for a, o, _ in audit_trail(db, user) if a != "connect")
    assert outcomes_by_kind == Counter({"requested": 20, "confirmed": 20, "executed": 20})


# --------------------------------------------------------------------- audit


def test_audit_holds_no_account_or_phone_numbers(service: BankingService, db: Any, user: str, clock: Clock) -> None:
    own = service.profile(user).accounts
    service.confirm(user, service.prepare_transfer(user, 10_000, "checking", account_number=PAYEE, bank="uba").op_id)
    service.confirm(user, service.prepare_airtime(user, 10_000, "checking", "MTN", "08031234567").op_id)
    service.confirm(user, service.prepare_bill(user, 10_000, "checking", "DStv", "7012345678").op_id)
    service.cancel(user, service.prepare_transfer(user, 10_000, "checking", to_account_type="savings").op_id)
    expiring = service.prepare_transfer(user, 10_000, "checking", to_account_type="savings")
    with pytest.raises(InsufficientFunds):
        service.prepare_transfer(user, 10**9, "checking", account_number=PAYEE, bank="uba")
    clock.advance(minutes=6)
    with pytest.raises(ConfirmationExpired):
        service.confirm(user, expiring.op_id)
    service.request_handoff(user, "my number is 08031234567")
    records = db["audit"].find({"user": user})
    assert {r["outcome"] for r in records} == {"requested", "confirmed", "executed", "refused", "expired",
                                               "cancelled"}
    secrets = {PAYEE, "08031234567", "8031234567", "7012345678", *(a.number for a in own)}
    for record in records:
        assert set(record) == {"_id", "user", "action", "outcome", "op_id", "reason", "amount_kobo", "at"}
        assert not any(secret in repr(record) for secret in secrets)
        for field in ("action", "outcome", "reason"):
            assert not re.search(r"\d{10}", str(record[field]))
