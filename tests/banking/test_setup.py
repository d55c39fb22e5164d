"""Settings, user keys, the database handle and the factory."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import pytest

from banking import service_from_env
from banking.config import DEVELOPMENT_SALT, Settings
from banking.errors import ConfigError
from banking.identity import user_key
from banking.service import BankingService
from banking.store import connect_database, ensure_indexes, in_memory_database


def test_settings_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.mongodb_uri is None
    assert settings.bank_provider == "sandbox"
    assert settings.confirmation_ttl_seconds == 300
    assert settings.daily_transfer_limit_kobo == 50_000_000
    assert settings.support_phone == "+234 1 700 0000"
    assert settings.support_email == "support@example-bank.ng"
    assert settings.support_hours == "24/7"
    assert settings.user_id_salt == DEVELOPMENT_SALT and settings.is_development


def test_settings_from_env_reads_every_variable() -> None:
    settings = Settings.from_env({
        "MONGODB_URI": "mongodb://db:27017", "BANK_PROVIDER": "Sandbox", "CONFIRMATION_TTL_SECONDS": "120",
        "DAILY_TRANSFER_LIMIT": "250,000", "USER_ID_SALT": "s3cret", "SUPPORT_PHONE": "0700 000 0000",
        "SUPPORT_EMAIL": "help@bank.ng", "SUPPORT_HOURS": "8am-8pm",
    })
    assert settings == Settings(
        mongodb_uri="mongodb://db:27017", bank_provider="sandbox", confirmation_ttl_seconds=120,
        daily_transfer_limit_kobo=25_000_000, user_id_salt="s3cret", support_phone="0700 000 0000",
        support_email="help@bank.ng", support_hours="8am-8pm",
    )
    assert not settings.is_development


def test_empty_variables_count_as_unset() -> None:
    assert Settings.from_env({"MONGODB_URI": "", "USER_ID_SALT": " ", "DAILY_TRANSFER_LIMIT": ""}) == Settings()


def test_daily_limit_may_have_kobo() -> None:
    assert Settings.from_env({"DAILY_TRANSFER_LIMIT": "1000.50"}).daily_transfer_limit_kobo == 100_050


@pytest.mark.parametrize(
    ("name", "value"),
    [("CONFIRMATION_TTL_SECONDS", "five"), ("CONFIRMATION_TTL_SECONDS", "-1"), ("CONFIRMATION_TTL_SECONDS", "0"),
     ("DAILY_TRANSFER_LIMIT", "lots"), ("DAILY_TRANSFER_LIMIT", "-500"), ("DAILY_TRANSFER_LIMIT", "0.001"),
     ("DAILY_TRANSFER_LIMIT", "inf"), ("BANK_PROVIDER", "paystack")],
)
def test_bad_settings_raise_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
    assert issubclass(ConfigError, ValueError)


def test_security_cooling_off_hours_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).security_cooling_off_hours == 24
    assert Settings.from_env({"SECURITY_COOLING_OFF_HOURS": "48"}).cooling_off == timedelta(hours=48)
    for bad in ("0", "-3", "a day", "1.5"):
        with pytest.raises(ConfigError, match="SECURITY_COOLING_OFF_HOURS"):
            Settings.from_env({"SECURITY_COOLING_OFF_HOURS": bad})


def test_user_key_is_a_salted_hash_without_the_phone_number() -> None:
    key = user_key("2348031234567", "salt")
    assert len(key) == 64 and int(key, 16) >= 0
    assert "8031234567" not in key
    assert key == user_key("whatsapp:+234 803 123 4567", "salt") == user_key("+2348031234567", "salt")
    assert key != user_key("2348031234567", "other-salt")
    assert key != user_key("2348031234568", "salt")


@pytest.mark.parametrize(("sender", "salt"), [("", "salt"), ("   ", "salt"), ("2348031234567", "")])
def test_user_key_refuses_empty_input(sender: str, salt: str) -> None:
    with pytest.raises(ValueError):
        user_key(sender, salt)


def test_connect_database_without_uri_is_in_memory_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="banking.store"):
        db = connect_database(Settings())
    assert "MONGODB_URI is unset: using an in-memory database; data is lost on exit" in caplog.text
    db["profiles"].insert_one({"_id": "x"})
    assert db["profiles"].count_documents({}) == 1
    assert connect_database(Settings())["profiles"].count_documents({}) == 0  # each one is private


def test_connect_database_with_uri_is_lazy_and_named_banking() -> None:
    db = connect_database(Settings(mongodb_uri="mongodb://127.0.0.1:1/?connect=false"))
    try:
        assert db.name == "banking"
        assert db.client.options.server_selection_timeout == 5
    finally:
        db.client.close()


def test_ensure_indexes_is_idempotent() -> None:
    db = in_memory_database()
    ensure_indexes(db)
    ensure_indexes(db)
    assert "user_1_posted_at_-1" in db["transactions"].index_information()
    assert "user_1_status_1" in db["operations"].index_information()


def test_in_memory_database_makes_single_document_updates_atomic_across_threads() -> None:
    """Plain mongomock lets several threads claim the same document; the wrapper must not."""
    db = in_memory_database()
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(10):
            db["ops"].delete_many({})
            db["ops"].insert_one({"_id": "op", "status": "pending"})
            winners: list[Any] = []
            barrier = threading.Barrier(20)
            threads = [threading.Thread(target=_claim, args=(db, barrier, winners)) for _ in range(20)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(winners) == 1
    finally:
        sys.setswitchinterval(previous)


def _claim(db: Any, barrier: threading.Barrier, winners: list[Any]) -> None:
    barrier.wait()
    won = db["ops"].find_one_and_update({"_id": "op", "status": "pending"}, {"$set": {"status": "x"}})
    if won is not None:
        winners.append(won)


def test_service_from_env_builds_a_working_service(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        service = service_from_env({"DAILY_TRANSFER_LIMIT": "100000"})
    assert isinstance(service, BankingService)
    assert service.settings.daily_transfer_limit_kobo == 10_000_000
    assert "USER_ID_SALT is unset" in caplog.text
    profile = service.connect_bank("k" * 64, "zenith")
    assert profile.bank == "Zenith Bank" and profile.daily_limit_kobo == 10_000_000


MONO_ENV = {"BANK_PROVIDER": "mono", "MONO_SECRET_KEY": "test_sk_abc", "MONO_WEBHOOK_SECRET": "w" * 20,
            "BANK_LINK_REDIRECT_URL": "https://bank.example/webhooks/whatsapp/bank/done"}


def test_service_from_env_refuses_a_provider_without_its_settings() -> None:
    with pytest.raises(ConfigError, match="BANK_PROVIDER=mono needs MONO_SECRET_KEY, MONO_WEBHOOK_SECRET"):
        service_from_env({"BANK_PROVIDER": "mono"})


def test_a_provider_runs_on_the_in_memory_database_too() -> None:
    """Its webhooks are handled on the action server, beside the records the actions read (no shared store)."""
    assert service_from_env(MONO_ENV).provider_name == "mono"


def test_production_refuses_a_mono_test_key() -> None:
    from banking.mono import MonoConfig

    with pytest.raises(ConfigError, match="MONO_SECRET_KEY is a Mono test key"):
        MonoConfig.from_env(MONO_ENV, production=True)
    live = {**MONO_ENV, "MONO_SECRET_KEY": "live_sk_abc", "MONO_WEBHOOK_SECRET": "w1" * 20}
    assert MonoConfig.from_env(live, production=True).base_url == "https://api.withmono.com"


def test_importing_the_core_pulls_in_no_rasa_and_connects_nothing() -> None:
    script = (
        "import sys, threading\n"
        "import banking, banking.factory, banking.service, banking.store, banking.sandbox\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('rasa', 'rasa_sdk')], 'rasa imported'\n"
        "assert threading.active_count() == 1, 'a connection thread was started'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
