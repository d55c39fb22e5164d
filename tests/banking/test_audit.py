"""The hash-chained audit log: appends, verification, tampering of every kind, concurrency."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError

import banking.audit as audit
import banking.store as store
from banking.audit import GENESIS_HASH, HEAD_COLLECTION, append, canonical_json, record_hash, verify_chain
from banking.service import BankingService
from scripts.audit_verify import main as audit_verify_main

AT = datetime(2025, 3, 15, 9, 30, tzinfo=timezone.utc)


def record(n: int, **changes: Any) -> dict[str, Any]:
    fields = {"user": f"{n:064x}", "action": "transfer", "outcome": "executed", "op_id": f"op-{n}",
              "reason": None, "amount_kobo": 1_000 * n, "at": AT + timedelta(seconds=n)}
    return {**fields, **changes}


def chain(db: Any, length: int = 6) -> list[dict[str, Any]]:
    return [append(db, record(n)) for n in range(1, length + 1)]


def by_seq(db: Any, seq: int) -> dict[str, Any]:
    return db["audit"].find_one({"_id.seq": seq})


def replace(db: Any, old: dict[str, Any], new: dict[str, Any]) -> None:
    """What someone with write access can do: _id is immutable, so delete and insert."""
    db["audit"].delete_one({"_id": old["_id"]})
    db["audit"].insert_one(new)


# --------------------------------------------------------------------- appending


def test_records_link_to_their_predecessor_and_hash_their_fields(db: Any) -> None:
    first, second = chain(db, 2)
    assert first["_id"]["seq"] == 1 and first["_id"]["prev"] == GENESIS_HASH
    assert second["_id"]["seq"] == 2 and second["_id"]["prev"] == first["_id"]["hash"]
    stored = by_seq(db, 2)
    fields = {name: value for name, value in stored.items() if name != "_id"}
    assert fields == record(2)
    assert stored["_id"]["hash"] == record_hash(2, first["_id"]["hash"], fields)
    assert db[HEAD_COLLECTION].find_one({}) == {"_id": "audit", "seq": 2, "hash": second["_id"]["hash"]}


def test_canonical_json_is_order_free_and_reads_datetimes_as_utc_milliseconds() -> None:
    lagos = timezone(timedelta(hours=1))
    assert canonical_json({"b": 1, "a": AT}) == canonical_json({"a": AT.astimezone(lagos), "b": 1}) == \
        '{"a":{"$date":"2025-03-15T09:30:00.000+00:00"},"b":1}'
    assert canonical_json({"at": AT.replace(tzinfo=None, microsecond=123_999)}) == \
        canonical_json({"at": AT.replace(microsecond=123_000)})
    assert canonical_json({"x": True}) != canonical_json({"x": 1})
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


def test_an_empty_log_and_a_fresh_chain_verify(db: Any) -> None:
    assert verify_chain(db).intact and verify_chain(db).records == 0
    chain(db)
    result = verify_chain(db)
    assert result.intact and bool(result) and result.records == 6 and result.head_seq == 6
    assert result.summary() == f"6 records, chain intact (head #6 {by_seq(db, 6)['_id']['hash']})"


def test_the_service_writes_a_verifiable_chain_with_its_usual_fields(
        service: BankingService, db: Any, user: str) -> None:
    service.confirm(user, service.prepare_transfer(user, 10_000, "checking", to_account_type="savings").op_id)
    service.request_handoff(user, "help")
    records = db["audit"].find({"user": user}, sort=[("_id", 1)])
    assert [(r["action"], r["outcome"]) for r in records] == [
        ("connect", "executed"), ("transfer", "requested"), ("transfer", "confirmed"), ("transfer", "executed"),
        ("handoff", "requested")]
    assert [r["_id"]["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert verify_chain(db).intact


def test_fields_may_not_choose_their_own_id(db: Any) -> None:
    with pytest.raises(ValueError):
        append(db, {"_id": 7, **record(1)})


# --------------------------------------------------------------------- tampering


@pytest.mark.parametrize(
    ("field", "value"),
    [("user", "f" * 64), ("action", "freeze"), ("outcome", "refused"), ("op_id", "op-x"), ("reason", "fraud"),
     ("amount_kobo", 1), ("amount_kobo", None), ("at", AT - timedelta(days=1)), ("note", "added field")],
)
def test_editing_any_field_is_detected(db: Any, field: str, value: Any) -> None:
    chain(db)
    db["audit"].update_one({"_id.seq": 3}, {"$set": {field: value}})
    result = verify_chain(db)
    assert not result.intact and result.broken_seq == 3
    assert "do not match its hash" in result.problem


def test_removing_a_field_is_detected(db: Any) -> None:
    chain(db)
    db["audit"].update_one({"_id.seq": 4}, {"$unset": {"reason": ""}})
    assert verify_chain(db).broken_seq == 4


def test_a_rewritten_hash_breaks_the_next_link(db: Any) -> None:
    """Edit record 3 and give it a matching hash: record 4 no longer links to it."""
    chain(db)
    old = by_seq(db, 3)
    fields = {**{k: v for k, v in old.items() if k != "_id"}, "amount_kobo": 1}
    link = {**old["_id"], "hash": record_hash(3, old["_id"]["prev"], fields)}
    replace(db, old, {"_id": link, **fields})
    result = verify_chain(db)
    assert result.broken_seq == 4 and "does not link to record 3" in result.problem


@pytest.mark.parametrize(("deleted", "broken", "problem"), [
    ([3], 3, "record 3 is missing (deleted): the sequence jumps to 4"),
    ([2, 3, 4], 2, "records 2-4 are missing"),
    ([1], 1, "record 1 is missing"),
    ([6], 6, "the head says 6 records were written; the log ends at 5"),
    ([5, 6], 5, "the log ends at 4"),
])
def test_deleting_records_is_detected(db: Any, deleted: list[int], broken: int, problem: str) -> None:
    chain(db)
    for seq in deleted:
        db["audit"].delete_one({"_id.seq": seq})
    result = verify_chain(db)
    assert not result.intact and result.broken_seq == broken and problem in result.problem


def test_deleting_everything_is_detected_by_the_head(db: Any) -> None:
    chain(db)
    db["audit"].delete_many({})
    assert not verify_chain(db).intact


def test_deleting_the_head_is_detected(db: Any) -> None:
    chain(db)
    db[HEAD_COLLECTION].delete_many({})
    assert "head document" in verify_chain(db).problem


def test_swapping_the_contents_of_two_records_is_detected(db: Any) -> None:
    chain(db)
    third, fourth = by_seq(db, 3), by_seq(db, 4)
    replace(db, third, {"_id": third["_id"], **{k: v for k, v in fourth.items() if k != "_id"}})
    replace(db, fourth, {"_id": fourth["_id"], **{k: v for k, v in third.items() if k != "_id"}})
    result = verify_chain(db)
    assert not result.intact and result.broken_seq == 3


def test_swapping_the_positions_of_two_records_is_detected(db: Any) -> None:
    chain(db)
    third, fourth = by_seq(db, 3), by_seq(db, 4)
    db["audit"].delete_many({"_id.seq": {"$in": [3, 4]}})
    db["audit"].insert_one({**fourth, "_id": {**fourth["_id"], "seq": 3}})
    db["audit"].insert_one({**third, "_id": {**third["_id"], "seq": 4}})
    result = verify_chain(db)
    assert not result.intact and result.broken_seq == 3


def test_an_inserted_record_is_detected(db: Any) -> None:
    chain(db)
    db["audit"].insert_one(record(99))  # outside the chain: an ordinary _id
    assert "outside the chain" in verify_chain(db).problem


def test_a_forged_record_in_the_middle_is_detected(db: Any) -> None:
    """Squeezing a record in means taking a number; renumbering the rest breaks the links or the head."""
    chain(db)
    later = [by_seq(db, seq) for seq in (4, 5, 6)]
    db["audit"].delete_many({"_id.seq": {"$gte": 4}})
    forged = record(42)
    prev = by_seq(db, 3)["_id"]["hash"]
    db["audit"].insert_one({"_id": {"seq": 4, "prev": prev, "hash": record_hash(4, prev, forged)}, **forged})
    for old in later:  # shifted by one, hashes kept
        db["audit"].insert_one({**old, "_id": {**old["_id"], "seq": old["_id"]["seq"] + 1}})
    result = verify_chain(db)
    assert not result.intact and result.broken_seq == 5


def test_a_duplicate_sequence_number_is_refused_by_the_index(db: Any) -> None:
    first = chain(db, 1)[0]
    with pytest.raises(DuplicateKeyError):
        db["audit"].insert_one({"_id": {**first["_id"], "hash": "f" * 64}, **record(1)})


# --------------------------------------------------------------------- concurrency


def _hammer(target: Any, db: Any, threads: int = 20, each: int = 10) -> int:
    barrier = threading.Barrier(threads)

    def work(worker: int) -> None:
        barrier.wait()
        for n in range(each):
            target(db, record(worker * 1000 + n))

    pool = [threading.Thread(target=work, args=(worker,)) for worker in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return threads * each


def test_twenty_threads_appending_keep_one_valid_chain(db: Any) -> None:
    _hammer(append, db)
    result = verify_chain(db)
    assert result.intact and result.records == 200 and result.head_seq == 200
    assert sorted(r["op_id"] for r in db["audit"].find({})) == sorted(
        f"op-{w * 1000 + n}" for w in range(20) for n in range(10))


def test_twenty_racing_writers_without_a_shared_lock_keep_one_valid_chain(db: Any) -> None:
    """Each thread stands in for a separate process: only the unique seq index keeps them apart."""
    written = _hammer(audit._append, db, each=5)
    result = verify_chain(db)
    assert result.intact and result.records == written == 100


def test_a_writer_that_died_before_moving_the_head_does_not_stall_the_chain(db: Any) -> None:
    chain(db, 2)
    head = db[HEAD_COLLECTION].find_one({})
    orphan = record(3)  # inserted, then the process died before updating the head
    db["audit"].insert_one({"_id": {"seq": 3, "prev": head["hash"], "hash": record_hash(3, head["hash"], orphan)},
                            **orphan})
    assert append(db, record(4))["_id"]["seq"] == 4
    assert verify_chain(db).intact and verify_chain(db).records == 4


def test_appends_give_up_with_a_storage_error_when_they_always_lose(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    chain(db, 1)
    monkeypatch.setattr(audit, "MAX_APPEND_ATTEMPTS", 3)
    monkeypatch.setattr(audit, "_advance_head_to_tail", lambda db: None)
    db[HEAD_COLLECTION].update_one({}, {"$set": {"seq": 0}})  # every attempt takes a number already used
    with pytest.raises(audit.AuditWriteConflict):
        append(db, record(2))


# --------------------------------------------------------------------- scripts/audit_verify.py


def test_audit_verify_reports_an_intact_chain(db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    chain(db)
    assert audit_verify_main([], {}, db=db) == 0
    assert capsys.readouterr().out.startswith("audit log: 6 records, chain intact (head #6 ")


def test_audit_verify_names_the_first_broken_record_and_fails(db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    chain(db)
    db["audit"].delete_one({"_id.seq": 2})
    assert audit_verify_main([], {}, db=db) == 1
    assert "chain BROKEN at record 2: record 2 is missing (deleted)" in capsys.readouterr().out


def test_audit_verify_without_a_database_checks_a_demo_log(capsys: pytest.CaptureFixture[str]) -> None:
    assert audit_verify_main([], {}) == 0
    output = capsys.readouterr().out
    assert "MONGODB_URI is unset: verifying a demo audit log built in memory" in output
    assert "chain intact" in output


def test_audit_verify_reports_an_unreachable_database(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "SERVER_SELECTION_TIMEOUT_MS", 100)
    assert audit_verify_main([], {"MONGODB_URI": "mongodb://127.0.0.1:1/"}) == 2
    assert "cannot be read: ServerSelectionTimeoutError" in capsys.readouterr().err
