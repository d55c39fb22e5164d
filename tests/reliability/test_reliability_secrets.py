"""After a whole conversation (connect, transfer, bill) through the channel, the encrypted tracker
store and the banking core, a dump of every collection of every database shows no phone number, no
message text, no account or meter number and no token in clear."""

from __future__ import annotations

from reliability_scenarios import (
    KEY_HEX,
    PHONE,
    RECIPIENT,
    SALT,
    base64_forms,
    dump_databases,
    new_bank,
    realistic_wamid,
    secrets_conversation,
)

from banking.crypto import Keyring, field_context, is_sealed
from banking.identity import user_key
from banking.sandbox import SandboxProvider
from banking.store import in_memory_database
from connectors.whatsapp_store import INBOUND_COLLECTION


async def test_a_full_conversation_leaves_nothing_readable_at_rest() -> None:
    outcome = await secrets_conversation()
    assert outcome.problems == []
    figures = outcome.figures
    assert figures["replies delivered"] == 6 and figures["collections dumped"] >= 8
    assert figures["found in clear"] == 0 and figures["secrets in log records"] == 0


def test_the_bank_keeps_own_numbers_masked_and_destinations_sealed() -> None:
    service = new_bank()
    user = user_key(PHONE, SALT)
    service.connect_bank(user, "gtbank")
    own = [seed.number for seed in SandboxProvider().connect(user, "gtbank")]
    transfer = service.prepare_transfer(user, 10_000, "checking", account_number=RECIPIENT, bank="access")
    bill = service.prepare_bill(user, 10_000, "checking", "Ikeja Electric", "45012345678")
    airtime = service.prepare_airtime(user, 10_000, "checking", "MTN", "08031234567")
    for op in (transfer, bill, airtime):
        service.confirm(user, op.op_id)
    dumped, _ = dump_databases({"bank": service._db})
    text = "".join(dumped.values())
    for secret in (*own, RECIPIENT, "45012345678", "08031234567", "8031234567"):
        assert secret not in text
    stored = service._db["profiles"].find_one({"_id": user})["link"]["accounts"]
    assert [stored[kind]["number"] for kind in ("checking", "savings")] == ["******" + n[-4:] for n in own]
    assert [a.masked_number for a in service.balances(user)] == ["******" + n[-4:] for n in own]
    params = service._db["operations"].find_one({"_id": transfer.op_id})["params"]
    assert is_sealed(params["account_number"]) and params["bank"] == "Access Bank"
    context = field_context("operations", transfer.op_id, "params.account_number")
    assert Keyring(bytes.fromhex(KEY_HEX)).decrypt_text(params["account_number"], context) == RECIPIENT


def test_the_scan_finds_a_planted_secret() -> None:
    """The check itself works: a number stored in clear, or base64-encoded, is found."""
    database = in_memory_database()
    database["leaky"].insert_one({"_id": 1, "note": f"call {PHONE}", "id": realistic_wamid(PHONE, 1)})
    dumped, documents = dump_databases({"planted": database})
    assert documents == 1 and PHONE in dumped[("planted", "leaky")]
    assert any(form in dumped[("planted", "leaky")] for form in base64_forms(PHONE))


async def test_stored_message_ids_do_not_encode_the_phone_number() -> None:
    outcome = await secrets_conversation()
    assert outcome.figures["phone number base64-encoded in stored message ids"] == "nowhere", INBOUND_COLLECTION
