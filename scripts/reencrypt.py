"""Re-seal every encrypted value in the database under the newest key, after a key rotation.

    ENCRYPTION_KEY=<new> ENCRYPTION_OLD_KEYS=<old> python -m scripts.reencrypt [--dry-run]

Rotation: (1) deploy with the new key in ENCRYPTION_KEY and the old one in
ENCRYPTION_OLD_KEYS, (2) run this until it reports nothing left under old keys,
(3) drop the old key from ENCRYPTION_OLD_KEYS. Running it again changes nothing.

Every collection except the audit log is scanned for sealed values; a field's
context is `field_context(collection, _id, dotted path)`, the rule every sealed
field in the database follows (conversations included). A value that does not
open (unknown key, tampered, moved) is counted and left alone. Only counts and
key ids are printed, never a value. Exit status: 0 done, 1 something was left
behind, 2 it could not start.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.errors import PyMongoError

from banking.audit import AUDIT_COLLECTION, HEAD_COLLECTION
from banking.config import Settings, encryption_key_from_env
from banking.crypto import CryptoError, Keyring, field_context, sealed_fields
from banking.errors import ConfigError
from banking.store import DATABASE_NAME, connect_database

SKIPPED_COLLECTIONS = frozenset({AUDIT_COLLECTION, HEAD_COLLECTION})


@dataclass
class Counts:
    """What one pass found in one collection."""

    documents: int = 0
    values: int = 0
    reencrypted: int = 0
    current: int = 0
    unreadable: int = 0
    conflicts: int = 0

    def add(self, other: Counts) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def line(self, dry_run: bool = False) -> str:
        verb = "to re-encrypt" if dry_run else "re-encrypted"
        text = (f"{self.documents} documents, {self.values} sealed values: {self.reencrypted} {verb}, "
                f"{self.current} already current, {self.unreadable} unreadable")
        return text + (f", {self.conflicts} changed meanwhile (run again)" if self.conflicts else "")


def reencrypt_collection(collection: Any, keyring: Keyring, *, dry_run: bool = False) -> Counts:
    """Re-seal one collection's values under the newest key; each document changes in one conditional update."""
    counts = Counts()
    for document in collection.find({}):
        counts.documents += 1
        changes: dict[str, tuple[str, str]] = {}
        for path, token in sealed_fields(document):
            counts.values += 1
            if keyring.is_current(token):
                counts.current += 1
                continue
            try:
                changes[path] = (token, keyring.reencrypt(token, field_context(collection.name, document["_id"], path)))
            except CryptoError:
                counts.unreadable += 1
        if not changes:
            continue
        if dry_run:
            counts.reencrypted += len(changes)
            continue
        result = collection.update_one(
            {"_id": document["_id"], **{path: old for path, (old, _) in changes.items()}},
            {"$set": {path: new for path, (_, new) in changes.items()}},
        )
        if result.matched_count:
            counts.reencrypted += len(changes)
        else:
            counts.conflicts += len(changes)
    return counts


def reencrypt_database(db: Any, keyring: Keyring, collections: Iterable[str] | None = None, *,
                       dry_run: bool = False) -> dict[str, Counts]:
    """Counts per collection for every collection that may hold sealed values."""
    names = list(collections) if collections else sorted(
        name for name in db.list_collection_names()
        if name not in SKIPPED_COLLECTIONS and not name.startswith("system."))
    return {name: reencrypt_collection(db[name], keyring, dry_run=dry_run) for name in names}


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ, db: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")
    parser.add_argument("--db", default=DATABASE_NAME, help=f"database name (default {DATABASE_NAME})")
    parser.add_argument("--collection", action="append", help="only this collection (repeatable)")
    args = parser.parse_args(argv)
    try:
        if not encryption_key_from_env(environ):
            raise ConfigError("ENCRYPTION_KEY is unset; re-encrypting under a throwaway key would lose the data")
        keyring = Keyring.from_env(environ)
        if db is None:
            settings = Settings.from_env(environ)
            if not settings.mongodb_uri:
                raise ConfigError("MONGODB_URI is unset; an in-memory database has nothing to re-encrypt")
            db = connect_database(settings).client[args.db]
        results = reencrypt_database(db, keyring, args.collection, dry_run=args.dry_run)
    except ConfigError as error:
        print(f"reencrypt: cannot start: {error}", file=sys.stderr)
        return 2
    except PyMongoError as error:
        print(f"reencrypt: database error: {type(error).__name__}", file=sys.stderr)
        return 2
    total = Counts()
    for name, counts in results.items():
        print(f"{name}: {counts.line(args.dry_run)}")
        total.add(counts)
    print(f"total: {total.line(args.dry_run)}")
    print(f"newest key id {keyring.current_kid}; keys available {', '.join(keyring.kids)}")
    return 1 if total.unreadable or total.conflicts else 0


if __name__ == "__main__":
    sys.exit(main())
