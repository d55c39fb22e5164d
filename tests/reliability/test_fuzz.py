"""Whatever reaches the webhook (random JSON, Meta-shaped payloads with missing or wrong-typed fields,
random bytes, huge or deeply nested bodies; signed or not), the answer is never a 5xx and the channel
keeps working. scripts/reliability_report.py runs 10,000 inputs; this runs 600."""

from __future__ import annotations

import json
import logging

from banking.store import in_memory_database
from checks.reliability.common import captured_logs, served_channel
from checks.reliability.fuzzing import fuzz, fuzz_inputs
from checks.whatsapp_fakes import RecordingAgent, load_payload, text_webhook
from connectors.whatsapp.inbound import UnexpectedPayload, parse_webhook
from connectors.whatsapp.store import STATUS_COLLECTION


async def test_fuzzed_webhooks_never_get_a_5xx_and_the_server_stays_up() -> None:
    outcome = await fuzz(count=600)
    assert outcome.problems == []
    figures = outcome.figures
    assert figures["fuzz inputs"] == 600 and figures["5xx responses"] == 0
    assert figures["crashes in background work"] == 0 and figures["valid message afterwards handled"] == 1
    statuses = figures["answers by status"]
    assert {200, 400, 401, 403} <= set(statuses)  # every kind of input was generated
    assert figures["messages that reached the bot"] > 0


def test_the_generator_covers_the_shapes_it_promises() -> None:
    inputs = fuzz_inputs(300, seed=11)
    modes = {mode for _, mode in inputs}
    assert modes == {"valid", "none", "wrong", "garbage"}
    assert any(len(body) > 100_000 for body, _ in inputs)
    parsed = 0
    for body, _ in inputs:
        try:
            parse_webhook(json.loads(body))
            parsed += 1
        except (ValueError, RecursionError, UnexpectedPayload):
            pass
    assert parsed > 50  # many inputs get past the JSON and envelope checks


async def test_a_status_no_datetime_can_hold_does_not_cost_the_rest_of_the_batch() -> None:
    """Found by the fuzzer: a delivery status with a timestamp past year 9999 used to crash the task
    recording the batch, so the statuses after it were lost."""
    payload = load_payload("statuses_delivered")
    statuses = payload["entry"][0]["changes"][0]["value"]["statuses"]
    statuses[0]["timestamp"] = "99999999999999999"
    statuses.append(load_payload("statuses_failed_131047")["entry"][0]["changes"][0]["value"]["statuses"][0])
    database = in_memory_database()
    with captured_logs("connectors", level=logging.WARNING) as records:
        async with served_channel(database=database) as (graph, channel, server):
            assert (await server.post(payload))[0] == 200
            await server.settle()
    assert [record["status"] for record in database[STATUS_COLLECTION].find({})] == ["failed"]
    assert not any(record.exc_info for record in records)
    assert any("could not be stored" in record.getMessage() for record in records)


async def test_a_message_from_an_unusable_sender_id_is_skipped() -> None:
    agent = RecordingAgent()
    async with served_channel(agent=agent) as (graph, channel, server):
        assert (await server.post(text_webhook("+", "wamid.plus", "hi")))[0] == 200
        assert (await server.post(text_webhook("2348031234567", "wamid.ok", "hello")))[0] == 200
        await server.settle()
    assert agent.texts == ["hello"]
