"""The customer document (banking/customers.py): freeze, limit and today's spending belong to the
customer and survive unlinking; unfreezing and raising the limit wait out the cooling-off; money
racing on one document keeps the books straight."""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from banking.config import Settings
from banking.customers import Customers
from banking.errors import (
    AccountFrozen,
    ChangeAlreadyScheduled,
    LimitExceeded,
    NotConnected,
    NotFrozen,
)
from banking.models import Receipt, ScheduledChange
from banking.sealing import Sealer
from banking.service import BankingService
from checks.clock import START, Clock

CHECKING, SAVINGS = 4_532_050, 12_545_000
PAYEE = "0123456789"
DAY = timedelta(hours=24)
LIMIT = 50_000_000


def confirm_freeze(service: BankingService, user: str) -> Receipt:
    return service.confirm(user, service.prepare_freeze(user).op_id)


def confirm_unfreeze(service: BankingService, user: str) -> Receipt:
    return service.confirm(user, service.prepare_unfreeze(user).op_id)


def confirm_limit(service: BankingService, user: str, kobo: int) -> Receipt:
    return service.confirm(user, service.prepare_set_limit(user, kobo).op_id)


def unlink(service: BankingService, user: str, by_confirmation: bool) -> None:
    if by_confirmation:
        service.confirm(user, service.prepare_disconnect(user).op_id)
    else:
        service.disconnect_bank(user)


def trail(db: Any, user: str, *actions: str) -> list[tuple[str, str, str | None]]:
    return [(a["action"], a["outcome"], a["reason"]) for a in db["audit"].find({"user": user}, sort=[("_id", 1)])
            if a["action"] in actions]


# --------------------------------------------------------------------- controls outlive the bank link


@pytest.mark.parametrize("by_confirmation", [False, True])
@pytest.mark.parametrize("relink_to", ["GTBank", "Zenith"])
def test_a_freeze_survives_unlinking_and_linking_again(service: BankingService, db: Any, user: str, clock: Clock,
                                                       by_confirmation: bool, relink_to: str) -> None:
    confirm_freeze(service, user)
    clock.advance(minutes=1)
    unlink(service, user, by_confirmation)
    assert not service.is_connected(user) and service.find_profile(user) is None
    assert db["profiles"].count_documents({"_id": user}) == 1  # the customer stays; the link went
    assert "link" not in db["profiles"].find_one({"_id": user})
    with pytest.raises(NotConnected):
        service.profile(user)
    profile = service.connect_bank(user, relink_to)
    assert (profile.frozen, profile.frozen_at) == (True, START)
    assert profile.bank == ("GTBank" if relink_to == "GTBank" else "Zenith Bank")
    with pytest.raises(AccountFrozen):
        service.prepare_transfer(user, 1_000, "checking", account_number=PAYEE, bank="uba")


@pytest.mark.parametrize("relink_to", ["GTBank", "Access Bank"])
def test_the_limit_and_todays_spending_survive_unlinking_and_linking_again(
        service: BankingService, db: Any, user: str, clock: Clock, relink_to: str) -> None:
    confirm_limit(service, user, 2_000_000)  # ₦20,000, lower: at once
    service.confirm(user, service.prepare_transfer(user, 1_500_000, "checking", account_number=PAYEE,
                                                   bank="uba").op_id)
    service.disconnect_bank(user)
    clock.advance(hours=1)
    profile = service.connect_bank(user, relink_to)
    assert profile.daily_limit_kobo == 2_000_000
    status = service.get_limit(user)
    assert (status.limit_kobo, status.spent_today_kobo, status.remaining_kobo) == (2_000_000, 1_500_000, 500_000)
    with pytest.raises(LimitExceeded) as over:
        service.prepare_bill(user, 600_000, "checking", "DStv", "7012345678")
    assert over.value.remaining_kobo == 500_000
    assert [a.balance_kobo for a in profile.accounts] == [CHECKING, SAVINGS]  # the new link's own accounts
    assert service.search_transactions(user, "today", direction="debit", category="transfers").total_count == 0


def test_a_new_link_starts_its_own_ledger_but_remembers_what_was_applied(
        service: BankingService, db: Any, user: str) -> None:
    op = service.prepare_transfer(user, 100_000, "checking", account_number=PAYEE, bank="uba")
    receipt = service.confirm(user, op.op_id)
    service.disconnect_bank(user)
    service.connect_bank(user, "Zenith")
    assert db["profiles"].find_one({"_id": user})["link"]["ledger"] == {}
    assert op.op_id in db["profiles"].find_one({"_id": user})["applied_ops"]
    db["operations"].update_one({"_id": op.op_id}, {"$set": {"status": "pending"}})  # a YES replayed from before
    again = service.confirm(user, op.op_id)
    assert again.reference == receipt.reference and service.balances(user, "checking")[0].balance_kobo == CHECKING


def test_scheduled_changes_survive_unlinking(service: BankingService, user: str, clock: Clock) -> None:
    confirm_freeze(service, user)
    confirm_unfreeze(service, user)
    confirm_limit(service, user, 60_000_000)
    service.disconnect_bank(user)
    assert [c.kind for c in service.scheduled_changes(user)] == ["unfreeze", "raise_limit"]
    service.connect_bank(user, "Zenith")
    profile = service.profile(user)
    assert profile.frozen and profile.unfreezes_at == START + DAY
    assert (profile.scheduled_limit_kobo, profile.limit_changes_at) == (60_000_000, START + DAY)
    clock.advance(hours=24)
    profile = service.profile(user)
    assert (profile.frozen, profile.daily_limit_kobo, profile.unfreezes_at) == (False, 60_000_000, None)


def test_connected_means_a_link_is_present(service: BankingService, user: str) -> None:
    assert service.is_connected(user)
    service.disconnect_bank(user)
    assert not service.is_connected(user)
    with pytest.raises(NotConnected):
        service.disconnect_bank(user)
    for read in (service.balances, service.get_limit, service.prepare_freeze, service.prepare_disconnect):
        with pytest.raises(NotConnected):
            read(user)


# --------------------------------------------------------------------- cooling-off: unfreeze


def test_an_unfreeze_is_scheduled_and_takes_effect_only_after_the_cooling_off(
        service: BankingService, db: Any, user: str, clock: Clock) -> None:
    confirm_freeze(service, user)
    held = service.prepare_unfreeze(user)
    assert held.cooling_off == DAY
    receipt = service.confirm(user, held.op_id)
    assert (receipt.kind, receipt.executed_at, receipt.effective_at) == ("unfreeze", START, START + DAY)
    assert service.scheduled_changes(user) == [ScheduledChange(kind="unfreeze", effective_at=START + DAY,
                                                               new_limit_kobo=None)]
    clock.advance(hours=23, minutes=59, seconds=59)
    profile = service.profile(user)
    assert (profile.frozen, profile.unfreezes_at) == (True, START + DAY)
    with pytest.raises(AccountFrozen):
        service.prepare_transfer(user, 1_000, "checking", to_account_type="savings")
    clock.advance(seconds=1)
    profile = service.profile(user)
    assert (profile.frozen, profile.frozen_at, profile.unfreezes_at) == (False, None, None)
    assert service.scheduled_changes(user) == []
    service.confirm(user, service.prepare_transfer(user, 1_000, "checking", to_account_type="savings").op_id)
    assert trail(db, user, "unfreeze") == [("unfreeze", "requested", None), ("unfreeze", "confirmed", None),
                                           ("unfreeze", "scheduled", None), ("unfreeze", "applied", None)]


@pytest.mark.parametrize(("due_in", "moves"), [(timedelta(seconds=-1), True), (timedelta(hours=1), False)])
def test_the_money_movement_honours_a_due_unfreeze_and_never_an_undue_one(
        service: BankingService, db: Any, user: str, due_in: timedelta, moves: bool) -> None:
    op = service.prepare_transfer(user, 1_000, "checking", account_number=PAYEE, bank="uba")
    # frozen with an unfreeze scheduled, by another device, and nothing has read the document since
    db["profiles"].update_one({"_id": user}, {"$set": {
        "frozen": True, "frozen_at": START, "scheduled.unfreeze": {"op_id": "f" * 32, "effective_at": START + due_in}}})
    if moves:
        assert service.confirm(user, op.op_id).new_balance_kobo == CHECKING - 1_000
    else:
        with pytest.raises(AccountFrozen):
            service.confirm(user, op.op_id)
        assert service.balances(user, "checking")[0].balance_kobo == CHECKING


def test_freezing_again_cancels_a_scheduled_unfreeze(service: BankingService, db: Any, user: str,
                                                     clock: Clock) -> None:
    confirm_freeze(service, user)
    with pytest.raises(AccountFrozen):  # already frozen, nothing scheduled: nothing to do
        service.prepare_freeze(user)
    confirm_unfreeze(service, user)
    clock.advance(hours=2)
    receipt = confirm_freeze(service, user)  # e.g. the customer did not ask for that unfreeze
    assert receipt.effective_at is None
    profile = service.profile(user)
    assert (profile.frozen, profile.frozen_at, profile.unfreezes_at) == (True, START, None)
    clock.advance(days=2)
    assert service.profile(user).frozen
    assert ("unfreeze", "schedule_cancelled", "frozen_again") in trail(db, user, "unfreeze")


def test_a_second_unfreeze_while_one_is_scheduled_is_refused_not_replaced(
        service: BankingService, db: Any, user: str, clock: Clock) -> None:
    confirm_freeze(service, user)
    confirm_unfreeze(service, user)
    clock.advance(hours=3)
    with pytest.raises(ChangeAlreadyScheduled) as refused:
        service.prepare_unfreeze(user)
    assert refused.value.change == ScheduledChange(kind="unfreeze", effective_at=START + DAY, new_limit_kobo=None)
    assert trail(db, user, "unfreeze")[-1] == ("unfreeze", "refused", "change_already_scheduled")
    assert service.profile(user).unfreezes_at == START + DAY  # the first one stands, unchanged


@pytest.mark.parametrize("kind", ["unfreeze", "raise"])
def test_a_scheduled_change_run_again_after_a_crash_is_not_scheduled_twice(
        service: BankingService, db: Any, user: str, kind: str) -> None:
    if kind == "unfreeze":
        confirm_freeze(service, user)
        op = service.prepare_unfreeze(user)
    else:
        op = service.prepare_set_limit(user, 60_000_000)
    first = service.confirm(user, op.op_id)
    # a worker died after the change was scheduled, before recording it; the op is claimable again
    db["operations"].update_one({"_id": op.op_id}, {"$set": {"status": "pending", "result": None}})
    again = service.confirm(user, op.op_id)
    assert (again.effective_at, again.reference) == (first.effective_at, first.reference)
    assert [change.effective_at for change in service.scheduled_changes(user)] == [START + DAY]


def test_unfreezing_what_is_not_frozen_is_refused(service: BankingService, user: str) -> None:
    with pytest.raises(NotFrozen):
        service.prepare_unfreeze(user)


# --------------------------------------------------------------------- cooling-off: the daily limit


def test_a_raise_is_scheduled_and_takes_effect_only_after_the_cooling_off(
        service: BankingService, db: Any, user: str, clock: Clock) -> None:
    confirm_limit(service, user, 1_000_000)  # ₦10,000, lower: at once
    held = service.prepare_set_limit(user, 3_000_000)
    assert held.cooling_off == DAY
    receipt = service.confirm(user, held.op_id)
    assert receipt.effective_at == START + DAY
    status = service.get_limit(user)
    assert (status.limit_kobo, status.scheduled_limit_kobo, status.limit_changes_at) == (
        1_000_000, 3_000_000, START + DAY)
    profile = service.profile(user)
    assert (profile.daily_limit_kobo, profile.scheduled_limit_kobo, profile.limit_changes_at) == (
        1_000_000, 3_000_000, START + DAY)
    clock.advance(hours=23)
    with pytest.raises(LimitExceeded):
        service.prepare_transfer(user, 2_000_000, "checking", account_number=PAYEE, bank="uba")
    clock.advance(hours=1)
    status = service.get_limit(user)
    assert (status.limit_kobo, status.scheduled_limit_kobo, status.limit_changes_at) == (3_000_000, None, None)
    service.confirm(user, service.prepare_transfer(user, 2_000_000, "checking", account_number=PAYEE,
                                                   bank="uba").op_id)
    assert trail(db, user, "set_limit")[-4:] == [
        ("set_limit", "requested", None), ("set_limit", "confirmed", None), ("set_limit", "scheduled", None),
        ("set_limit", "applied", None)]


@pytest.mark.parametrize(("due_in", "moves"), [(timedelta(0), True), (timedelta(minutes=1), False)])
def test_the_money_movement_honours_a_due_raise_and_never_an_undue_one(
        service: BankingService, db: Any, user: str, due_in: timedelta, moves: bool) -> None:
    op = service.prepare_transfer(user, 1_000_000, "checking", account_number=PAYEE, bank="uba")
    db["profiles"].update_one({"_id": user}, {"$set": {"daily_limit_kobo": 500_000, "scheduled.raise_limit": {
        "op_id": "e" * 32, "effective_at": START + due_in, "new_limit_kobo": 2_000_000}}})
    if moves:
        assert service.confirm(user, op.op_id).amount_kobo == 1_000_000
        assert service.get_limit(user).remaining_kobo == 1_000_000
    else:
        with pytest.raises(LimitExceeded):
            service.confirm(user, op.op_id)


def test_lowering_the_limit_acts_at_once_and_cancels_a_scheduled_raise(
        service: BankingService, db: Any, user: str, clock: Clock) -> None:
    confirm_limit(service, user, 100_000_000)
    lower = service.prepare_set_limit(user, 30_000_000)
    assert lower.cooling_off is None
    assert service.confirm(user, lower.op_id).effective_at is None
    status = service.get_limit(user)
    assert (status.limit_kobo, status.scheduled_limit_kobo) == (30_000_000, None)
    clock.advance(days=2)
    assert service.get_limit(user).limit_kobo == 30_000_000
    assert ("set_limit", "schedule_cancelled", "limit_lowered") in trail(db, user, "set_limit")


def test_a_second_raise_while_one_is_scheduled_is_refused_not_replaced(service: BankingService, user: str) -> None:
    confirm_limit(service, user, 100_000_000)
    with pytest.raises(ChangeAlreadyScheduled) as refused:
        service.prepare_set_limit(user, 80_000_000)
    assert refused.value.change == ScheduledChange(kind="raise_limit", effective_at=START + DAY,
                                                   new_limit_kobo=100_000_000)
    assert service.get_limit(user).scheduled_limit_kobo == 100_000_000


def test_a_raise_that_has_become_a_cut_by_the_yes_applies_at_once(service: BankingService, db: Any,
                                                                  user: str) -> None:
    op = service.prepare_set_limit(user, 60_000_000)  # a raise when asked...
    db["profiles"].update_one({"_id": user}, {"$set": {"daily_limit_kobo": 70_000_000}})
    assert service.confirm(user, op.op_id).effective_at is None  # ...no raise by the time of the YES
    assert service.get_limit(user).limit_kobo == 60_000_000


# --------------------------------------------------------------------- cancelling scheduled changes


def test_the_customer_can_cancel_scheduled_changes_meanwhile(service: BankingService, db: Any, user: str,
                                                             clock: Clock) -> None:
    confirm_freeze(service, user)
    confirm_unfreeze(service, user)
    clock.advance(hours=1)
    confirm_limit(service, user, 100_000_000)
    cancelled = service.cancel_scheduled_changes(user)
    assert cancelled == [ScheduledChange("unfreeze", START + DAY, None),
                         ScheduledChange("raise_limit", START + timedelta(hours=25), 100_000_000)]
    assert service.scheduled_changes(user) == [] and service.cancel_scheduled_changes(user) == []
    clock.advance(days=2)
    profile = service.profile(user)
    assert (profile.frozen, profile.daily_limit_kobo) == (True, LIMIT)
    assert ("unfreeze", "schedule_cancelled", "customer") in trail(db, user, "unfreeze")
    assert ("set_limit", "schedule_cancelled", "customer") in trail(db, user, "set_limit")


def test_a_change_applied_before_the_cancel_is_not_reported_cancelled(service: BankingService, user: str,
                                                                      clock: Clock) -> None:
    confirm_limit(service, user, 100_000_000)
    clock.advance(hours=24)
    assert service.cancel_scheduled_changes(user) == []
    assert service.get_limit(user).limit_kobo == 100_000_000


def test_a_stranger_has_no_scheduled_changes(service: BankingService) -> None:
    assert service.scheduled_changes("f1" * 32) == [] and service.cancel_scheduled_changes("f1" * 32) == []


# --------------------------------------------------------------------- the setting


def test_the_cooling_off_comes_from_settings(make_service: Callable[..., BankingService], user: str) -> None:
    service = make_service(Settings(security_cooling_off_hours=2))
    held = service.prepare_set_limit(user, 60_000_000)
    assert held.cooling_off == timedelta(hours=2)
    assert service.confirm(user, held.op_id).effective_at == START + timedelta(hours=2)


# --------------------------------------------------------------------- one document, many movements at once


@pytest.fixture
def fast_switching() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def test_two_hundred_movements_racing_on_one_customer_document_keep_the_books_straight(
        service: BankingService, db: Any, user: str, clock: Clock, fast_switching: None) -> None:
    """The conditional update itself, under 200 concurrent movements of one customer (the state machine
    lets a customer have one confirmation open; this is what the customer document must survive anyway)."""
    db["profiles"].update_one({"_id": user}, {"$set": {"daily_limit_kobo": 500_000_000}})
    audit: list[tuple[Any, ...]] = []
    customers = Customers(db, Sealer(service._keyring), Settings(), clock, lambda *a, **k: audit.append(a))
    link_id = db["profiles"].find_one({"_id": user})["link"]["id"]

    def movement(index: int) -> dict[str, Any]:
        amount = 10_000 + 3_333 * index
        if index % 4 == 0:
            source, params, label = "savings", {"to_account": "checking"}, "Checking"
        elif index % 4 == 1:
            source, params, label = "checking", {"network": "MTN", "phone": "08031234567"}, "MTN 0803****567"
        else:
            source, label = "checking", "ADA EZE, UBA ******6789"
            params = {"account_number": PAYEE, "bank": "UBA", "bank_code": "033", "holder_name": "ADA EZE"}
        kind = "airtime" if index % 4 == 1 else "transfer"
        return {"_id": uuid.uuid4().hex, "user": user, "kind": kind, "amount_kobo": amount, "source": source,
                "destination_label": label, "params": params, "link_id": link_id}

    movements = [movement(index) for index in range(200)]
    barrier = threading.Barrier(len(movements))
    outcomes: dict[str, Any] = {}

    def move(operation: dict[str, Any]) -> None:
        barrier.wait()
        try:
            outcomes[operation["_id"]] = customers.move_money(operation, START)
        except Exception as error:  # noqa: BLE001 - the test inspects whatever it raised
            outcomes[operation["_id"]] = error

    threads = [threading.Thread(target=move, args=(operation,)) for operation in movements]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    executed = [o for o in outcomes.values() if isinstance(o, Receipt)]
    refused = [o for o in outcomes.values() if not isinstance(o, Receipt)]
    assert len(outcomes) == 200 and executed and refused  # ₦683,267 asked for; ₦170,770.50 held
    assert {type(o).__name__ for o in refused} == {"InsufficientFunds"}
    document = db["profiles"].find_one({"_id": user})
    ledger = list(document["link"]["ledger"].values())
    assert sorted(e["op_id"] for e in ledger) == sorted(r.op_id for r in executed)
    assert sorted(document["applied_ops"]) == sorted(r.op_id for r in executed)
    after = {a.type: a.balance_kobo for a in service.balances(user)}
    outflow = sum(e["amount_kobo"] for e in ledger if e["to_account"] is None)
    to_checking = sum(e["amount_kobo"] for e in ledger if e["to_account"] == "checking")
    assert after["savings"] == SAVINGS - to_checking
    assert CHECKING + SAVINGS - (after["checking"] + after["savings"]) == outflow
    assert after["checking"] >= 0 and after["savings"] >= 0
    assert document["spent"]["2025-03-15"] == outflow
