"""A YES delivered several times (at the same instant, or replayed later) moves the money once: in the
banking core under concurrent confirm() calls, and through the channel's MongoDB dedup."""

from __future__ import annotations

from checks.reliability.idempotency import idempotency_channel, idempotency_core


def test_replayed_confirmations_execute_each_transfer_exactly_once() -> None:
    outcome = idempotency_core(transfers=200, users=20)
    assert outcome.problems == []
    figures = outcome.figures
    assert figures["executions (receipts)"] == figures["held transfers still open at their first YES"] == 200
    assert figures["duplicate deliveries"] >= 200 and figures["of them concurrent (same instant)"] >= 100
    # A customer holds one transfer at a time (a newer hold would supersede the older), yet every one of
    # them stays open until its YES, also while a replay of the previous one arrives.
    assert figures["rounds (one open confirmation per customer)"] == 5
    assert figures["most open confirmations of one customer"] == 1 and figures["superseded confirmations"] == 0
    assert figures["of them replayed after the customer's next hold"] >= 100
    assert figures["double executions"] == figures["lost transfers"] == figures["other answers"] == 0


async def test_redelivered_yes_webhooks_reach_the_bot_once() -> None:
    outcome = await idempotency_channel(yes_messages=100, users=20)
    assert outcome.problems == []
    figures = outcome.figures
    assert figures["handed to the bot"] == figures["transfers executed"] == figures["replies delivered"] == 100
    assert figures["duplicate deliveries"] >= 100
    assert figures["handed on more than once"] == figures["double executions"] == figures["5xx responses"] == 0
