"""The sandbox bank: deterministic, realistic, and strict about details."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from banking.config import Settings
from banking.errors import ConfigError, InvalidDetails, NameEnquiryFailed, ProviderUnavailable
from banking.providers import AccountSeed, get_provider
from banking.sandbox import CATEGORIES, SandboxProvider

NOW = datetime(2025, 3, 15, 9, 30, tzinfo=timezone.utc)
ALICE, BOLA = "a" * 64, "b" * 64


@pytest.fixture
def sandbox() -> SandboxProvider:
    return SandboxProvider()


def test_connect_opens_checking_and_savings_with_fixed_balances(sandbox: SandboxProvider) -> None:
    checking, savings = sandbox.connect(ALICE, "GTBank")
    assert (checking.type, checking.name, checking.balance_kobo) == ("checking", "Checking", 4_532_050)
    assert (savings.type, savings.name, savings.balance_kobo) == ("savings", "Savings", 12_545_000)
    for account in (checking, savings):
        assert len(account.number) == 10 and account.number.isdigit()
        assert not account.number.startswith(("000", "999"))
    assert checking.number != savings.number


def test_account_numbers_are_deterministic_per_user(sandbox: SandboxProvider) -> None:
    assert sandbox.connect(ALICE, "GTBank") == SandboxProvider().connect(ALICE, "gtb")
    assert sandbox.connect(ALICE, "GTBank")[0].number != sandbox.connect(BOLA, "GTBank")[0].number


def test_same_user_gets_the_same_history_and_two_users_differ(sandbox: SandboxProvider) -> None:
    first = sandbox.seed_transactions(ALICE, "GTBank", NOW)
    assert first == SandboxProvider().seed_transactions(ALICE, "GTBank", NOW)
    other = sandbox.seed_transactions(BOLA, "GTBank", NOW)
    assert {t["_id"] for t in first}.isdisjoint({t["_id"] for t in other})
    assert [t["amount_kobo"] for t in first] != [t["amount_kobo"] for t in other]


def test_history_covers_about_ninety_days_ending_now(sandbox: SandboxProvider) -> None:
    history = sandbox.seed_transactions(ALICE, "GTBank", NOW)
    times = [t["posted_at"] for t in history]
    assert max(times) <= NOW
    assert NOW - min(times) <= timedelta(days=90)
    assert NOW - min(times) >= timedelta(days=85)
    assert len(history) >= 90


def test_history_is_realistic(sandbox: SandboxProvider) -> None:
    history = sandbox.seed_transactions(ALICE, "GTBank", NOW)
    categories = Counter(t["category"] for t in history)
    assert set(categories) <= set(CATEGORIES)
    assert {"food", "transport", "bills", "salary", "savings", "airtime", "transfers"} <= set(categories)
    salaries = [t for t in history if t["category"] == "salary"]
    assert len(salaries) == 3  # paydays 25 Dec, 24 Jan (25th was a Saturday), 25 Feb
    assert all(t["direction"] == "credit" and t["account"] == "checking" for t in salaries)
    assert len({t["amount_kobo"] for t in salaries}) == 1
    merchants = {t["merchant"] for t in history}
    assert {"DSTV", "NETFLIX", "IKEJA ELECTRIC"} <= merchants
    for t in history:
        assert isinstance(t["amount_kobo"], int) and t["amount_kobo"] > 0
        assert t["direction"] in {"debit", "credit"}
        assert t["account"] in {"checking", "savings"}
        assert t["_id"] == t["reference"] and t["reference"].startswith("SBX-")
        assert t["user"] == ALICE


def test_history_of_a_past_date_does_not_change_with_now(sandbox: SandboxProvider) -> None:
    earlier = sandbox.seed_transactions(ALICE, "GTBank", NOW - timedelta(days=3))
    later = sandbox.seed_transactions(ALICE, "GTBank", NOW)
    cutoff = NOW - timedelta(days=10)
    assert [t for t in earlier if cutoff <= t["posted_at"] < NOW - timedelta(days=4)] == \
        [t for t in later if cutoff <= t["posted_at"] < NOW - timedelta(days=4)]


def test_name_enquiry_is_deterministic_and_realistic(sandbox: SandboxProvider) -> None:
    name = sandbox.name_enquiry("0123456789", "Access Bank")
    assert name == sandbox.name_enquiry("012 345 6789", "access")
    first, last = name.split()
    assert name.isupper() and first and last
    assert len({sandbox.name_enquiry(f"01234567{i:02d}", "GTBank") for i in range(30)}) > 5


@pytest.mark.parametrize("number", ["12345", "01234567890", "01234abcde", ""])
def test_name_enquiry_rejects_malformed_numbers(sandbox: SandboxProvider, number: str) -> None:
    with pytest.raises(InvalidDetails):
        sandbox.name_enquiry(number, "GTBank")


def test_name_enquiry_failures(sandbox: SandboxProvider) -> None:
    with pytest.raises(NameEnquiryFailed):
        sandbox.name_enquiry("0001234567", "GTBank")
    with pytest.raises(ProviderUnavailable):
        sandbox.name_enquiry("9991234567", "GTBank")
    with pytest.raises(InvalidDetails):
        sandbox.name_enquiry("0123456789", "Bank of Atlantis")


@pytest.mark.parametrize(
    ("biller", "ref"),
    [("Ikeja Electric", "45012345678"), ("ikedc", "4501234567890"), ("DStv", "7012345678"),
     ("gotv", "70 1234 5678"), ("Spectranet", "SPN12345"), ("LAWMA", "123456")],
)
def test_valid_biller_references_return_the_customer_name(sandbox: SandboxProvider, biller: str, ref: str) -> None:
    name = sandbox.validate_biller_ref(biller, ref)
    assert name == sandbox.validate_biller_ref(biller, ref) and len(name.split()) == 2


@pytest.mark.parametrize(
    ("biller", "ref"),
    [("Ikeja Electric", "450123456789"), ("Ikeja Electric", "4501234567a"), ("DStv", "701234567"),
     ("DStv", "70123456789"), ("Spectranet", "SPN1"), ("Spectranet", "SPN-12345-!"), ("Hogwarts Power", "45012345678")],
)
def test_invalid_biller_references_are_refused(sandbox: SandboxProvider, biller: str, ref: str) -> None:
    with pytest.raises(InvalidDetails):
        sandbox.validate_biller_ref(biller, ref)


def test_get_provider_builds_the_sandbox_and_refuses_providers_without_their_settings() -> None:
    provider = get_provider(Settings(), {})
    assert provider.name == "sandbox"
    assert isinstance(provider.connect(ALICE, "GTBank")[0], AccountSeed)
    for name, missing in (("mono", "MONO_SECRET_KEY"), ("plaid", "PLAID_CLIENT_ID")):
        with pytest.raises(ConfigError, match=f"BANK_PROVIDER={name} needs .*{missing}"):
            get_provider(Settings(bank_provider=name), {})
