"""50 users sending 20 messages each at the same time, through the channel over real HTTP: nothing
lost, each user's messages handled in order, each reply to its own user only."""

from __future__ import annotations

from checks.reliability.concurrency import concurrency


async def test_fifty_users_at_once_lose_nothing_keep_order_and_never_cross_talk() -> None:
    outcome = await concurrency(users=50, messages_per_user=20)
    assert outcome.problems == []
    figures = outcome.figures
    assert figures["messages handed to the bot"] == figures["replies delivered"] == 1000
    assert figures["lost messages"] == figures["replies to the wrong user"] == figures["5xx responses"] == 0
    assert figures["users whose replies arrived in order"] == 50
