"""Parse latency of the trained NLU model, per message, on the held-out set.

    .venv/bin/python scripts/benchmark_parse.py [models/banking.tar.gz] [--rounds 3]

Prints median and p95 milliseconds of `Agent.parse_message` (the whole NLU
pipeline: spaCy, featurizers, DIET, entity ruler, EntityResolver, fallback).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from rasa.core.agent import Agent
from rasa.shared.nlu.training_data.loading import load_data


async def measure(model: str, rounds: int) -> list[float]:
    agent = Agent.load(model)
    texts = [m.get("text") for m in load_data("tests/nlu").intent_examples]
    for text in texts[:20]:  # warm-up: first calls build TensorFlow graphs
        await agent.parse_message(text)
    timings = []
    for _ in range(rounds):
        for text in texts:
            start = time.perf_counter()
            await agent.parse_message(text)
            timings.append((time.perf_counter() - start) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", default="models/banking.tar.gz")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    timings = asyncio.run(measure(args.model, args.rounds))
    p95 = statistics.quantiles(timings, n=20)[-1]
    print(f"parse latency over {len(timings)} messages: median {statistics.median(timings):.1f} ms, "
          f"p95 {p95:.1f} ms, max {max(timings):.1f} ms")


if __name__ == "__main__":
    main()
