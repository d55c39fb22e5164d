"""Bank links keep a consent record and an encrypted provider token; disconnecting
revokes the consent (the record stays) and deletes the token."""

from __future__ import annotations

import json

from banking.crypto import field_context


def test_linking_records_consent_and_keeps_the_token_only_encrypted(service, user, db):
    (consent,) = service.consents(user)
    assert consent.bank == "GTBank" and consent.revoked_at is None
    assert set(consent.scopes) == {"accounts", "balances", "transactions", "payments"}

    link = db["connections"].find_one({"_id": user})
    token = service._keyring.decrypt_text(link["token"], field_context("connections", user, "token"))
    assert token.startswith("sbx_live_")
    assert token not in json.dumps(list(db["connections"].find({})), default=str)


def test_disconnect_revokes_consent_and_deletes_the_token(service, user, db, clock):
    op = service.prepare_disconnect(user)
    clock.advance(minutes=1)
    service.confirm(user, op.op_id)

    (consent,) = service.consents(user)
    assert consent.revoked_at == clock.now
    assert db["connections"].find_one({"_id": user}) is None


def test_reconnecting_adds_a_new_consent_and_keeps_the_old_one(service, user, clock):
    service.disconnect_bank(user)
    clock.advance(days=1)
    service.connect_bank(user, "zenith")

    newest, oldest = service.consents(user)
    assert (newest.bank, newest.revoked_at) == ("Zenith Bank", None)
    assert oldest.bank == "GTBank" and oldest.revoked_at is not None


def test_each_link_gets_its_own_token(service, user, db):
    first = db["connections"].find_one({"_id": user})["token"]
    service.disconnect_bank(user)
    service.connect_bank(user, "gtbank")
    assert db["connections"].find_one({"_id": user})["token"] != first
