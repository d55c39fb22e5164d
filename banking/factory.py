"""Wiring the banking service from the environment, on demand rather than at import."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from banking.config import Settings
from banking.providers import get_provider
from banking.service import BankingService
from banking.store import connect_database, ensure_indexes

logger = logging.getLogger(__name__)


def service_from_env(environ: Mapping[str, str] = os.environ) -> BankingService:
    """Settings, database, provider and indexes in one call; the caller decides whether to keep it."""
    settings = Settings.from_env(environ)
    if settings.is_development:
        logger.warning("USER_ID_SALT is unset: using the development salt; user keys are not secret")
    provider = get_provider(settings)
    db = connect_database(settings)
    ensure_indexes(db)
    return BankingService(db, provider, settings)
