"""After a whole conversation (connect, transfer, bill) through the channel, the encrypted tracker
store and the banking core, a dump of every collection of every database shows no phone number, no
message text, no account or meter number, no holder's name and no token in clear; and the bank's own
records (operations, the link's ledger, the imported history) hold no name, label or narration in clear."""

from __future__ import annotations

import pytest

from banking.crypto import CryptoError, Keyring, field_context, is_sealed
from banking.identity import user_key
from banking.sandbox import SandboxProvider
from banking.store import in_memory_database
from checks.reliability.common import KEY_HEX, SALT, new_bank
from checks.reliability.secrets_at_rest import (
    METER,
    PHONE,
    RECIPIENT,
    base64_forms,
    dump_databases,
    realistic_wamid,
    secrets_conversation,
)
from connectors.whatsapp.store import INBOUND_COLLECTION


async def test_a_full_conversation_leaves_nothing_readable_at_rest() -> None:
    outcome = await secrets_conversation()
    assert outcome.problems == []
    figures = outcome.figures
    assert figures["replies delivered"] == 6 and figures["collections dumped"] >= 8
    assert figures["found in clear"] == 0 and figures["secrets in log records"] == 0


def test_the_bank_keeps_own_numbers_masked_and_destinations_sealed() -> None:
    """A transfer, a bill and airtime, each confirmed right after it was held (a newer hold would
    supersede an open one): own numbers are stored masked; the destination, its holder, the
    parameters, the receipt and the ledger's narration are sealed, each to its own place."""
    service = new_bank()
    keyring = Keyring(bytes.fromhex(KEY_HEX))
    user = user_key(PHONE, SALT)
    service.connect_bank(user, "gtbank")
    own = [seed.number for seed in SandboxProvider().connect(user, "gtbank")]
    ops = []
    for prepare in (
        lambda: service.prepare_transfer(user, 10_000, "checking", account_number=RECIPIENT, bank="access"),
        lambda: service.prepare_bill(user, 10_000, "checking", "Ikeja Electric", METER),
        lambda: service.prepare_airtime(user, 10_000, "checking", "MTN", "08031234567"),
    ):
        op = prepare()
        service.confirm(user, op.op_id)
        ops.append(op)
    transfer, bill, airtime = ops
    operations = {op.op_id: service._db["operations"].find_one({"_id": op.op_id}) for op in ops}
    assert [operations[op.op_id]["status"] for op in ops] == ["executed"] * 3
    holders = [transfer.holder_name, bill.holder_name]
    assert all(holders) and airtime.holder_name is None

    def opened(collection: str, document_id: str, path: str, value: object) -> str:
        assert is_sealed(value), f"{collection} {path} is stored in clear"
        return keyring.decrypt_text(value, field_context(collection, document_id, path))

    # The transfer's parameters, the bank's name included, open only where they are stored.
    params = operations[transfer.op_id]["params"]
    assert opened("operations", transfer.op_id, "params.bank", params["bank"]) == "Access Bank"
    assert opened("operations", transfer.op_id, "params.account_number", params["account_number"]) == RECIPIENT
    assert opened("operations", transfer.op_id, "params.holder_name", params["holder_name"]) == transfer.holder_name
    for elsewhere in (field_context("operations", transfer.op_id, "params.account_number"),
                      field_context("operations", bill.op_id, "params.bank")):
        with pytest.raises(CryptoError):
            keyring.decrypt_text(params["bank"], elsewhere)
    assert opened("operations", bill.op_id, "params.customer_ref", operations[bill.op_id]["params"]["customer_ref"]) \
        == METER
    assert opened("operations", airtime.op_id, "params.phone", operations[airtime.op_id]["params"]["phone"]) \
        == "08031234567"
    for op in ops:
        stored = operations[op.op_id]
        assert all(is_sealed(value) for value in stored["params"].values())
        assert opened("operations", op.op_id, "destination_label", stored["destination_label"]) \
            == op.destination_label
        assert is_sealed(stored["result"])
        if op.holder_name is not None:
            assert opened("operations", op.op_id, "holder_name", stored["holder_name"]) == op.holder_name

    # The ledger on the link: what was paid to whom, sealed under the customer's document.
    link = service._db["profiles"].find_one({"_id": user})["link"]
    ledger = link["ledger"]
    assert set(ledger) == {op.op_id for op in ops}
    narrations = {op.op_id: opened("profiles", user, f"link.ledger.{op.op_id}.narration",
                                   ledger[op.op_id]["narration"]) for op in ops}
    merchants = {op.op_id: opened("profiles", user, f"link.ledger.{op.op_id}.merchant", ledger[op.op_id]["merchant"])
                 for op in ops}
    for op in ops:
        assert opened("profiles", user, f"link.ledger.{op.op_id}.destination_label",
                      ledger[op.op_id]["destination_label"]) == op.destination_label
    assert transfer.holder_name in narrations[transfer.op_id] and "ACCESS BANK" in narrations[transfer.op_id]
    assert merchants[transfer.op_id] == transfer.holder_name
    assert METER not in narrations[bill.op_id] and METER[-4:] in narrations[bill.op_id]
    assert "08031234567" not in narrations[airtime.op_id]

    # The imported history's narrations are sealed too.
    history = list(service._db["transactions"].find({"user": user}))
    assert history
    history_narrations = {opened("transactions", entry["_id"], "narration", entry["narration"]) for entry in history}

    dumped, _ = dump_databases({"bank": service._db})
    text = "".join(dumped.values())
    lowered = text.lower()
    numbers = (*own, RECIPIENT, METER, "08031234567", "8031234567", "2348031234567")
    for secret in numbers:
        assert secret not in text
    # Names, labels and narrations hold spaces, which no sealed value does: looked for in any case.
    for secret in (*holders, *(op.destination_label for op in ops), *narrations.values(), *history_narrations,
                   "Access Bank"):
        assert secret.lower() not in lowered, secret
    assert [link["accounts"][kind]["number"] for kind in ("checking", "savings")] == ["******" + n[-4:] for n in own]
    assert [a.masked_number for a in service.balances(user)] == ["******" + n[-4:] for n in own]


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
