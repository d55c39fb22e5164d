"""Secrets at rest: after a realistic conversation, no phone number, account number or token is stored in clear."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from typing import Any

import yaml
from rasa.core.channels.channel import UserMessage
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from banking.crypto import Keyring
from banking.identity import user_key
from banking.models import Receipt
from banking.sandbox import SandboxProvider
from banking.service import BankingService
from banking.store import in_memory_database
from checks.reliability.common import KEY_HEX, SALT, Outcome, captured_logs, new_bank, served_channel
from checks.whatsapp_fakes import (
    APP_SECRET,
    TOKEN,
    VERIFY_TOKEN,
    RecordingAgent,
    load_payload,
    text_webhook,
)
from connectors.tracker_store import EncryptedMongoTrackerStore

PHONE = "2348031234567"
RECIPIENT = "0123456789"
METER = "45012345678"
CONVERSATION = (
    "Hello, please connect my GTBank account",
    f"Send 5000 naira to {RECIPIENT[:3]} {RECIPIENT[3:6]} {RECIPIENT[6:]} at Access Bank",
    "YES",
    f"Pay 2500 for my Ikeja Electric prepaid meter {METER}",
    "YES",
    "What's my balance now?",
)
DOMAIN_YAML = """
version: "3.1"
intents: [greet, connect_bank, transfer_money, pay_bill, affirm, check_balance]
entities: [account_number, amount, bank, meter_number]
slots:
  account_number: {type: any, mappings: [{type: custom}]}
  amount: {type: any, mappings: [{type: custom}]}
  bank: {type: any, mappings: [{type: custom}]}
  meter_number: {type: any, mappings: [{type: custom}]}
  pending_op_id: {type: any, mappings: [{type: custom}]}
responses:
  utter_greet: [{text: "Hi!"}]
"""


def realistic_wamid(phone: str, serial: int) -> str:
    """A message id shaped like Meta's: base64 of a record that starts with the sender's number."""
    record = b"\x1c\x18\x0d" + phone.encode() + b"\x15\x02\x00\x12\x18\x14" + f"3EB0{serial:016X}".encode()
    return "wamid." + base64.b64encode(record).decode()


class ScriptedBot:
    """Stands in for Rasa + the action server: understands the scripted conversation, keeps the
    conversation in the encrypted tracker store and calls the banking core, as the real ones do."""

    def __init__(self, bank: BankingService, store: EncryptedMongoTrackerStore, domain: Domain) -> None:
        self.bank, self.store, self.domain = bank, store, domain

    async def handle(self, message: UserMessage) -> None:
        sender = message.sender_id
        tracker = await self.store.retrieve(sender)
        if tracker is None:
            tracker = DialogueStateTracker(sender, self.domain.slots)
            for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
                tracker.update(event)
        text = message.text or ""
        intent, slots, reply = await self._act(user_key(sender, SALT), text, tracker)
        tracker.update(UserUttered(text, intent={"name": intent, "confidence": 1.0},
                                   parse_data={"intent": {"name": intent, "confidence": 1.0}, "text": text,
                                               "entities": [{"entity": k, "value": v} for k, v in slots.items()]},
                                   input_channel="whatsapp", message_id=message.message_id,
                                   metadata=message.metadata))
        for name, value in slots.items():
            tracker.update(SlotSet(name, value))
        tracker.update(ActionExecuted("action_reply"))
        tracker.update(BotUttered(reply))
        tracker.update(ActionExecuted("action_listen"))
        await self.store.save(tracker)
        await message.output_channel.send_text_message(sender, reply)

    async def _act(self, user: str, text: str, tracker: DialogueStateTracker) -> tuple[str, dict[str, Any], str]:
        lowered = text.lower()
        if "connect" in lowered:
            profile = await asyncio.to_thread(self.bank.connect_bank, user, "gtbank")
            lines = ", ".join(f"{a.name} {a.masked_number}" for a in profile.accounts)
            return "connect_bank", {"bank": "gtbank"}, f"Connected {profile.bank}: {lines}."
        if lowered.startswith("send"):
            sent = re.search(r"send (\d+) naira to ([\d ]+) at", lowered)
            assert sent, lowered
            amount, number = sent.groups()
            number = number.replace(" ", "")
            op = await asyncio.to_thread(self.bank.prepare_transfer, user, int(amount) * 100, "checking",
                                         account_number=number, bank="access")
            return ("transfer_money", {"account_number": number, "amount": amount, "pending_op_id": op.op_id},
                    f"Send ₦{amount} to {op.destination_label}? Reply YES to confirm.")
        if lowered.startswith("pay"):
            paid = re.search(r"pay (\d+) .* meter (\d+)", lowered)
            assert paid, lowered
            amount, meter = paid.groups()
            op = await asyncio.to_thread(self.bank.prepare_bill, user, int(amount) * 100, "checking",
                                         "Ikeja Electric", meter)
            return ("pay_bill", {"meter_number": meter, "amount": amount, "pending_op_id": op.op_id},
                    f"Pay ₦{amount} to {op.destination_label}? Reply YES to confirm.")
        if lowered == "yes":
            receipt = await asyncio.to_thread(self.bank.confirm, user, tracker.get_slot("pending_op_id"))
            assert isinstance(receipt, Receipt), receipt  # the sandbox bank settles at once
            return "affirm", {"pending_op_id": None}, f"Done. Reference {receipt.reference}."
        balances = await asyncio.to_thread(self.bank.balances, user)
        return "check_balance", {}, "; ".join(f"{a.name} {a.masked_number}: {a.balance_kobo}" for a in balances)


def dump_databases(databases: dict[str, Any]) -> tuple[dict[tuple[str, str], str], int]:
    """Every collection of every database as JSON text, keyed by (database, collection); and the document count."""
    dumped, documents = {}, 0
    for label, database in databases.items():
        for name in sorted(database.list_collection_names()):
            found = list(database[name].find({}))
            documents += len(found)
            dumped[(label, name)] = json.dumps(found, default=str, ensure_ascii=False)
    return dumped, documents


async def secrets_conversation() -> Outcome:
    """A whole conversation (connect, transfer, bill) through the channel, the encrypted tracker store
    and the banking core; then no database may show the number, the texts, account numbers or tokens."""
    outcome = Outcome("secrets at rest after a full conversation")
    started = time.perf_counter()
    keyring = Keyring(bytes.fromhex(KEY_HEX))
    channel_db, tracker_db = in_memory_database(), in_memory_database()
    bank = new_bank()
    domain = Domain.from_dict(yaml.safe_load(DOMAIN_YAML))
    store = EncryptedMongoTrackerStore(domain, database=tracker_db, keyring=keyring,
                                       environ={"USER_ID_SALT": SALT, "ENCRYPTION_KEY": KEY_HEX})
    bot = ScriptedBot(bank, store, domain)
    agent = RecordingAgent()
    agent.responder = bot.handle
    with captured_logs("connectors", "banking", "actions", level=logging.DEBUG) as records:
        async with served_channel(agent=agent, database=channel_db) as (graph, channel, server):
            for serial, text in enumerate(CONVERSATION):
                status, _ = await server.post(text_webhook(PHONE, realistic_wamid(PHONE, serial), text))
                outcome.check(status == 200, f"message {serial} answered {status}")
                await server.settle(timeout=10)
            for serial in range(len(graph.delivered())):  # Meta's delivery receipts for the replies
                receipt = load_payload("statuses_delivered")
                stored = receipt["entry"][0]["changes"][0]["value"]["statuses"][0]
                stored.update({"id": realistic_wamid(PHONE, 100 + serial), "recipient_id": PHONE})
                await server.post(receipt)
            await server.settle(timeout=10)
            replies = graph.delivered_texts()
    user = user_key(PHONE, SALT)
    own_numbers = [seed.number for seed in SandboxProvider().connect(user, "gtbank")]
    secrets = {
        "phone number": [PHONE, "+" + PHONE, "0" + PHONE[3:], PHONE[3:]],
        "message texts": [text for text in CONVERSATION if len(text) >= 8],
        "recipient's account number": [RECIPIENT, f"{RECIPIENT[:3]} {RECIPIENT[3:6]} {RECIPIENT[6:]}"],
        "own account numbers": own_numbers,
        "meter number": [METER],
        "recipient's and meter holder's names": [
            SandboxProvider().name_enquiry(RECIPIENT, "Access Bank"),
            SandboxProvider().validate_biller_ref("Ikeja Electric", METER)],
        "WhatsApp API token": [TOKEN],
        "WhatsApp app secret": [APP_SECRET],
        "WhatsApp verify token": [VERIFY_TOKEN],
        "encryption key": [KEY_HEX, KEY_HEX.upper()],
        "user id salt": [SALT],
    }
    dumped, documents = dump_databases({"channel": channel_db, "tracker store": tracker_db, "bank": bank._db})
    found = [(what, f"{database}.{collection}")
             for what, values in secrets.items() for (database, collection), text in dumped.items()
             if any(value in text for value in values)]
    encoded_phone = base64_forms(PHONE)
    encoded = sorted({f"{database}.{collection}" for (database, collection), text in dumped.items()
                      if any(form in text for form in encoded_phone)})
    logged = sorted({what for what, values in secrets.items()
                     for record in records if any(value in record.getMessage() for value in values)})
    outcome.figures.update({
        "messages in the conversation": len(CONVERSATION),
        "replies delivered": len(replies),
        "databases dumped": 3,
        "collections dumped": len(dumped),
        "documents dumped": documents,
        "bytes dumped": sum(len(text) for text in dumped.values()),
        "kinds of secret looked for": len(secrets),
        "found in clear": len(found),
        "phone number base64-encoded in stored message ids": ", ".join(encoded) or "nowhere",
        "secrets in log records": len(logged),
    })
    outcome.check(len(replies) == len(CONVERSATION), f"{len(replies)} replies for {len(CONVERSATION)} messages")
    outcome.check(any(text.startswith("Done. Reference") for text in replies[2:3]), "the transfer did not run")
    outcome.check(any(text.startswith("Done. Reference") for text in replies[4:5]), "the bill was not paid")
    for what, where in found:
        outcome.problems.append(f"{what} in clear in {where}")
    for what in logged:
        outcome.problems.append(f"{what} in a log record")
    outcome.seconds = time.perf_counter() - started
    return outcome


def base64_forms(text: str) -> list[str]:
    """What base64 of any data holding ``text`` must contain, whatever the text's alignment: the
    encoding of its whole 3-byte groups, starting at each of its first three bytes."""
    data = text.encode()
    return [base64.b64encode(data[start:start + (len(data) - start) // 3 * 3]).decode() for start in range(3)]
