"""What the reliability and security scenarios share: the channel served on 127.0.0.1, the
banking core on an in-memory database, and the ``Outcome`` each scenario returns.

Each scenario builds what it needs (the channel mounted in a real Sanic app on
127.0.0.1, the sandbox's Graph API served by checks/whatsapp_fakes.py, in-memory MongoDB, the banking
core with the sandbox bank), runs, and returns an ``Outcome``: figures to print
and a list of problems (empty when everything held). Nothing here talks to the
network beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sanic import Sanic

from banking.config import Settings
from banking.crypto import Keyring
from banking.sandbox import SandboxProvider
from banking.service import BankingService
from banking.store import ensure_indexes, in_memory_database
from checks.whatsapp_fakes import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    TOKEN,
    VERIFY_TOKEN,
    FakeGraphApi,
    RecordingAgent,
    WebhookServer,
)
from connectors.whatsapp import WhatsAppConfig, WhatsAppInput
from connectors.whatsapp.graph import RetryPolicy
from connectors.whatsapp.ratelimit import RateLimitConfig

SALT = "reliability-salt-4f1c9e2a7b"
KEY_HEX = "9c3e71a04bd25f86e1a7c0394d8b62f5a17e4c09b3d86f2e5a0c71b94e3d28f6"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.5, total_timeout=5.0)
DEFAULT_LIMIT_KOBO = Settings().daily_transfer_limit_kobo


@dataclass
class Outcome:
    """What one scenario measured, and what (if anything) went wrong."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)

    def lines(self) -> list[str]:
        width = max((len(name) for name in self.figures), default=0)
        verdict = "ok" if not self.problems else f"{len(self.problems)} PROBLEM(S)"
        lines = [f"{self.name} ({self.seconds:.1f} s): {verdict}"]
        lines += [f"  {name:<{width}}  {value}" for name, value in self.figures.items()]
        lines += [f"  ! {problem}" for problem in self.problems[:20]]
        return lines


def sender_number(index: int) -> str:
    """A distinct Nigerian WhatsApp id (13 digits) per simulated user."""
    return f"234809{index:07d}"


def channel_config(graph: FakeGraphApi, rate_limit: RateLimitConfig | None = None) -> WhatsAppConfig:
    return WhatsAppConfig(
        phone_number_id=PHONE_NUMBER_ID, api_token=TOKEN, verify_token=VERIFY_TOKEN, app_secret=APP_SECRET,
        api_url=graph.api_url, user_id_salt=SALT, rate_limit=rate_limit or RateLimitConfig(),
    )


@contextlib.asynccontextmanager
async def served_channel(rate_limit: RateLimitConfig | None = None, *, graph: FakeGraphApi | None = None,
                         retry: RetryPolicy = FAST_RETRY, database: Any = None,
                         agent: RecordingAgent | None = None, **options: Any) -> Any:
    """The fake Graph API, a channel on it, and a Sanic app serving the channel; all stopped afterwards.

    Yields (graph, channel, server); ``options`` go to WhatsAppInput (e.g. a ``rate_limiter``)."""
    graph = graph or FakeGraphApi()
    await graph.start()
    # Sanic 21.12 rewrites its protocol methods when an app starts; test mode keeps a second app working.
    previous_mode = Sanic.test_mode
    Sanic.test_mode = True
    channel = WhatsAppInput(channel_config(graph, rate_limit), database=database or in_memory_database(),
                            retry=retry, **options)
    server = WebhookServer(channel, agent or RecordingAgent())
    try:
        await server.start()
        yield graph, channel, server
    finally:
        await server.stop()
        await graph.stop()
        Sanic.test_mode = previous_mode


@contextlib.contextmanager
def captured_logs(*names: str, level: int = logging.INFO) -> Iterator[list[logging.LogRecord]]:
    """Every record at ``level`` or above from the named loggers, while the block runs."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level)
    loggers = [logging.getLogger(name) for name in names]
    previous = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > level:
            logger.setLevel(level)
    try:
        yield records
    finally:
        for logger, old_level in previous:
            logger.removeHandler(handler)
            logger.setLevel(old_level)


@contextlib.contextmanager
def tight_thread_switching() -> Iterator[None]:
    """Switch threads as often as possible so races between confirmations actually happen."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def new_bank(db: Any = None, *, clock: Callable[[], datetime] | None = None,
             limit_kobo: int = DEFAULT_LIMIT_KOBO) -> BankingService:
    if db is None:
        db = in_memory_database()
        ensure_indexes(db)
    options: dict[str, Any] = {"keyring": Keyring(bytes.fromhex(KEY_HEX))}
    if clock is not None:
        options["clock"] = clock
    return BankingService(db, SandboxProvider(), Settings(user_id_salt=SALT, daily_transfer_limit_kobo=limit_kobo),
                          **options)


def payee(rng: random.Random) -> str:
    """A well-formed NUBAN the sandbox resolves (never the magic 000/999 prefixes)."""
    return f"{rng.randint(1, 8)}{rng.randrange(10**8, 10**9)}"
