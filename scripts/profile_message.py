"""Where the Rasa process spends its time on one customer message: cProfile of ``Agent.handle_message``.

    PYTHONPATH=. RASA_TELEMETRY_ENABLED=false .venv/bin/python scripts/profile_message.py \
        [--model M] [-n 30] [--text "what is my balance"] [--history 0] [--old-sessions 0] [--no-patches]
        [--charts] [--pause 0] [--top 25] [--out results/profile]

Starts the action server on a free loopback port (as ``checks/stack.py`` does, with a
throwaway token), loads the model in this process with the project's endpoints (the
encrypted tracker store in memory, the action endpoint on that port), applies the
project's Rasa patches as ``connectors/rasa_server.py`` does (``--no-patches`` leaves Rasa
as installed, for a before/after), optionally stores ``--old-sessions`` earlier sessions of
10 events each (a day apart, long ago: a conversation Meta kept going for months), connects
one customer to GTBank, optionally adds ``--history`` turns to the current session, then
sends ``-n`` messages unprofiled, counting the CPU time of both processes (this one, where Rasa
runs, and the action server), then profiles ``-n`` more. Prints CPU milliseconds per message of
each process, wall time per message and the functions with the most cumulative and own time
(``--top 0``: none); writes the raw profile (``pstats``) under ``--out``. ``--charts`` lets the
action server draw spending charts (CHART_BASE_URL and CHART_DIR in a temporary directory), for
``--text "show me a breakdown of my spending"``; ``--pause`` waits between messages, so what the
action server does after answering (drawing that chart) does not slow the next message.

How cost grows with the conversation: ``--old-sessions 0`` against ``--old-sessions 50``
(10 events against 500).
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

from checks.processes import cpu_seconds
from checks.stack import (
    HOST,
    MODEL,
    STARTUP_TIMEOUT,
    free_port,
    launch,
    rasa_executable,
    server_environment,
    wait_until_ready,
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
    for name in ("MONGODB_URI", "ENCRYPTION_KEY", "CHART_BASE_URL", "CHART_DIR", "GROQ_API_KEY"):
        os.environ.pop(name, None)
    action_port = free_port()
    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        workdir = Path(tmp)
        charts = {"CHART_BASE_URL": "http://127.0.0.1:9/charts", "CHART_DIR": str(workdir / "charts")}
        env = server_environment({}, {"ACTION_SERVER_TOKEN": token, **(charts if args.charts else {})})
        actions = launch("action server", [rasa_executable(), "run", "actions", "--actions", "actions",
                                           "--port", str(action_port)], env, workdir / "actions.log")
        try:
            await wait_until_ready([actions], f"http://{HOST}:{action_port}/health",
                                    time.monotonic() + STARTUP_TIMEOUT)
            endpoints = AvailableEndpoints.read_endpoints(str(write_endpoints(workdir, action_port)))
            agent = await load_agent(model_path=str(args.model), endpoints=endpoints)

            async def say(text: str) -> list[dict]:
                output = CollectingOutputChannel()
                await agent.handle_message(UserMessage(text, output, CUSTOMER, input_channel="rest"))
                return output.messages

            await seed_old_sessions(agent.tracker_store, args.old_sessions)
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
            full = await agent.tracker_store.retrieve_full_tracker(CUSTOMER)
            stored = len(full.events) if full else 0
            action_pid = actions.process.pid
            rasa_cpu, action_cpu = time.process_time(), cpu_seconds(action_pid)
            walls = []
            for _ in range(args.count):
                started = time.perf_counter()
                await say(args.text)
                walls.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(args.pause)
            await asyncio.sleep(max(0.5, args.pause))  # work the action server does after answering counts too
            rasa_ms = (time.process_time() - rasa_cpu) * 1000 / args.count
            action_ms = (cpu_seconds(action_pid) - action_cpu) * 1000 / args.count
            profiler = cProfile.Profile()
            timings = []
            for _ in range(args.count):
                started = time.perf_counter()
                profiler.enable()
                await say(args.text)
                profiler.disable()
                timings.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(args.pause)
        finally:
            await actions.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    label = "unpatched" if args.no_patches else "patched"
    path = args.out / f"handle_message_{label}_h{args.history}_s{args.old_sessions}.pstats"
    profiler.dump_stats(str(path))
    print(f"CPU per message, unprofiled: Rasa process {rasa_ms:.1f} ms, action server {action_ms:.1f} ms; "
          f"answered in median {statistics.median(walls):.1f} ms, max {max(walls):.1f} ms")
    print(f"{args.count} x {args.text!r} ({'Rasa as installed' if args.no_patches else 'with the project patches'}, "
          f"{events} events in the session, {stored} in the conversation): median {statistics.median(timings):.1f} ms, "
          f"max {max(timings):.1f} ms; profile in {path}")
    for order in ("cumulative", "tottime") if args.top else ():
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(args.top)
        print(text.getvalue().split("\n", 6)[-1] if args.quiet_header else text.getvalue())
    return 0


async def seed_old_sessions(store: object, sessions: int) -> None:
    """``sessions`` earlier sessions of 10 events, a day apart and ending 30 days ago."""
    from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered

    start = time.time() - (sessions + 30) * 86_400
    for day in range(sessions):
        at = start + day * 86_400
        tracker = await store.get_or_create_tracker(CUSTOMER, append_action_listen=False)  # type: ignore[attr-defined]
        for event in (
            ActionExecuted("action_session_start", timestamp=at), SessionStarted(timestamp=at),
            ActionExecuted("action_listen", timestamp=at),
            UserUttered("hi", {"name": "greet", "confidence": 1.0}, timestamp=at + 1),
            ActionExecuted("utter_greet", timestamp=at + 1), BotUttered("Hello!", timestamp=at + 1),
            ActionExecuted("action_listen", timestamp=at + 1),
            UserUttered("thanks", {"name": "thank_you", "confidence": 1.0}, timestamp=at + 2),
            BotUttered("You're welcome", timestamp=at + 2), ActionExecuted("action_listen", timestamp=at + 2),
        ):
            tracker.update(event)
        await store.save(tracker)  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("-n", "--count", type=int, default=30)
    parser.add_argument("--text", default="what is my balance")
    parser.add_argument("--history", type=int, default=0, help="turns added to the current session first")
    parser.add_argument("--old-sessions", type=int, default=0, help="earlier sessions (10 events each) stored first")
    parser.add_argument("--no-patches", action="store_true", help="Rasa as installed (no connectors.rasa_patches)")
    parser.add_argument("--charts", action="store_true", help="the action server draws spending charts")
    parser.add_argument("--pause", type=float, default=0.0,
                        help="seconds between messages (not counted): work left after an answer is done first")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("results/profile"))
    parser.add_argument("--quiet-header", action="store_true")
    args = parser.parse_args()
    return asyncio.run(profile(args))


if __name__ == "__main__":
    sys.exit(main())
