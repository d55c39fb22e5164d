"""Sealing values with AES-256-GCM: round trips, refusals, key rotation and production secrets."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import banking.crypto as crypto
from banking.config import DEVELOPMENT_SALT, Settings
from banking.crypto import (
    CryptoError,
    Keyring,
    MalformedCiphertext,
    TamperedData,
    UnknownKey,
    field_context,
    is_sealed,
    production_secret_problems,
    require_production_secrets,
    sealed_fields,
    sealed_kid,
)
from banking.errors import ConfigError
from banking.sandbox import SandboxProvider
from banking.service import BankingService
from scripts.reencrypt import main as reencrypt_main

OLD_HEX = "3f1c9a7e5b2d4c6e8a0b1d3f5e7c9a2b4d6f8e0a1c3e5b7d9f2a4c6e8b0d1f3a"
NEW_HEX = "9d2e4f6a8c0b1e3d5f7a9c2e4b6d8f0a3c5e7b9d1f4a6c8e0b2d4f6a8c1e3b5d"
OLD, NEW = bytes.fromhex(OLD_HEX), bytes.fromhex(NEW_HEX)
CONTEXT = field_context("profiles", "a1" * 32, "bank_token")
GOOD_ENV = {
    "ENVIRONMENT": "production", "ENCRYPTION_KEY": NEW_HEX, "USER_ID_SALT": "k3y-for-hashing-senders-9f8e7d",
    "WHATSAPP_APP_SECRET": "0a1b2c3d4e5f6a7b", "WHATSAPP_API_TOKEN": "EAAG-real-looking-token",
    "WHATSAPP_VERIFY_TOKEN": "verify-me-7d1c",
}


# --------------------------------------------------------------------- sealing


def test_round_trip_of_text_json_and_bytes() -> None:
    keyring = Keyring(NEW)
    assert keyring.decrypt_text(keyring.encrypt_text("send ₦5,000 to 0123456789", CONTEXT), CONTEXT) == \
        "send ₦5,000 to 0123456789"
    value = {"event": "user", "text": "hi", "parse_data": {"entities": [{"value": 5000}]}}
    assert keyring.decrypt_json(keyring.encrypt_json(value, CONTEXT), CONTEXT) == value
    assert keyring.decrypt(keyring.encrypt(b"\x00\xff", CONTEXT), CONTEXT) == b"\x00\xff"


@given(plaintext=st.binary(max_size=2048), context=st.text(min_size=1, max_size=100))
def test_any_bytes_round_trip_under_any_context(plaintext: bytes, context: str) -> None:
    keyring = Keyring(NEW)
    assert keyring.decrypt(keyring.encrypt(plaintext, context), context) == plaintext


def test_sealed_value_names_its_key_and_holds_a_fresh_12_byte_nonce() -> None:
    keyring = Keyring(NEW)
    first, second = keyring.encrypt(b"same", CONTEXT), keyring.encrypt(b"same", CONTEXT)
    assert first != second
    version, kid, nonce, ciphertext = first.split(".")
    assert (version, kid) == ("v1", hashlib.sha256(NEW).hexdigest()[:8]) and kid == keyring.current_kid
    assert len(nonce) == 16 and nonce != second.split(".")[2]  # 12 bytes, unpadded base64url
    assert is_sealed(first) and sealed_kid(first) == kid
    assert NEW_HEX not in first and NEW_HEX[:16] not in repr(keyring)


def test_a_different_key_is_refused_as_unknown() -> None:
    token = Keyring(OLD).encrypt(b"secret", CONTEXT)
    with pytest.raises(UnknownKey, match="ENCRYPTION_OLD_KEYS") as raised:
        Keyring(NEW).decrypt(token, CONTEXT)
    assert raised.value.kid == crypto.key_id(OLD)


def test_the_wrong_key_behind_a_matching_key_id_is_refused_as_tampered() -> None:
    token = Keyring(OLD).encrypt(b"secret", CONTEXT)
    forged = token.replace(crypto.key_id(OLD), crypto.key_id(NEW), 1)
    with pytest.raises(TamperedData):
        Keyring(NEW).decrypt(forged, CONTEXT)


@pytest.mark.parametrize("position", [3, 5, 12, 30, -20, -2, -1])  # key id, nonce, ciphertext, tag
def test_any_edited_character_is_refused(position: int) -> None:
    keyring = Keyring(NEW)
    token = keyring.encrypt(b"balance 45320.50", CONTEXT)
    for replacement in "AQgw":
        edited = token[:position] + replacement + (token[position + 1:] if position != -1 else "")
        if edited != token:
            with pytest.raises(CryptoError):
                keyring.decrypt(edited, CONTEXT)


def test_a_truncated_value_is_refused() -> None:
    keyring = Keyring(NEW)
    token = keyring.encrypt(b"balance 45320.50", CONTEXT)
    for cut in (1, 4, 10):
        with pytest.raises(CryptoError):
            keyring.decrypt(token[:-cut], CONTEXT)


def test_a_ciphertext_moved_to_another_user_field_or_position_is_refused() -> None:
    keyring = Keyring(NEW)
    token = keyring.encrypt_text("EAAG-bank-token", field_context("profiles", "a1" * 32, "bank_token"))
    for elsewhere in (field_context("profiles", "b2" * 32, "bank_token"),
                      field_context("profiles", "a1" * 32, "other_field"),
                      field_context("conversations", "a1" * 32, "events.0")):
        with pytest.raises(TamperedData, match="moved to another record"):
            keyring.decrypt(token, elsewhere)


@pytest.mark.parametrize("value", ["plain text", "v1.abcdefgh.xx.yy", "",
                                   "v2.0011aabb.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"])
def test_something_that_is_not_a_sealed_value_is_malformed(value: str) -> None:
    with pytest.raises(MalformedCiphertext):
        Keyring(NEW).decrypt(value, CONTEXT)


def test_an_empty_context_is_refused() -> None:
    with pytest.raises(ValueError, match="context"):
        Keyring(NEW).encrypt(b"x", "")


def test_error_messages_carry_neither_plaintext_nor_key() -> None:
    keyring = Keyring(NEW)
    token = keyring.encrypt_text("08031234567", CONTEXT)
    for call in (lambda: keyring.decrypt(token, "elsewhere"), lambda: Keyring(OLD).decrypt(token, CONTEXT)):
        with pytest.raises(CryptoError) as raised:
            call()
        assert "08031234567" not in str(raised.value) and NEW_HEX not in str(raised.value)


def test_sealed_fields_finds_values_in_nested_documents_and_lists() -> None:
    keyring = Keyring(NEW)
    token = keyring.encrypt(b"x", CONTEXT)
    document = {"_id": token, "sender": token, "plain": "hello", "events": ["not sealed", token],
                "bank": {"token": token, "name": "GTBank"}}
    assert list(sealed_fields(document)) == [("sender", token), ("events.1", token), ("bank.token", token)]


# --------------------------------------------------------------------- rotation and the environment


def test_rotation_old_key_opens_new_key_seals() -> None:
    old_token = Keyring(OLD).encrypt_text("old secret", CONTEXT)
    keyring = Keyring.from_env({"ENCRYPTION_KEY": NEW_HEX, "ENCRYPTION_OLD_KEYS": f" {OLD_HEX.upper()} ,"})
    assert keyring.kids == (crypto.key_id(NEW), crypto.key_id(OLD))
    assert keyring.decrypt_text(old_token, CONTEXT) == "old secret"
    assert sealed_kid(keyring.encrypt_text("new secret", CONTEXT)) == crypto.key_id(NEW)
    rotated = keyring.reencrypt(old_token, CONTEXT)
    assert keyring.is_current(rotated) and Keyring(NEW).decrypt_text(rotated, CONTEXT) == "old secret"
    assert keyring.reencrypt(rotated, CONTEXT) == rotated


@pytest.mark.parametrize(
    ("environ", "message"),
    [({"ENCRYPTION_KEY": "abc123"}, "ENCRYPTION_KEY must be 64 hexadecimal characters"),
     ({"ENCRYPTION_KEY": "z" * 64}, "ENCRYPTION_KEY must be 64 hexadecimal characters"),
     ({"ENCRYPTION_KEY": NEW_HEX, "ENCRYPTION_OLD_KEYS": f"{OLD_HEX},nothex"}, "ENCRYPTION_OLD_KEYS entry 2"),
     ({"ENCRYPTION_KEY": NEW_HEX, "ENVIRONMENT": "staging"}, "ENVIRONMENT='staging' is unknown")],
)
def test_malformed_keys_name_the_variable_not_the_value(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        Keyring.from_env(environ)
    assert "nothex" not in str(raised.value) and "abc123" not in str(raised.value)


def test_development_without_a_key_uses_one_throwaway_key_and_says_so_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(crypto, "_throwaway_key", None)
    with caplog.at_level(logging.WARNING, logger="banking.crypto"):
        first, second = Keyring.from_env({}), Keyring.from_env({"ENVIRONMENT": "development"})
    assert first.current_kid == second.current_kid
    warnings = [r.getMessage() for r in caplog.records if "throwaway" in r.getMessage()]
    assert len(warnings) == 1 and "unreadable after a restart" in warnings[0]
    assert crypto._throwaway_key is not None and crypto._throwaway_key.hex() not in caplog.text
    assert first.decrypt(second.encrypt(b"x", CONTEXT), CONTEXT) == b"x"


@pytest.mark.parametrize(
    ("key", "reason"),
    [("00" * 32, "single repeated byte"), ("0123456789abcdef" * 4, "repeats a short pattern"),
     ("deadbeef" * 8, "repeats a short pattern"), (bytes(range(32)).hex(), "counting sequence")],
)
def test_production_refuses_default_and_weak_keys(key: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        Keyring.from_env({"ENVIRONMENT": "production", "ENCRYPTION_KEY": key})
    Keyring.from_env({"ENCRYPTION_KEY": key})  # development accepts it (with a warning)


def test_production_refuses_a_missing_key() -> None:
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY is missing"):
        Keyring.from_env({"ENVIRONMENT": "production"})


def test_production_with_real_secrets_starts() -> None:
    require_production_secrets(GOOD_ENV)
    assert production_secret_problems(GOOD_ENV) == []
    assert Keyring.from_env(GOOD_ENV).current_kid == crypto.key_id(NEW)
    assert Settings.from_env(GOOD_ENV).is_production


@pytest.mark.parametrize(
    ("changes", "problem"),
    [({"ENCRYPTION_KEY": ""}, "ENCRYPTION_KEY is missing"),
     ({"ENCRYPTION_KEY": "1234"}, "ENCRYPTION_KEY must be 64 hexadecimal characters"),
     ({"ENCRYPTION_KEY": "0" * 64}, "ENCRYPTION_KEY is a single repeated byte"),
     ({"ENCRYPTION_OLD_KEYS": "short"}, "ENCRYPTION_OLD_KEYS entry 1 must be 64 hexadecimal characters"),
     ({"USER_ID_SALT": ""}, "USER_ID_SALT is missing"),
     ({"USER_ID_SALT": "tiny-salt"}, "USER_ID_SALT is shorter than 16 characters"),
     ({"USER_ID_SALT": DEVELOPMENT_SALT}, "USER_ID_SALT is a default value"),
     ({"USER_ID_SALT": "changeme"}, "USER_ID_SALT is a default value"),
     ({"WHATSAPP_APP_SECRET": ""}, "WHATSAPP_APP_SECRET is missing"),
     ({"WHATSAPP_API_TOKEN": " "}, "WHATSAPP_API_TOKEN is missing"),
     ({"WHATSAPP_VERIFY_TOKEN": ""}, "WHATSAPP_VERIFY_TOKEN is missing"),
     ({"WHATSAPP_VERIFY_TOKEN": "your-verify-token"}, "WHATSAPP_VERIFY_TOKEN is a placeholder value")],
)
def test_production_refuses_each_missing_default_or_weak_secret(changes: dict[str, str], problem: str) -> None:
    environ = {**GOOD_ENV, **changes}
    with pytest.raises(ConfigError, match="refusing to start in production") as raised:
        require_production_secrets(environ)
    assert problem in str(raised.value)
    for value in changes.values():
        if len(value) > 8:
            assert value not in str(raised.value)


def test_production_lists_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        require_production_secrets({"ENVIRONMENT": "production"})
    message = str(raised.value)
    for name in ("ENCRYPTION_KEY", "USER_ID_SALT", "WHATSAPP_APP_SECRET", "WHATSAPP_API_TOKEN",
                 "WHATSAPP_VERIFY_TOKEN"):
        assert f"{name} is missing" in message


def test_development_does_not_demand_production_secrets() -> None:
    require_production_secrets({})
    require_production_secrets({"ENVIRONMENT": "dev"})
    assert "USER_ID_SALT is missing" in production_secret_problems({})


def test_settings_read_environment_and_retention() -> None:
    settings = Settings.from_env({"ENVIRONMENT": "Production", "CONVERSATION_RETENTION_DAYS": "90"})
    assert settings.is_production and settings.conversation_retention_days == 90
    assert Settings.from_env({}).conversation_retention_days is None and not Settings().is_production
    with pytest.raises(ConfigError, match="CONVERSATION_RETENTION_DAYS"):
        Settings.from_env({"CONVERSATION_RETENTION_DAYS": "0"})


# --------------------------------------------------------------------- scripts/reencrypt.py


def _seed(db: Any, keyring: Keyring) -> dict[str, str]:
    """Sealed fields the way the tracker store and a bank provider would store them."""
    key = "c3" * 32
    db["conversations"].insert_one({
        "_id": key,
        "sender": keyring.encrypt_text("2348031234567", field_context("conversations", key, "sender")),
        "events": [keyring.encrypt_json({"event": "user", "text": f"message {i}"},
                                        field_context("conversations", key, f"events.{i}")) for i in range(3)],
        "event_count": 3,
    })
    db["profiles"].insert_one({"_id": key, "bank": "gtbank", "link": {
        "token": keyring.encrypt_text("EAAG-live-token-123", field_context("profiles", key, "link.token"))}})
    return {"sender": "2348031234567", "token": "EAAG-live-token-123", "text": "message 1"}


def _kids(db: Any) -> set[str]:
    return {sealed_kid(token) for name in db.list_collection_names() if name not in ("audit", "audit_head")
            for document in db[name].find({}) for _, token in sealed_fields(document)}


def _sealed_count(db: Any) -> int:
    return sum(1 for name in db.list_collection_names() if name not in ("audit", "audit_head")
               for document in db[name].find({}) for _ in sealed_fields(document))


def test_reencrypt_moves_every_sealed_value_to_the_newest_key_and_is_idempotent(
        db: Any, clock: Any, capsys: pytest.CaptureFixture[str]) -> None:
    service = BankingService(db, SandboxProvider(), Settings(user_id_salt="test-salt"), clock=clock,
                             keyring=Keyring(OLD))
    service.connect_bank("a1" * 32, "gtbank")  # a sealed token and an imported history, under the old key
    plaintexts = _seed(db, Keyring(OLD))
    audit_before = db["audit"].find({})
    history = db["transactions"].count_documents({})
    total = _sealed_count(db)
    assert total == 5 + 1 + 2 * history
    environ = {"ENCRYPTION_KEY": NEW_HEX, "ENCRYPTION_OLD_KEYS": OLD_HEX}

    assert reencrypt_main(["--dry-run"], environ, db=db) == 0
    assert f"{total} to re-encrypt" in capsys.readouterr().out and _kids(db) == {crypto.key_id(OLD)}

    assert reencrypt_main([], environ, db=db) == 0
    output = capsys.readouterr().out
    assert "conversations: 1 documents, 4 sealed values: 4 re-encrypted" in output
    assert "profiles: 2 documents, 1 sealed values: 1 re-encrypted" in output
    assert f"transactions: {history} documents, {2 * history} sealed values: {2 * history} re-encrypted" in output
    assert not any(line.startswith("audit") for line in output.splitlines())
    assert not any(text in output for text in plaintexts.values())
    assert _kids(db) == {crypto.key_id(NEW)}
    new_only = Keyring(NEW)
    conversation = db["conversations"].find_one({})
    assert new_only.decrypt_json(conversation["events"][1], field_context(
        "conversations", conversation["_id"], "events.1")) == {"event": "user", "text": "message 1"}
    assert db["audit"].find({}) == audit_before

    assert reencrypt_main([], environ, db=db) == 0
    assert f"0 re-encrypted, {total} already current, 0 unreadable" in capsys.readouterr().out


def test_reencrypt_leaves_unreadable_values_alone_and_fails(db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(db, Keyring(OLD))
    moved = db["profiles"].find_one({})["link"]["token"]
    db["profiles"].insert_one({"_id": "someone-else", "link": {"token": moved}})
    assert reencrypt_main([], {"ENCRYPTION_KEY": NEW_HEX, "ENCRYPTION_OLD_KEYS": OLD_HEX}, db=db) == 1
    assert "1 unreadable" in capsys.readouterr().out
    assert db["profiles"].find_one({"_id": "someone-else"})["link"]["token"] == moved


@pytest.mark.parametrize(
    ("environ", "message"),
    [({}, "ENCRYPTION_KEY is unset"), ({"ENCRYPTION_KEY": NEW_HEX}, "MONGODB_URI is unset")],
)
def test_reencrypt_refuses_to_start_without_a_key_or_a_database(
        environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert reencrypt_main([], environ) == 2
    assert message in capsys.readouterr().err
