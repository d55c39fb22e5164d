"""An append-only, hash-chained audit log in the `audit` collection.

Each record is the service's fields (user, action, outcome, op_id, reason,
amount_kobo, at) under an ``_id`` that places it in the chain::

    _id: {"seq": 42, "prev": <hash of record 41>, "hash": SHA-256(canonical JSON of seq, prev, fields)}

The chain lives in ``_id`` because MongoDB never lets an update change ``_id``:
a record's place and hash can only be altered by deleting and re-inserting it,
and the payload fields stay exactly what they always were. One global chain
(not one per user) is kept because it also shows a deleted *user's* records and
the order of actions across users; per-user chains would let a whole customer's
history vanish without a trace.

Appending is optimistic and safe across threads and processes: a writer reads
the head document (``audit_head``: last seq and hash), inserts seq + 1, and a
unique index on ``_id.seq`` lets exactly one writer win each number. A loser
helps move the head to the real tail (so a writer that died between its insert
and its head update cannot stall the chain) and tries again.

`verify_chain` finds an edited record (hash mismatch), a deleted one (a gap, or a
head beyond the last record), a reordered or inserted one (a broken prev link, a
duplicate seq, or a record outside the chain). The hash is not keyed: someone
who can rewrite the whole collection can rebuild a consistent chain, so record
the head hash `scripts/audit_verify.py` prints somewhere the database cannot
reach, and compare.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pymongo.errors import DuplicateKeyError, PyMongoError

__all__ = ["AUDIT_COLLECTION", "GENESIS_HASH", "HEAD_COLLECTION", "AuditWriteConflict", "VerificationResult",
           "append", "canonical_json", "ensure_indexes", "record_hash", "verify_chain"]

logger = logging.getLogger(__name__)

AUDIT_COLLECTION = "audit"
HEAD_COLLECTION = "audit_head"
HEAD_ID = "audit"
GENESIS_HASH = "0" * 64
MAX_APPEND_ATTEMPTS = 200
_SEQ = "_id.seq"
_process_lock = threading.Lock()


class AuditWriteConflict(PyMongoError):
    """Every attempt to take the next sequence number lost to another writer."""


@dataclass(frozen=True)
class VerificationResult:
    """What `verify_chain` found: the records checked and the first break, if any."""

    records: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None

    def __bool__(self) -> bool:
        return self.intact

    def summary(self) -> str:
        if self.intact:
            return f"{self.records} records, chain intact (head #{self.head_seq} {self.head_hash})"
        where = f"record {self.broken_seq}" if self.broken_seq is not None else "the log"
        return f"{self.records} records, chain BROKEN at {where}: {self.problem}"


def ensure_indexes(db: Any) -> None:
    """The unique sequence index that makes concurrent appends safe; idempotent."""
    db[AUDIT_COLLECTION].create_index([(_SEQ, 1)], unique=True, name="chain_seq_unique")


def canonical_json(value: Any) -> str:
    """One byte-exact JSON text per value: sorted keys, no spaces, datetimes as UTC milliseconds."""
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def record_hash(seq: int, prev: str, fields: Mapping[str, Any]) -> str:
    """SHA-256 over the record's place, its predecessor's hash and its fields."""
    text = canonical_json({"seq": seq, "prev": prev, "fields": dict(fields)})
    return hashlib.sha256(text.encode()).hexdigest()


def append(db: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Add one record at the end of the chain and return it as stored."""
    if "_id" in fields:
        raise ValueError("audit fields may not carry an _id; the chain assigns it")
    with _process_lock:  # threads of one process queue here; processes race on the unique index
        return _append(db, fields)


def _append(db: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    records = db[AUDIT_COLLECTION]
    for attempt in range(1, MAX_APPEND_ATTEMPTS + 1):
        head = db[HEAD_COLLECTION].find_one({"_id": HEAD_ID})
        if head is None:
            ensure_indexes(db)  # the first record of a chain; never fork for want of the index
            head = {"seq": 0, "hash": GENESIS_HASH}
        seq = head["seq"] + 1
        link = {"seq": seq, "prev": head["hash"], "hash": record_hash(seq, head["hash"], fields)}
        document = {"_id": link, **fields}
        try:
            records.insert_one(document)
        except DuplicateKeyError:
            _advance_head_to_tail(db)
            time.sleep(random.uniform(0, 0.0001 * min(attempt, 20)))
            continue
        _advance_head(db, seq, link["hash"])
        return document
    logger.error("audit append gave up after %d attempts", MAX_APPEND_ATTEMPTS)
    raise AuditWriteConflict(f"could not append to the audit chain after {MAX_APPEND_ATTEMPTS} attempts")


def verify_chain(db: Any) -> VerificationResult:
    """Walk the chain from record 1 and report the first record that breaks it."""
    stored_head = db[HEAD_COLLECTION].find_one({"_id": HEAD_ID})
    head = stored_head or {"seq": 0, "hash": GENESIS_HASH}
    count = 0
    expected_seq, expected_prev = 1, GENESIS_HASH

    def broken(seq: int | None, problem: str) -> VerificationResult:
        return VerificationResult(count, head["seq"], head["hash"], seq, problem)

    for record in db[AUDIT_COLLECTION].find({}, sort=[(_SEQ, 1)]):
        count += 1
        link = record.get("_id")
        if not _is_link(link):
            return broken(None, f"a record outside the chain (_id {link!r}) was inserted")
        seq = link["seq"]
        fields = {name: value for name, value in record.items() if name != "_id"}
        if seq < expected_seq:
            return broken(seq, f"two records claim sequence number {seq} (one was inserted)")
        if seq > expected_seq:
            missing = (f"record {expected_seq} is" if seq == expected_seq + 1
                       else f"records {expected_seq}-{seq - 1} are")
            return broken(expected_seq, f"{missing} missing (deleted): the sequence jumps to {seq}")
        if record_hash(seq, link["prev"], fields) != link["hash"]:
            return broken(seq, "its contents do not match its hash (edited, or moved from another place)")
        if link["prev"] != expected_prev:
            return broken(seq, f"it does not link to record {seq - 1} (reordered, replaced or inserted)")
        expected_seq, expected_prev = seq + 1, link["hash"]
    last_seq = expected_seq - 1
    if stored_head is None and count:
        return broken(None, f"the head document ({HEAD_COLLECTION}) is missing, so records deleted from the end "
                            "could not be noticed")
    if head["seq"] > last_seq:
        return broken(last_seq + 1, f"the head says {head['seq']} records were written; the log ends at "
                                    f"{last_seq} (records were deleted from the end)")
    if head["seq"] and head["seq"] <= last_seq:
        stored = db[AUDIT_COLLECTION].find_one({_SEQ: head["seq"]})
        if stored is None or stored["_id"]["hash"] != head["hash"]:
            return broken(head["seq"], "the head's hash does not match this record (the chain was rebuilt)")
    return VerificationResult(count, head["seq"], head["hash"])


# ------------------------------------------------------------------ helpers


def _advance_head(db: Any, seq: int, digest: str) -> None:
    """Move the head forward to seq (never back); a concurrent creator of the head may win."""
    try:
        db[HEAD_COLLECTION].update_one({"_id": HEAD_ID, "seq": {"$lt": seq}},
                                       {"$set": {"seq": seq, "hash": digest}}, upsert=True)
    except DuplicateKeyError:
        pass  # the head is already at or beyond seq


def _advance_head_to_tail(db: Any) -> None:
    """Finish a head update another writer has not made yet (or never will, having died)."""
    tail = db[AUDIT_COLLECTION].find_one({_SEQ: {"$exists": True}}, sort=[(_SEQ, -1)])
    if tail is not None and _is_link(tail["_id"]):
        _advance_head(db, tail["_id"]["seq"], tail["_id"]["hash"])


def _is_link(value: Any) -> bool:
    return (isinstance(value, Mapping) and isinstance(value.get("seq"), int)
            and isinstance(value.get("prev"), str) and isinstance(value.get("hash"), str))


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return {"$date": aware.astimezone(timezone.utc).isoformat(timespec="milliseconds")}
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"audit fields must be JSON-like values or datetimes, not {type(value).__name__}")
