"""Wiring the banking service from the environment, on demand rather than at import."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from banking.config import Settings, require_support_contacts
from banking.crypto import Keyring, require_production_secrets
from banking.errors import ConfigError
from banking.providers import get_provider
from banking.service import BankingService
from banking.store import connect_database, ensure_indexes

logger = logging.getLogger(__name__)


def service_from_env(environ: Mapping[str, str] = os.environ) -> BankingService:
    """Settings, database, provider, keys and indexes in one call; the caller decides whether to keep it.

    With ENVIRONMENT=production it refuses to start (ConfigError naming every problem)
    on missing or default secrets, without MONGODB_URI, or with placeholder support contacts.
    """
    require_production_secrets(environ)
    settings = Settings.from_env(environ)
    require_support_contacts(settings)
    if settings.is_production and not settings.mongodb_uri:
        raise ConfigError("refusing to start in production: MONGODB_URI is missing, and bank records must not "
                          "be kept in memory")
    if settings.is_development:
        logger.warning("USER_ID_SALT is unset: using the development salt; user keys are not secret")
    provider = get_provider(settings, environ)  # a provider's webhooks are handled here too (actions.bank_webhooks)
    keyring = Keyring.from_env(environ)
    db = connect_database(settings)
    ensure_indexes(db)
    return BankingService(db, provider, settings, keyring=keyring)
