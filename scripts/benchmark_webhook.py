"""WhatsApp reply latency of the whole stack: from Meta's webhook POST to the bot's first reply.

    PYTHONPATH=. RASA_TELEMETRY_ENABLED=false .venv/bin/python scripts/benchmark_webhook.py [-n 50] [--warmup 3]

Starts the real stack on free ports of 127.0.0.1 (the fake Meta in this process, the
action server and ``rasa run`` with the trained model and the WhatsApp channel; see
``checks/stack.py``), connects one user to GTBank through the channel, then asks
"what is my balance" N times, one after the other, each a new signed webhook with its
own message id. Each sample runs from the moment the fake Meta starts the webhook POST
to the moment its Graph API accepts the bot's first actual message for that turn (the
read receipt with its typing indicator, sent before it, does not count). The fake Meta
keeps sending sent/delivered status webhooks as Meta does, so they load the bot too.
One user asking 50 questions in a row is over the channel's per-user rate limit
(``RATE_LIMIT_MESSAGES``, 20 a minute), so the benchmark runs the bot with it off
(``RATE_LIMIT_MESSAGES=0``, the setting meant for load tests).
Prints p50, p95 and max in milliseconds and the count; the stack is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import time
from pathlib import Path

from checks.stack import MODEL, STARTUP_TIMEOUT, BotStack, GraphCall, bot_stack, describe

USER = "2348000000001"
QUESTION = "what is my balance"
GTBANK = '/inform{"bank":"GTBank"}'
TURN_TIMEOUT = 60.0
NO_RATE_LIMIT = {"RATE_LIMIT_MESSAGES": "0"}
SETTLE = 0.3  # after the answer, seconds without another bot message before the next question


def is_balance(call: GraphCall) -> bool:
    return call.type == "text" and "Your balances" in call.text and "₦45,320.50" in call.text


async def connect(stack: BotStack) -> None:
    """One connected user: "connect my bank", then GTBank tapped in the list."""
    start = stack.outbox.mark()
    await stack.send(USER, {"type": "text", "text": "connect my bank"})
    calls = await stack.outbox.wait_for(start, lambda c: any(x.type == "list" for x in c), timeout=TURN_TIMEOUT)
    banks = next(call for call in calls if call.type == "list")
    start = stack.outbox.mark()
    await stack.send(USER, {"type": "list_reply", "context_id": banks.id, "id": GTBANK})
    await stack.outbox.wait_for(
        start, lambda c: any("is connected" in x.text for x in c), timeout=TURN_TIMEOUT, quiet=SETTLE
    )


async def ask(stack: BotStack) -> float:
    """Milliseconds from the webhook POST to the first reply message of one balance question."""
    start = stack.outbox.mark()
    posted = time.perf_counter()  # user_sends starts the signed POST at once, in this event loop
    await stack.send(USER, {"type": "text", "text": QUESTION})
    calls = await stack.outbox.wait_for(start, lambda c: any(is_balance(x) for x in c), timeout=TURN_TIMEOUT,
                                        quiet=SETTLE)
    if not is_balance(calls[0]):
        raise RuntimeError(f"the first reply was not the balance: {describe(calls)}")
    return (calls[0].at - posted) * 1000


async def measure(count: int, warmup: int, model: Path, startup_timeout: float) -> list[float]:
    started = time.monotonic()
    async with bot_stack(model, startup_timeout=startup_timeout, environment=NO_RATE_LIMIT) as stack:
        print(f"stack up in {time.monotonic() - started:.0f} s; connecting one user", file=sys.stderr, flush=True)
        await connect(stack)
        for _ in range(warmup):
            await ask(stack)
        timings = []
        for index in range(count):
            timings.append(await ask(stack))
            if (index + 1) % 10 == 0:
                print(f"  {index + 1}/{count}", file=sys.stderr, flush=True)
        stack.check_alive()
    return timings


def percentile(values: list[float], percent: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=50, help="balance questions measured (default 50)")
    parser.add_argument("--warmup", type=int, default=3, help="balance questions asked first, not measured")
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--startup-timeout", type=float, default=STARTUP_TIMEOUT, help="seconds for the stack")
    args = parser.parse_args()
    if args.count < 1 or args.warmup < 0:
        parser.error("--count must be at least 1 and --warmup not negative")
    signal.signal(signal.SIGTERM, _interrupt)  # so `timeout`/`kill` also stop the servers it started
    try:
        timings = asyncio.run(measure(args.count, args.warmup, args.model, args.startup_timeout))
    except KeyboardInterrupt:
        print("interrupted; the stack was stopped", file=sys.stderr)
        return 130
    print(
        f"webhook POST -> first reply (balance question), {len(timings)} messages: "
        f"p50 {statistics.median(timings):.1f} ms, p95 {percentile(timings, 95):.1f} ms, max {max(timings):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
