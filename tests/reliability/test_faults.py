"""Faults: MongoDB failing in the middle of a transfer, and Meta's Graph API going down."""

from __future__ import annotations

import pytest

import actions.runtime as runtime
from banking.errors import AlreadyExecuted, OutcomeUnknown, StorageError
from banking.identity import user_key
from banking.store import ensure_indexes, in_memory_database
from checks.interposed_db import Fault, InterposedDatabase
from checks.reliability.common import SALT, new_bank, sender_number
from checks.reliability.graph_outage import graph_outage
from checks.reliability.storage_faults import storage_faults


def test_every_database_failure_during_a_confirmation_leaves_the_books_straight() -> None:
    outcome = storage_faults()
    assert outcome.problems == []
    figures = outcome.figures
    assert figures["  single failures"] >= 60 and figures["  database down from that call on"] >= 20
    for never in ("half-applied transfers", "'nothing was moved' said when money moved", "double executions"):
        assert figures[never] == 0
    assert figures["customer told 'nothing was moved, try again'"] > 0
    assert figures["customer got the receipt despite the fault"] > 0


def test_a_failed_money_update_is_a_retry_message_and_the_next_yes_runs_it() -> None:
    base = in_memory_database()
    ensure_indexes(base)
    db = InterposedDatabase(base)
    service = new_bank(db)
    user = user_key(sender_number(7), SALT)
    service.connect_bank(user, "gtbank")
    before = service.balances(user, "checking")[0].balance_kobo
    op = service.prepare_transfer(user, 100_000, "checking", account_number="0123456789", bank="access")
    Fault(db, "profiles", "find_one_and_update")
    with pytest.raises(StorageError) as failed:
        service.confirm(user, op.op_id)
    assert not isinstance(failed.value, OutcomeUnknown)
    assert runtime.REFUSALS[type(failed.value)] == "utter_provider_unavailable"  # "Nothing was moved. Please try again"
    assert base["operations"].find_one({"_id": op.op_id})["status"] == "pending"
    assert service.balances(user, "checking")[0].balance_kobo == before
    assert service.confirm(user, op.op_id).new_balance_kobo == before - 100_000


def test_a_lost_reply_after_the_money_moved_still_gives_the_receipt() -> None:
    base = in_memory_database()
    ensure_indexes(base)
    db = InterposedDatabase(base)
    service = new_bank(db)
    user = user_key(sender_number(8), SALT)
    service.connect_bank(user, "gtbank")
    op = service.prepare_transfer(user, 100_000, "checking", account_number="0123456789", bank="access")
    Fault(db, "operations", "update_one")  # recording the result
    receipt = service.confirm(user, op.op_id)
    assert receipt.amount_kobo == 100_000
    assert base["operations"].find_one({"_id": op.op_id})["status"] == "executed"
    with pytest.raises(AlreadyExecuted) as again:
        service.confirm(user, op.op_id)
    assert again.value.receipt.reference == receipt.reference


async def test_replies_are_retried_through_an_outage_and_every_lost_one_is_logged() -> None:
    outcome = await graph_outage(users=20)
    assert outcome.problems == []
    figures = outcome.figures
    assert figures["  delivered after retries"] == 20 and figures["  send attempts (incl. retries)"] > 20
    assert figures["  undelivered, each logged"] == 20 and figures["  silently dropped"] == 0
    assert figures["delivered once Meta is back"] == 1
