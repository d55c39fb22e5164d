"""Linking, balances, history, summaries, limits, receipts and handoffs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta, timezone
from typing import Any

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from banking.config import Settings
from banking.crypto import field_context, is_sealed
from banking.errors import (
    InvalidAmount,
    InvalidDetails,
    NameEnquiryFailed,
    NotConnected,
    ProviderUnavailable,
    StorageError,
    UnknownAccount,
)
from banking.sandbox import SandboxProvider
from banking.service import BankingService
from checks.clock import START, Clock

STRANGER = "f0" * 32


def test_connect_bank_opens_the_sandbox_accounts(service: BankingService, db: Any) -> None:
    profile = service.connect_bank("c1" * 32, "  Guaranty Trust ")
    assert (profile.bank, profile.bank_code, profile.frozen) == ("GTBank", "058", False)
    assert profile.connected_at == START
    assert profile.daily_limit_kobo == 50_000_000
    assert [(a.type, a.name, a.balance_kobo) for a in profile.accounts] == [
        ("checking", "Checking", 4_532_050), ("savings", "Savings", 12_545_000)]
    assert db["transactions"].count_documents({"user": "c1" * 32}) > 90
    assert service.is_connected("c1" * 32)
    assert db["profiles"].find_one({"_id": "c1" * 32})["spent"] == {}


def test_reconnect_is_idempotent(service: BankingService, db: Any, clock: Clock) -> None:
    first = service.connect_bank("c2" * 32, "gtb")
    count = db["transactions"].count_documents({})
    clock.advance(days=2)
    again = service.connect_bank("c2" * 32, "GTBank")
    other_bank = service.connect_bank("c2" * 32, "Zenith")
    assert again == first == other_bank  # one bank per customer: disconnect first to switch
    assert db["transactions"].count_documents({}) == count
    assert db["profiles"].count_documents({}) == 1


def test_connect_survives_history_left_by_an_interrupted_connect(service: BankingService, db: Any) -> None:
    user = "c3" * 32
    history = SandboxProvider().seed_transactions(user, "GTBank", START)
    db["transactions"].insert_many(history[:10])
    service.connect_bank(user, "GTBank")
    assert db["transactions"].count_documents({"user": user}) == len(history)


def test_connect_unknown_bank_is_invalid_details(service: BankingService) -> None:
    with pytest.raises(InvalidDetails):
        service.connect_bank("c4" * 32, "Bank of Atlantis")
    assert not service.is_connected("c4" * 32)


def test_disconnect_removes_profile_and_history(service: BankingService, db: Any, user: str) -> None:
    service.connect_bank("c5" * 32, "uba")
    service.disconnect_bank(user)
    assert not service.is_connected(user)
    assert db["transactions"].count_documents({"user": user}) == 0
    assert db["transactions"].count_documents({"user": "c5" * 32}) > 0  # other customers untouched
    with pytest.raises(NotConnected):
        service.disconnect_bank(user)
    assert service.find_profile(user) is None


@pytest.mark.parametrize(
    "call",
    [lambda s, u: s.profile(u), lambda s, u: s.balances(u), lambda s, u: s.search_transactions(u),
     lambda s, u: s.spending_summary(u), lambda s, u: s.get_limit(u), lambda s, u: s.receipt(u),
     lambda s, u: s.prepare_freeze(u), lambda s, u: s.prepare_set_limit(u, 100_000),
     lambda s, u: s.prepare_transfer(u, 1_000, "checking", to_account_type="savings")],
)
def test_reading_without_a_link_is_not_connected(service: BankingService,
                                                 call: Callable[[BankingService, str], Any]) -> None:
    with pytest.raises(NotConnected) as raised:
        call(service, STRANGER)
    assert raised.value.code == "not_connected"


def test_balances(service: BankingService, user: str) -> None:
    assert [(a.type, a.balance_kobo) for a in service.balances(user)] == [("checking", 4_532_050),
                                                                          ("savings", 12_545_000)]
    (current,) = service.balances(user, "current")
    assert current.type == "checking" and current.masked_number == "******" + current.number[-4:]
    assert [a.type for a in service.balances(user, "Savings Account")] == ["savings"]
    for wrong in ("domiciliary", "", "credit card"):
        with pytest.raises(UnknownAccount):
            service.balances(user, wrong)


def test_search_transactions_newest_first_with_totals(service: BankingService, user: str) -> None:
    page = service.search_transactions(user, "this month", limit=5)
    assert page.period_label == "this month"
    assert len(page.items) == 5 and page.total_count > 5
    times = [t.posted_at for t in page.items]
    assert times == sorted(times, reverse=True)
    full = service.search_transactions(user, "this month", limit=100)
    assert full.total_count == len(full.items) == page.total_count
    assert full.total_kobo == sum(t.amount_kobo for t in full.items) == page.total_kobo
    assert all(page.period.contains(t.posted_at) for t in full.items)
    assert all(t.posted_at.tzinfo == timezone.utc for t in full.items)


def test_search_filters(service: BankingService, user: str, db: Any) -> None:
    everything = db["transactions"].find({"user": user})
    food = service.search_transactions(user, "last 90 days", category="food", limit=100)
    assert food.total_count == sum(1 for t in everything if t["category"] == "food") > 0
    assert food.total_kobo == sum(t["amount_kobo"] for t in everything if t["category"] == "food")
    assert {t.category for t in food.items} == {"food"}
    chowdeck = service.search_transactions(user, "last 90 days", merchant="chow deck", limit=100)
    assert chowdeck.total_count > 0 and {t.merchant for t in chowdeck.items} == {"CHOWDECK"}
    credits = service.search_transactions(user, "last 90 days", direction="money in", limit=100)
    assert credits.total_count > 0 and {t.direction for t in credits.items} == {"credit"}
    big = service.search_transactions(user, "last 90 days", min_kobo=2_000_000, max_kobo=5_000_000, limit=100)
    assert big.total_count > 0 and all(2_000_000 <= t.amount_kobo <= 5_000_000 for t in big.items)
    nothing = service.search_transactions(user, "last 90 days", merchant="Mr Biggs")
    assert (nothing.total_count, nothing.total_kobo, nothing.items) == (0, 0, ())


def test_search_rejects_bad_filters(service: BankingService, user: str) -> None:
    with pytest.raises(InvalidDetails):
        service.search_transactions(user, category="gambling")
    with pytest.raises(InvalidDetails):
        service.search_transactions(user, direction="sideways")
    with pytest.raises(InvalidAmount):
        service.search_transactions(user, min_kobo=-1)
    with pytest.raises(InvalidAmount):
        service.search_transactions(user, min_kobo=500, max_kobo=100)


def test_search_includes_executed_movements(service: BankingService, user: str) -> None:
    op = service.prepare_transfer(user, 300_000, "checking", to_account_type="savings")
    receipt = service.confirm(user, op.op_id)
    today = service.search_transactions(user, "today", limit=50)
    mine = [t for t in today.items if t.reference == receipt.reference]
    assert sorted((t.account, t.direction, t.amount_kobo) for t in mine) == [
        ("checking", "debit", 300_000), ("savings", "credit", 300_000)]
    assert service.search_transactions(user, "today", category="savings", direction="debit").total_kobo == 300_000


def test_spending_summary(service: BankingService, user: str) -> None:
    summary = service.spending_summary(user, "last month")
    assert summary.period_label == "last month"
    everything = service.search_transactions(user, "last month", limit=100).items
    debits = [t for t in everything if t.direction == "debit"]
    assert summary.total_debit_kobo == sum(t.amount_kobo for t in debits) > 0
    assert summary.total_credit_kobo == sum(
        t.amount_kobo for t in everything if t.direction == "credit" and t.category != "savings")
    assert sum(kobo for _, kobo in summary.by_category) == summary.total_debit_kobo
    totals = [kobo for _, kobo in summary.by_category]
    assert totals == sorted(totals, reverse=True)
    food = sum(t.amount_kobo for t in debits if t.category == "food")
    assert dict(summary.by_category)["food"] == food
    assert 0 < len(summary.top_merchants) <= 5
    assert [k for _, k in summary.top_merchants] == sorted((k for _, k in summary.top_merchants), reverse=True)
    assert "SAVINGS" not in dict(summary.top_merchants)


def test_get_limit_counts_only_todays_outgoing_payments(service: BankingService, user: str, clock: Clock) -> None:
    status = service.get_limit(user)
    assert (status.limit_kobo, status.spent_today_kobo, status.remaining_kobo) == (50_000_000, 0, 50_000_000)
    service.confirm(user, service.prepare_airtime(user, 200_000, "checking", "MTN", "08031234567").op_id)
    service.confirm(user, service.prepare_transfer(user, 1_000_000, "checking", to_account_type="savings").op_id)
    status = service.get_limit(user)
    assert (status.spent_today_kobo, status.remaining_kobo) == (200_000, 49_800_000)
    clock.advance(days=1)
    assert service.get_limit(user).spent_today_kobo == 0


def test_receipt_latest_and_by_reference(service: BankingService, user: str, db: Any) -> None:
    latest_seeded = service.receipt(user)
    newest = max(db["transactions"].find({"user": user}), key=lambda d: d["posted_at"])
    assert latest_seeded.reference == newest["_id"]
    assert service.receipt(user, newest["_id"].lower()) == latest_seeded
    receipt = service.confirm(user, service.prepare_bill(user, 2_000_000, "checking", "IKEDC", "45012345678").op_id)
    latest = service.receipt(user)
    assert (latest.reference, latest.amount_kobo, latest.category, latest.merchant) == (
        receipt.reference, 2_000_000, "bills", "Ikeja Electric")
    assert service.receipt(user, receipt.reference) == latest
    with pytest.raises(UnknownAccount):
        service.receipt(user, "SBX-DOESNOTEXIST")


def test_receipt_does_not_show_other_customers_transactions(service: BankingService, user: str, db: Any) -> None:
    other = "c6" * 32
    service.connect_bank(other, "GTBank")
    theirs = db["transactions"].find_one({"user": other})
    with pytest.raises(UnknownAccount):
        service.receipt(user, theirs["_id"])


def test_request_handoff_opens_a_ticket_without_phone_numbers(service: BankingService, db: Any, user: str) -> None:
    ticket = service.request_handoff(user, "call me on 08031234567 about 0123456789")
    stored = db["handoffs"].find_one({"_id": ticket})
    assert ticket.startswith("HO-") and len(ticket) == 11
    assert (stored["user"], stored["status"], stored["at"]) == (user, "open", START)
    assert is_sealed(stored["reason"]) and "call me" not in repr(stored)
    reason = service._keyring.decrypt_text(stored["reason"], field_context("handoffs", ticket, "reason"))
    assert "08031234567" not in reason and "0123456789" not in reason  # masked before it is sealed
    assert reason == "call me on ******4567 about ******6789"
    assert service.request_handoff(STRANGER, "no bank yet") != ticket  # works without a linked bank


def test_name_enquiry_and_biller_lookup_for_forms(service: BankingService) -> None:
    assert service.name_enquiry("0123456789", "access") == SandboxProvider().name_enquiry("0123456789", "Access Bank")
    with pytest.raises(NameEnquiryFailed):
        service.name_enquiry("0009999999", "GTBank")
    with pytest.raises(InvalidDetails):
        service.name_enquiry("0123456789", "Bank of Atlantis")
    assert service.validate_biller_ref("dstv", "7012-345-678") == SandboxProvider().validate_biller_ref(
        "DStv", "7012345678")
    with pytest.raises(InvalidDetails):
        service.validate_biller_ref("dstv", "12")


def test_settings_and_limits_are_exposed(make_service: Callable[..., BankingService]) -> None:
    service = make_service(Settings(support_phone="0700"))
    assert service.settings.support_phone == "0700"
    assert service.max_daily_limit_kobo == 500_000_000


def test_history_window_matches_the_clock(service: BankingService, user: str, clock: Clock) -> None:
    page = service.search_transactions(user, "last 90 days", limit=100)
    assert all(START - timedelta(days=90) <= t.posted_at <= START for t in page.items)


class _DownCollection:
    def __getattr__(self, name: str) -> Callable[..., Any]:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise ServerSelectionTimeoutError("mongodb://user:secret@db:27017 unreachable")

        return fail


class _DownDatabase:
    def __getitem__(self, name: str) -> _DownCollection:
        return _DownCollection()


def test_database_failures_become_storage_errors(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    service = BankingService(_DownDatabase(), SandboxProvider(), Settings(), clock=clock)
    with pytest.raises(StorageError) as raised:
        service.balances("u" * 64)
    assert raised.value.code == "storage_error"
    assert isinstance(raised.value.__cause__, ServerSelectionTimeoutError)
    assert "secret" not in caplog.text and "ServerSelectionTimeoutError" in caplog.text


class _UnreachableBank(SandboxProvider):
    def name_enquiry(self, account_number: str, bank: str) -> str:
        raise ConnectionResetError("NIP gateway reset the connection")


def test_provider_network_failures_become_provider_unavailable(db: Any, clock: Clock, user: str) -> None:
    service = BankingService(db, _UnreachableBank(), Settings(), clock=clock)
    with pytest.raises(ProviderUnavailable):
        service.prepare_transfer(user, 1_000, "checking", account_number="0123456789", bank="uba")
    assert db["operations"].count_documents({}) == 0
