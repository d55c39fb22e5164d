"""Background work for the webhook: one user's messages in arrival order, users side by side.

Meta wants a 200 within seconds, and Rasa may take longer than that, so the
webhook only queues work here. Each sender has a FIFO lane drained by one task;
a lane disappears when it runs dry, so idle users cost nothing. Every task is
kept in a set until it ends (asyncio holds only weak references to tasks), and
a job that raises is logged and does not stop the lane. Calls made beside a message
(read receipts with their typing indicator) go through ``SideCalls``: in the
background, a bounded number at once, never awaited by the message itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[Any]]


class SenderLanes:
    """Run jobs one at a time per key, in submission order, and keys concurrently."""

    def __init__(self, describe: Callable[[str], str] = lambda key: "a sender") -> None:
        self._lanes: dict[str, deque[Job]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._describe = describe  # how a key may appear in logs (never the key itself)

    def submit(self, key: str, job: Job) -> None:
        """Queue ``job`` behind the key's earlier jobs; must be called from the event loop."""
        lane = self._lanes.get(key)
        if lane is not None:
            lane.append(job)
            return
        lane = deque([job])
        self._lanes[key] = lane
        self.spawn(self._drain(key, lane))

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a coroutine in the background, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    async def _drain(self, key: str, lane: deque[Job]) -> None:
        try:
            while lane:
                job = lane.popleft()
                try:
                    await job()
                except Exception as exc:  # a failed message must not block the user's next one
                    logger.error("Handling a WhatsApp message for %s failed (%s)", self._describe(key),
                                 type(exc).__name__, exc_info=exc)
        finally:
            # No await between the emptiness check and this, so no job can slip in unseen.
            if self._lanes.get(key) is lane:
                del self._lanes[key]

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("Background WhatsApp task failed (%s)", type(task.exception()).__name__,
                         exc_info=task.exception())

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def join(self, timeout: float | None = None) -> bool:
        """Wait until all queued work is done (including work queued meanwhile); False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._tasks:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    async def cancel(self) -> None:
        """Stop all background work (at shutdown, after ``join`` gave up)."""
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()


class SideCalls:
    """Best-effort calls beside a customer's message (a read receipt, a typing indicator), never in its way.

    Each runs in the background (``SenderLanes.spawn``, so shutdown waits for it too): at most
    ``limit`` at once, up to ``backlog`` more waiting for a free slot. Beyond that a call is
    dropped and counted, since a late receipt is worth little and a burst must not pile up
    thousands of them. A call that raises is logged; nothing it does reaches the message.
    """

    def __init__(self, lanes: SenderLanes, limit: int = 8, backlog: int = 256) -> None:
        if limit < 1 or backlog < 0:
            raise ValueError("limit must be at least 1 and backlog not negative")
        self._lanes = lanes
        self.limit = limit
        self.backlog = backlog
        self._slots: asyncio.Semaphore | None = None  # made inside the running loop
        self.pending = 0
        self.dropped = 0

    def submit(self, purpose: str, call: Job) -> bool:
        """Start ``call`` in the background (from the event loop); False when it was dropped."""
        if self.pending >= self.limit + self.backlog:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                logger.warning("WhatsApp %s dropped: %d calls beside messages already waiting (%d dropped so far)",
                               purpose, self.pending, self.dropped)
            return False
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        self.pending += 1
        self._lanes.spawn(self._run(purpose, call, self._slots))
        return True

    async def _run(self, purpose: str, call: Job, slots: asyncio.Semaphore) -> None:
        try:
            async with slots:
                await call()
        except Exception as exc:  # logged here: the message it was made for goes on regardless
            logger.error("WhatsApp %s failed (%s)", purpose, type(exc).__name__, exc_info=exc)
        finally:
            self.pending -= 1
