"""Spending charts on the WhatsApp channel: which image URLs are ours, and the files behind them.

The action server writes each chart as ``CHART_DIR/<24-character token>.png`` and hands
Rasa ``CHART_BASE_URL/<name>`` (``assistant_llm.charts.ChartStore``). The channel runs
on the same machine and reads the file back: it uploads it to the Graph API and sends
the image by media id, so Meta never has to reach us; if the upload fails it sends the
link, which the channel answers at ``/webhooks/whatsapp/charts/<name>``. Only names
shaped like the store's are ever looked up, so no other file can be named; chart names
are capabilities and are not logged. Nothing is read from a CHART_DIR that is not
private to this user (``assistant_llm.charts.private_directory``).

The action server draws a chart after its answer has gone: while ``<name>.pending``
lies beside the missing PNG, the channel waits for it (``wait_for_chart``, at most
CHART_WAIT_SECONDS), so the text reaches the customer first and the chart after it;
``<name>.failed`` means it will not come, and nothing is sent.
"""

from __future__ import annotations

import asyncio
import logging
import re

from assistant_llm.charts import ChartStore, UnsafeChartDirectory, private_directory

logger = logging.getLogger(__name__)

CHART_NAME = re.compile(r"[A-Za-z0-9_-]{24}\.png")  # secrets.token_urlsafe(18) + ".png"
CHART_MIME_TYPE = "image/png"
UPLOAD_FILENAME = "spending-chart.png"  # Meta need not learn the file's token
CHART_WAIT_SECONDS = 15.0  # how long a chart still being drawn is waited for
_POLL_SECONDS = 0.05


def is_chart_name(name: str) -> bool:
    return isinstance(name, str) and CHART_NAME.fullmatch(name) is not None


def chart_name(store: ChartStore, url: str) -> str | None:
    """The chart's name when ``url`` is one the store hands out (``CHART_BASE_URL/<name>``), else None."""
    if not store.base_url or not isinstance(url, str):
        return None
    prefix = f"{store.base_url}/"
    if not url.startswith(prefix):
        return None
    name = url[len(prefix) :]
    return name if is_chart_name(name) else None


def load_chart(store: ChartStore, name: str) -> bytes | None:
    """The PNG called ``name`` in the store's directory; None for any other name or a file that is gone."""
    if not is_chart_name(name):
        return None
    path = store.directory / name
    try:
        private_directory(store.directory, create=False)
        if path.is_symlink() or not path.is_file():
            return None
        return path.read_bytes()
    except UnsafeChartDirectory as error:
        logger.error("Spending chart not read: %s", error)
        return None
    except FileNotFoundError:  # no directory yet, or pruned between the check and the read
        return None
    except OSError as exc:
        logger.warning("A spending chart could not be read (%s)", type(exc).__name__)
        return None


async def read_chart(store: ChartStore, name: str) -> bytes | None:
    """``load_chart`` off the event loop."""
    if not is_chart_name(name):
        return None
    return await asyncio.get_running_loop().run_in_executor(None, load_chart, store, name)


def chart_state(store: ChartStore, name: str) -> str:
    """"drawn" (the PNG is there), "pending" (the action server is still drawing it), "failed" (it
    will not be drawn) or "missing" (no such chart, or pruned)."""
    if not is_chart_name(name):
        return "missing"
    path = store.directory / name
    try:
        if path.is_file() and not path.is_symlink():
            return "drawn"
        for state in ("pending", "failed"):
            mark = path.with_suffix(f".{state}")
            if mark.is_file() and not mark.is_symlink():
                return state
    except OSError:
        pass
    return "missing"


async def wait_for_chart(store: ChartStore, name: str, timeout: float = CHART_WAIT_SECONDS) -> str:
    """``chart_state`` once the chart is no longer being drawn, or "pending" still after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = _POLL_SECONDS / 2
    while True:
        state = await loop.run_in_executor(None, chart_state, store, name)
        if state != "pending" or loop.time() >= deadline:
            return state
        await asyncio.sleep(min(delay, max(deadline - loop.time(), 0)))
        delay = min(delay * 2, 0.5)
