"""Where the Rasa process spends its time on one customer message: cProfile of ``Agent.handle_message``.

    PYTHONPATH=. RASA_TELEMETRY_ENABLED=false .venv/bin/python scripts/profile_message.py \
        [--model M] [-n 30] [--text "what is my balance"] [--history 0] [--no-patches] [--out results/profile]

Starts the action server on a free loopback port (as ``tests/e2e/e2e_stack.py`` does, with a
throwaway token), loads the model in this process with the project's endpoints (the
encrypted tracker store in memory, the action endpoint on that port), applies the
project's Rasa patches as ``connectors/rasa_server.py`` does (``--no-patches`` leaves Rasa
as installed, for a before/after), connects one customer to GTBank, optionally gives the
conversation ``--history`` earlier turns, then profiles ``-n`` messages. Prints wall time
per message and the functions with the most cumulative and own time; writes the raw
profile (``pstats``) under ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.e2e_stack import (
    HOST,
    MODEL,
    STARTUP_TIMEOUT,
    _wait_until_ready,
    free_port,
    launch,
    rasa_executable,
    server_environment,
    write_endpoints,
)

CUSTOMER = "2348000000099"
GTBANK = '/inform{"bank":"GTBank"}'
FILLER = ("hi", "what can you do", "thanks")  # turns that add events without moving money


async def profile(args: argparse.Namespace) -> int:
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)
    if not args.no_patches:
        from connectors import rasa_patches

        rasa_patches.apply()
    from rasa.core.agent import load_agent
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
    from rasa.core.utils import AvailableEndpoints

    token = secrets.token_hex(32)
    os.environ["ACTION_SERVER_TOKEN"] = token
    for name in ("MONGODB_URI", "ENCRYPTION_KEY", "CHART_BASE_URL", "GROQ_API_KEY"):
        os.environ.pop(name, None)
    action_port = free_port()
    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        workdir = Path(tmp)
        env = server_environment({}, {"ACTION_SERVER_TOKEN": token})
        actions = launch("action server", [rasa_executable(), "run", "actions", "--actions", "actions",
                                           "--port", str(action_port)], env, workdir / "actions.log")
        try:
            await _wait_until_ready([actions], f"http://{HOST}:{action_port}/health",
                                    time.monotonic() + STARTUP_TIMEOUT)
            endpoints = AvailableEndpoints.read_endpoints(str(write_endpoints(workdir, action_port)))
            agent = await load_agent(model_path=str(args.model), endpoints=endpoints)

            async def say(text: str) -> list[dict]:
                output = CollectingOutputChannel()
                await agent.handle_message(UserMessage(text, output, CUSTOMER, input_channel="rest"))
                return output.messages

            await say("connect my bank")
            connected = await say(GTBANK)
            if not any("connected" in (m.get("text") or "") for m in connected):
                print(f"connecting did not work: {connected}", file=sys.stderr)
                return 1
            for index in range(args.history):
                await say(FILLER[index % len(FILLER)])
            for _ in range(3):  # warm-up: first calls load lazily
                await say(args.text)
            tracker = await agent.tracker_store.retrieve(CUSTOMER)
            events = len(tracker.events) if tracker else 0
            profiler = cProfile.Profile()
            timings = []
            for _ in range(args.count):
                started = time.perf_counter()
                profiler.enable()
                await say(args.text)
                profiler.disable()
                timings.append((time.perf_counter() - started) * 1000)
        finally:
            await actions.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    label = "unpatched" if args.no_patches else "patched"
    path = args.out / f"handle_message_{label}_h{args.history}.pstats"
    profiler.dump_stats(str(path))
    print(f"{args.count} x {args.text!r} ({'Rasa as installed' if args.no_patches else 'with the project patches'}, "
          f"{events} events in the session): median {statistics.median(timings):.1f} ms, "
          f"max {max(timings):.1f} ms; profile in {path}")
    for order in ("cumulative", "tottime"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(args.top)
        print(text.getvalue().split("\n", 6)[-1] if args.quiet_header else text.getvalue())
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("-n", "--count", type=int, default=30)
    parser.add_argument("--text", default="what is my balance")
    parser.add_argument("--history", type=int, default=0, help="earlier turns given to the conversation first")
    parser.add_argument("--no-patches", action="store_true", help="Rasa as installed (no connectors.rasa_patches)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("results/profile"))
    parser.add_argument("--quiet-header", action="store_true")
    args = parser.parse_args()
    return asyncio.run(profile(args))


if __name__ == "__main__":
    sys.exit(main())
