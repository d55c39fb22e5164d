"""Sealed at rest (banking/sealing.py): no name, narration, number or reason in clear in any
collection; every sealed field under field_context(collection, _id, dotted path), so a key
rotation (scripts/reencrypt.py) re-seals it and the service still reads everything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from banking.config import Settings
from banking.crypto import Keyring, field_context, is_sealed, sealed_fields
from banking.errors import ConfirmationExpired
from banking.sandbox import SandboxProvider
from banking.sealing import UNREADABLE
from banking.service import BankingService
from checks.clock import START, Clock
from scripts.reencrypt import main as reencrypt_main

OLD_HEX = "3f1c9a7e5b2d4c6e8a0b1d3f5e7c9a2b4d6f8e0a1c3e5b7d9f2a4c6e8b0d1f3a"
NEW_HEX = "9d2e4f6a8c0b1e3d5f7a9c2e4b6d8f0a3c5e7b9d1f4a6c8e0b2d4f6a8c1e3b5d"
USER = "5e" * 32
PAYEE, METER, PHONE = "0123456789", "45012345678", "08031234567"
SKIPPED = ("audit", "audit_head")  # codes only, never details; not sealed (test_service_operations)


def bank_with(db: Any, clock: Clock, key_hex: str, old_hex: str | None = None) -> BankingService:
    keyring = Keyring(bytes.fromhex(key_hex), [bytes.fromhex(old_hex)] if old_hex else [])
    return BankingService(db, SandboxProvider(), Settings(user_id_salt="test-salt"), clock=clock, keyring=keyring)


def everyday_banking(service: BankingService) -> dict[str, Any]:
    """Connect, pay a person, a bill and airtime, ask for a person; leave a transfer awaiting its YES."""
    service.connect_bank(USER, "GTBank")
    requests = (
        lambda: service.prepare_transfer(USER, 1_000_000, "checking", account_number=PAYEE, bank="access"),
        lambda: service.prepare_transfer(USER, 500_000, "savings", to_account_type="checking"),
        lambda: service.prepare_bill(USER, 2_000_000, "checking", "Ikeja Electric", METER),
        lambda: service.prepare_airtime(USER, 100_000, "checking", "MTN", PHONE),
    )
    receipts = [service.confirm(USER, prepare().op_id) for prepare in requests]
    ticket = service.request_handoff(USER, f"my transfer to {PAYEE} failed, call me on {PHONE}")
    waiting = service.prepare_transfer(USER, 70_000, "checking", account_number="2233445566", bank="zenith")
    return {"receipts": receipts, "ticket": ticket, "waiting": waiting}


def clear_strings(value: Any) -> Iterator[str]:
    """Every string value in a document that is not a sealed value (keys are op ids and codes)."""
    if isinstance(value, str):
        if not is_sealed(value):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from clear_strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from clear_strings(item)


def dump(db: Any) -> dict[str, list[dict[str, Any]]]:
    return {name: list(db[name].find({})) for name in sorted(db.list_collection_names())}


def test_no_name_narration_merchant_or_number_is_stored_in_clear(db: Any, clock: Clock) -> None:
    service = bank_with(db, clock, NEW_HEX)
    done = everyday_banking(service)
    provider = SandboxProvider()
    history = provider.seed_transactions(USER, "GTBank", START)
    today = service.search_transactions(USER, "today", limit=100).items
    secrets = {
        "holder names": {service.name_enquiry(PAYEE, "access"), service.name_enquiry("2233445566", "zenith"),
                         service.validate_biller_ref("Ikeja Electric", METER)},
        "narrations": {t["narration"] for t in history} | {t.narration for t in today},
        # a move between own accounts names the other account ("Savings"): an account name, kept in clear
        "merchant names": ({t["merchant"] for t in history} | {t.merchant for t in today}) - {"Checking", "Savings"},
        "account numbers": {PAYEE, "2233445566", *(seed.number for seed in provider.connect(USER, "GTBank"))},
        "meter number": {METER},
        "phone number": {PHONE, PHONE[1:], "234" + PHONE[1:]},
        "handoff reason": {"my transfer to", "call me on"},
    }
    assert len(secrets["narrations"]) > 20 and len(secrets["merchant names"]) > 10
    assert any(t.merchant == service.name_enquiry(PAYEE, "access") for t in today)  # and reads back in clear
    collections = dump(db)
    assert {"profiles", "operations", "transactions", "handoffs", "connections", "consents"} <= set(collections)
    found = sorted({(what, name) for name, documents in collections.items() for document in documents
                    for text in clear_strings(document) for what, values in secrets.items()
                    if any(value in text for value in values)})
    assert found == []
    assert done["waiting"].destination_label.startswith(service.name_enquiry("2233445566", "zenith"))


def test_every_sealed_value_opens_only_under_its_own_collection_id_and_path(db: Any, clock: Clock) -> None:
    everyday_banking(bank_with(db, clock, NEW_HEX))
    keyring = Keyring(bytes.fromhex(NEW_HEX))
    paths: set[tuple[str, str]] = set()
    for name, documents in dump(db).items():
        if name in SKIPPED:
            continue
        for document in documents:
            for path, token in sealed_fields(document):
                keyring.decrypt(token, field_context(name, document["_id"], path))
                paths.add((name, path.split(".")[-1] if path.startswith(("link.ledger.", "params.")) else path))
    assert paths >= {
        ("profiles", "merchant"), ("profiles", "narration"), ("profiles", "destination_label"),
        ("operations", "account_number"), ("operations", "bank"), ("operations", "holder_name"),
        ("operations", "destination_label"), ("operations", "result"), ("operations", "customer_ref"),
        ("operations", "phone"), ("operations", "network"), ("operations", "to_account"),
        ("transactions", "merchant"), ("transactions", "narration"), ("handoffs", "reason"), ("connections", "token"),
    }


def test_numbers_the_atomic_checks_need_stay_numbers(db: Any, clock: Clock) -> None:
    service = bank_with(db, clock, NEW_HEX)
    done = everyday_banking(service)
    document = db["profiles"].find_one({"_id": USER})
    assert all(isinstance(a["balance_kobo"], int) for a in document["link"]["accounts"].values())
    assert isinstance(document["daily_limit_kobo"], int) and all(isinstance(v, int) for v in document["spent"].values())
    assert all(isinstance(e["amount_kobo"], int) for e in document["link"]["ledger"].values())
    assert isinstance(db["operations"].find_one({"_id": done["waiting"].op_id})["amount_kobo"], int)


def test_after_a_key_rotation_the_service_reads_and_runs_everything_with_the_new_key_alone(
        db: Any, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    before = bank_with(db, clock, OLD_HEX)
    done = everyday_banking(before)
    history = before.search_transactions(USER, "last 90 days", limit=100)
    latest = before.receipt(USER)
    assert reencrypt_main([], {"ENCRYPTION_KEY": NEW_HEX, "ENCRYPTION_OLD_KEYS": OLD_HEX}, db=db) == 0
    output = capsys.readouterr().out
    assert "0 unreadable" in output.splitlines()[-2] and "re-encrypted" in output

    after = bank_with(db, clock, NEW_HEX)  # the old key is gone
    assert after.search_transactions(USER, "last 90 days", limit=100) == history
    assert UNREADABLE not in repr(history)
    assert after.receipt(USER) == latest
    for receipt in done["receipts"]:
        assert after.executed_receipt(USER, receipt.op_id) == receipt
    assert after.pending_operation(USER, done["waiting"].op_id) == done["waiting"]
    assert after.confirm(USER, done["waiting"].op_id).destination_label == done["waiting"].destination_label
    ticket = db["handoffs"].find_one({"_id": done["ticket"]})
    reason = Keyring(bytes.fromhex(NEW_HEX)).decrypt_text(ticket["reason"],
                                                          field_context("handoffs", done["ticket"], "reason"))
    assert reason == "my transfer to ******6789 failed, call me on ******4567"


def test_a_sealed_text_moved_to_another_entry_reads_as_unreadable(db: Any, clock: Clock) -> None:
    service = bank_with(db, clock, NEW_HEX)
    first, second, *_ = everyday_banking(service)["receipts"]
    moved = db["profiles"].find_one({"_id": USER})["link"]["ledger"][first.op_id]["narration"]
    db["profiles"].update_one({"_id": USER}, {"$set": {f"link.ledger.{second.op_id}.narration": moved}})
    lines = {(t.reference, t.direction): t for t in service.search_transactions(USER, "today", limit=100).items}
    assert lines[(second.reference, "debit")].narration == UNREADABLE
    assert lines[(first.reference, "debit")].narration.startswith("NIP TRF TO ")


def test_parameters_copied_from_another_operation_do_not_run(db: Any, clock: Clock) -> None:
    service = bank_with(db, clock, NEW_HEX)
    service.connect_bank(USER, "GTBank")
    mine = service.prepare_transfer(USER, 10_000, "checking", account_number=PAYEE, bank="access")
    stolen = db["operations"].find_one({"_id": mine.op_id})["params"]
    service.cancel(USER, mine.op_id)
    forged = service.prepare_transfer(USER, 10_000, "checking", account_number="2233445566", bank="zenith")
    db["operations"].update_one({"_id": forged.op_id}, {"$set": {"params": stolen}})
    with pytest.raises(ConfirmationExpired, match="can no longer be read"):
        service.confirm(USER, forged.op_id)
    assert service.balances(USER, "checking")[0].balance_kobo == 4_532_050
