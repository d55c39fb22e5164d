"""The bench's own arithmetic and bookkeeping (scripts/bench.py): arrivals, percentiles, the mix, matching
answers to customers. The bench itself is `make bench`, not a test."""

from __future__ import annotations

import asyncio
import random

import pytest

from scripts.bench import (
    CYCLE,
    ONBOARDING,
    Channel,
    Crowd,
    Customer,
    Load,
    Reply,
    Tap,
    Turn,
    arrival_times,
    compare,
    highest_sustainable,
    others_cpu,
    percentile,
    summarise,
    whatsapp_reply,
)


def test_percentiles_are_measured_values_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 95) is None


def test_arrivals_are_poisson_at_the_rate_and_repeatable() -> None:
    times = arrival_times(40, 200, random.Random(3))
    assert times == sorted(times) and 0 < times[0] and times[-1] < 200
    assert len(times) / 200 == pytest.approx(40, rel=0.05)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert sum(gaps) / len(gaps) == pytest.approx(1 / 40, rel=0.05)
    assert times == arrival_times(40, 200, random.Random(3))


def turn(sent: float, latency: float | None, kind: str = "balance", error: str | None = None) -> Turn:
    t = Turn("2348100000000", kind, sent, error=error)
    if latency is not None:
        t.replies.append(Reply(sent + latency, "Your balances"))
    return t


def test_a_step_summary_counts_answers_losses_and_errors() -> None:
    turns = [turn(i * 0.1, 0.05) for i in range(19)] + [turn(1.9, None, "transfer", error="webhook POST failed")]
    summary = summarise(turns, rate=10, started=0.0, duration=2.0)
    assert summary["sent"] == 20 and summary["answered"] == 19 and summary["lost"] == 1
    assert summary["p50_ms"] == summary["p95_ms"] == 50.0
    assert summary["errors"] == 1 and summary["error_kinds"] == {"webhook POST failed": 1}
    assert summary["throughput_per_s"] == 9.5  # 19 answers over the 2 s of the step
    assert summary["mix"] == {"balance": 19, "transfer": 1}


def test_the_highest_sustainable_rate_needs_every_lower_rate_within_one_second() -> None:
    steps = [{"rate": 5, "p95_ms": 200, "lost": 0}, {"rate": 10, "p95_ms": 900, "lost": 0},
             {"rate": 20, "p95_ms": 1500, "lost": 0}, {"rate": 40, "p95_ms": 800, "lost": 0}]
    assert highest_sustainable(steps) == 10
    assert highest_sustainable([{"rate": 5, "p95_ms": 100, "lost": 2}]) is None
    assert highest_sustainable([]) is None


def test_whatsapp_is_compared_with_rest_at_the_same_rates() -> None:
    whatsapp = [{"rate": 5, "p50_ms": 110, "p95_ms": 220}, {"rate": 10, "p50_ms": 100, "p95_ms": None}]
    rest = [{"rate": 5, "p50_ms": 100, "p95_ms": 200}]
    assert compare(whatsapp, rest) == [{"rate": 5, "p50_ratio": 1.1, "p95_ratio": 1.1}]


def test_a_customer_connects_then_walks_the_cycle_tapping_what_the_bot_offered() -> None:
    customer = Customer("2348100000000", entry=CYCLE.index(next(s for s in CYCLE if s.kind == "transfer")))
    step, text, tap = customer.request()
    assert (step.kind, text, tap) == ("connect", "connect my bank", None)
    customer.finished(Turn(customer.wa_id, "connect", 0, [Reply(0.1, "Which bank?", (("/inform{\"bank\":\"GTBank\"}",
                                                                              "GTBank"),), "wamid.1", "list_reply")]),
                      ok=True)
    step, text, tap = customer.request()
    assert (step.kind, text, tap) == ("connect_tap", '/inform{"bank":"GTBank"}', ("list_reply", "wamid.1"))
    customer.finished(Turn(customer.wa_id, step.kind, 0, [Reply(0.1, "GTBank is connected")]), ok=True)
    step, text, tap = customer.request()
    assert step.kind == "transfer" and tap is None
    confirmation = Reply(0.2, "Which account?", (("/inform{\"account_type\":\"checking\"}", "Checking"),), "wamid.2")
    customer.finished(Turn(customer.wa_id, step.kind, 0, [Reply(0.1, "Account name"), confirmation]), ok=True)
    step, text, tap = customer.request()
    assert (step.kind, text, tap) == ("transfer_source", '/inform{"account_type":"checking"}',
                                      ("button_reply", "wamid.2"))
    # The bot did not offer Yes: the customer starts the cycle again instead of tapping nothing.
    customer.finished(Turn(customer.wa_id, step.kind, 0, [Reply(0.3, "Sorry")]), ok=True)
    step, text, tap = customer.request()
    assert step.kind == "transfer" and tap is None


def test_a_surprise_sends_the_customer_back_to_the_start_of_the_cycle() -> None:
    customer = Customer("2348100000000", entry=0, position=len(ONBOARDING) + 3)
    customer.finished(Turn(customer.wa_id, CYCLE[3].kind, 0), ok=False)
    assert customer.next_step() is CYCLE[0]


def test_the_crowd_spaces_each_customers_messages_and_brings_new_ones_when_all_are_busy() -> None:
    crowd = Crowd(spacing=3.5, seed=1)
    first = crowd.new()
    first.last_sent = 10.0
    crowd.idle(first)
    crowd.idle(first)  # idle twice is still once
    assert crowd.pick(now=12.0) is not first  # too soon: a new customer
    assert crowd.pick(now=13.6) is first
    assert crowd.pick(now=20.0) is not first  # picked once, it is no longer idle
    assert len(crowd.customers) == 3


class InstantBot(Channel):
    """Answers every message at once, as the mix expects (or never, when ``silent``)."""

    name = "instant"

    def __init__(self, silent: bool = False) -> None:
        super().__init__()
        self.silent = silent
        self.sent: list[tuple[str, str, Tap | None]] = []

    def send(self, wa_id: str, text: str, tap: Tap | None) -> None:
        self.sent.append((wa_id, text, tap))
        if self.silent:
            return
        loop = asyncio.get_running_loop()
        loop.call_later(0.005, self.on_reply, wa_id, self.answer(text))

    @staticmethod
    def answer(text: str) -> Reply:
        import time

        now = time.perf_counter()
        if text == "connect my bank":
            return Reply(now, "Which bank?", (('/inform{"bank":"GTBank"}', "GTBank"),), "w1", "list_reply")
        if text.startswith('/inform{"bank"'):
            return Reply(now, "GTBank is connected")
        if text.startswith("send"):
            return Reply(now, "Which account?", (('/inform{"account_type":"checking"}', "Checking"),), "w2")
        if "account_type" in text:
            return Reply(now, "Please confirm", (("/affirm", "Yes"), ("/deny", "No")), "w3")
        if text == "/affirm":
            return Reply(now, "Sent!")
        if "debits" in text:
            return Reply(now, "Money out (last week)")
        if "money going" in text:
            return Reply(now, "Your spending")
        return Reply(now, "Your balances")


async def test_open_loop_arrivals_are_all_answered_and_matched() -> None:
    bot = InstantBot()
    load = Load(bot, turn_timeout=2.0, spacing=0.05, seed=2)
    await load.onboard(4, concurrency=2)
    assert all(c.position == len(ONBOARDING) for c in load.crowd.customers.values())
    turns, started = await load.step(rate=100, duration=0.5, rng=random.Random(1))
    summary = summarise(turns, 100, started, 0.5)
    assert summary["lost"] == 0 and summary["errors"] == 0 and summary["answered"] == len(turns) > 20
    assert load.unmatched == 0
    assert summary["p95_ms"] is not None and summary["p95_ms"] < 1000
    assert {"balance", "transfer", "transfer_source", "transfer_yes"} <= set(summary["mix"])


async def test_an_unanswered_message_is_lost_after_the_timeout() -> None:
    load = Load(InstantBot(silent=True), turn_timeout=0.2, spacing=0.05)
    turns, started = await load.step(rate=50, duration=0.1, rng=random.Random(1))
    summary = summarise(turns, 50, started, 0.1)
    assert turns and summary["answered"] == 0 and summary["lost"] == len(turns)


def test_graph_api_bodies_become_replies() -> None:
    buttons = {"type": "interactive", "interactive": {"type": "button", "body": {"text": "Please confirm"},
               "action": {"buttons": [{"type": "reply", "reply": {"id": "/affirm", "title": "Yes"}}]}}}
    rows = {"type": "interactive", "interactive": {"type": "list", "body": {"text": "Which bank?"}, "action": {
        "sections": [{"rows": [{"id": '/inform{"bank":"GTBank"}', "title": "GTBank"}]}]}}}
    assert whatsapp_reply(1.0, "w1", buttons) == Reply(1.0, "Please confirm", (("/affirm", "Yes"),), "w1")
    assert whatsapp_reply(1.0, "w2", rows).tap == "list_reply"
    assert whatsapp_reply(1.0, "w3", {"type": "text", "text": {"body": "Hi"}}).text == "Hi"


def test_other_processes_cpu_is_what_they_used_meanwhile() -> None:
    before = {1: 10.0, 2: 5.0, 3: 1.0}
    after = {1: 12.0, 2: 9.0, 4: 0.5}  # 3 ended, 4 is new
    assert others_cpu(before, after, ours=[2]) == pytest.approx(2.5)
