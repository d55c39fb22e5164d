"""The review queue for designers (`make review-queue`): NLU YAML of what the assistant did not understand.

    python scripts/review_queue.py [--out results/review_queue.yml] [--threshold 0.7] [--events export.jsonl]

Reads the stored conversations from the tracker store in endpoints.yml's place (MongoDB at
MONGODB_URI, opened with ENCRYPTION_KEY), or Rasa events as JSON lines (``--events``: what
`rasa export` sends to a file event broker). Writes only the --out file; never data/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from analytics.review_queue import DEFAULT_THRESHOLD, collect, to_nlu_yaml
from banking.config import mongodb_uri_from_env


def events_from_file(path: Path) -> list[list[dict[str, Any]]]:
    """Conversations from JSON lines of Rasa events with a ``sender_id``."""
    conversations: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            event = json.loads(line)
            conversations[str(event.get("sender_id"))].append(event)
    return list(conversations.values())


async def events_from_store(store: Any) -> list[list[dict[str, Any]]]:
    """Every stored conversation's events (all sessions)."""
    conversations = []
    for sender in await store.keys():
        tracker = await store.retrieve_full_tracker(sender)
        if tracker is not None:
            conversations.append([event.as_dict() for event in tracker.events])
    return conversations


def open_tracker_store() -> Any:
    from rasa.shared.core.domain import Domain

    from connectors.tracker_store import EncryptedMongoTrackerStore

    return EncryptedMongoTrackerStore(Domain.load("domain"))


def main(argv: list[str] | None = None, *, store: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("results/review_queue.yml"))
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--events", type=Path, help="Rasa events as JSON lines instead of the tracker store")
    args = parser.parse_args(argv)
    if args.out.resolve().is_relative_to(Path("data").resolve()):
        parser.error("the review queue never goes into data/: a designer moves examples there by hand")

    conversations: Iterable[list[dict[str, Any]]]
    if args.events:
        conversations = events_from_file(args.events)
    elif store is not None or mongodb_uri_from_env():
        conversations = asyncio.run(events_from_store(store or open_tracker_store()))
    else:
        print("MONGODB_URI is unset: the conversations live in the running server's memory, so there is "
              "nothing to read here. Set MONGODB_URI (and ENCRYPTION_KEY) or pass --events.")
        conversations = []
    items = collect(conversations, args.threshold)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(to_nlu_yaml(items, args.threshold), encoding="utf-8")
    by_intent: dict[str, int] = defaultdict(int)
    for item in items:
        by_intent[item.predicted] += 1
    print(f"{len(items)} messages to review ({', '.join(f'{k} {v}' for k, v in sorted(by_intent.items())) or 'none'})"
          f" -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
