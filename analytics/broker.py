"""Rasa's event broker for conversation analytics (endpoints.yml ``event_broker``).

Rasa hands every new tracker event to ``publish`` from inside the conversation's turn
(the tracker store's ``save``). Nothing there may wait on storage or fail the turn, so
``publish`` only turns the event into a pseudonymous record (``analytics.records``) and
puts it on a bounded queue; one daemon thread writes batches to the store
(``analytics.store``). A store that is down costs log lines and, once the queue is full,
dropped records, never a slower or broken conversation::

    event_broker:
      type: analytics.broker.AnalyticsEventBroker
      collection: analytics_events        # MongoDB (MONGODB_URI or url)
      path: build/analytics/events.jsonl  # otherwise this file (ANALYTICS_PATH, when set, wins)
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import queue
import threading
import time
from asyncio import AbstractEventLoop
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

from analytics.records import Record, to_record
from analytics.store import DEFAULT_COLLECTION, AnalyticsStore, analytics_path_from_env, open_store
from banking.config import Settings

logger = logging.getLogger(__name__)

MAX_PENDING = 10_000
BATCH_SIZE = 500
RETRY_SECONDS = 5.0
_STOP = object()


class AnalyticsEventBroker(EventBroker):
    """Records pseudonymous analytics events off the conversation's path."""

    def __init__(self, store: AnalyticsStore, salt: str, *, max_pending: int = MAX_PENDING) -> None:
        self.store = store
        self._salt = salt
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._sequence = itertools.count()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self.dropped = 0
        self.failed_writes = 0

    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig, event_loop: AbstractEventLoop | None = None
    ) -> AnalyticsEventBroker:
        options = dict(broker_config.kwargs)
        store = open_store(
            broker_config.url,
            collection=str(options.get("collection") or DEFAULT_COLLECTION),
            path=analytics_path_from_env() or options.get("path") or None,  # the env wins
        )
        logger.info("Conversation analytics go to %s", store.describe())
        return cls(store, Settings.from_env(os.environ).user_id_salt)

    def publish(self, event: dict[str, Any]) -> None:
        """Queue the event's record; never raises, never blocks."""
        try:
            record = to_record(event, self._salt)
            if record is None:
                return
            record["seq"] = next(self._sequence)
            self._ensure_writer()
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("Analytics queue full: %d records dropped so far", self.dropped)
        except Exception as error:  # analytics must never break a conversation
            logger.warning("Analytics event not recorded (%s)", type(error).__name__)

    def is_ready(self) -> bool:
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record was handed to the store (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    async def close(self) -> None:
        """Write what is queued (briefly) and stop the writer."""
        writer = self._writer
        if writer is None:
            return
        try:
            self._queue.put(_STOP, timeout=1.0)
        except queue.Full:
            return
        await _to_thread_join(writer, 5.0)

    # ------------------------------------------------------------ writer thread

    def _ensure_writer(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            return
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_forever, name="analytics-writer", daemon=True)
                self._writer.start()

    def _write_forever(self) -> None:
        while True:
            first = self._queue.get()
            batch: list[Record] = []
            stop = first is _STOP
            if not stop:
                batch.append(first)
            while not stop and len(batch) < BATCH_SIZE:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                else:
                    batch.append(item)
            self._write(batch)
            for _ in range(len(batch) + (1 if stop else 0)):
                self._queue.task_done()
            if stop:
                return

    def _write(self, batch: list[Record]) -> None:
        if not batch:
            return
        try:
            self.store.append(batch)
        except Exception as error:
            self.failed_writes += 1
            logger.warning("Analytics store write failed (%s); %d records lost", type(error).__name__, len(batch))
            time.sleep(min(RETRY_SECONDS, 0.1 * self.failed_writes))  # a dead store is not hammered


async def _to_thread_join(thread: threading.Thread, timeout: float) -> None:
    await asyncio.to_thread(thread.join, timeout)

