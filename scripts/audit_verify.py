"""Check the audit log's hash chain; exit 1 if any record was edited, deleted, reordered or inserted.

    python -m scripts.audit_verify          # MONGODB_URI set: the deployment's log
    python -m scripts.audit_verify          # MONGODB_URI unset: a demo log built in memory

It connects the way the banking service does. The head hash it prints is worth
recording outside the database: a chain rebuilt from scratch by someone with
write access verifies, but its head will not match the one you kept.
Exit status: 0 intact, 1 tampered, 2 the log could not be read.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.errors import PyMongoError

from banking.audit import verify_chain
from banking.config import Settings
from banking.errors import ConfigError
from banking.identity import user_key
from banking.sandbox import SandboxProvider
from banking.service import BankingService
from banking.store import connect_database, ensure_indexes, in_memory_database

DEMO_SENDER = "2348000000000"


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ, db: Any = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    try:
        settings = Settings.from_env(environ)
        if db is None and settings.mongodb_uri:
            db = connect_database(settings)
        elif db is None:
            print("MONGODB_URI is unset: verifying a demo audit log built in memory")
            db = demo_database(settings)
        result = verify_chain(db)
    except ConfigError as error:
        print(f"audit log: cannot start: {error}", file=sys.stderr)
        return 2
    except PyMongoError as error:
        print(f"audit log: cannot be read: {type(error).__name__}", file=sys.stderr)
        return 2
    print(f"audit log: {result.summary()}")
    return 0 if result.intact else 1


def demo_database(settings: Settings) -> Any:
    """An in-memory database with a few real banking actions in its audit log."""
    db = in_memory_database()
    ensure_indexes(db)
    service = BankingService(db, SandboxProvider(), settings)
    user = user_key(DEMO_SENDER, settings.user_id_salt)
    service.connect_bank(user, "gtbank")
    service.confirm(user, service.prepare_transfer(user, 500_000, "checking", to_account_type="savings").op_id)
    service.confirm(user, service.prepare_freeze(user).op_id)
    service.confirm(user, service.prepare_unfreeze(user).op_id)
    return db


if __name__ == "__main__":
    sys.exit(main())
