"""``GET /health`` on the channel's server, for operators and load balancers.

Registered by the WhatsApp channel when Rasa mounts it (``register_health``). Answers
200 when everything is up and 503 otherwise, with one entry per part::

    {"status": "ok" | "degraded",
     "model": {"status", "model_id"},
     "tracker_store": {"status", "backend"},
     "action_server": {"status"},
     "bank_provider": {"status", "provider", "configured"}}

No secret, URL, host name or customer figure is ever part of it. The bank provider runs
in the action server; here it is reported from configuration (which provider, and whether
its credentials are set), not by calling the bank.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from banking.config import Settings
from banking.errors import ConfigError
from banking.providers import provider_setting_problems
from banking.store import SerializedDatabase

logger = logging.getLogger(__name__)

ROUTE = "/health"
CHECK_TIMEOUT_SECONDS = 2.0
ACTION_PROBE_CACHE_SECONDS = 5.0
MAX_WRAPPERS = 5



def register_health(app: Sanic) -> None:
    """Adds the route once, however many times the channel is mounted."""
    if any(route.path.strip("/") == ROUTE.strip("/") for route in app.router.routes):
        return
    app.add_route(health, ROUTE, methods=["GET"], name="banking_health")


async def health(request: Request) -> HTTPResponse:
    agent = getattr(request.app.ctx, "agent", None)
    tracker_check, action_check = await asyncio.gather(tracker_store_status(agent),
                                                       cached_action_server_status(request.app.ctx, agent))
    checks = {
        "model": model_status(agent),
        "tracker_store": tracker_check,
        "action_server": action_check,
        "bank_provider": bank_provider_status(os.environ),
    }
    healthy = all(check["status"] == "ok" for check in checks.values())
    return response.json({"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503,
                         headers={"Cache-Control": "no-store"})


def model_status(agent: Any) -> dict[str, Any]:
    is_ready = getattr(agent, "is_ready", None)
    if not callable(is_ready) or not is_ready():
        return {"status": "down", "model_id": None}
    return {"status": "ok", "model_id": getattr(agent, "model_id", None)}


async def tracker_store_status(agent: Any) -> dict[str, Any]:
    store = real_tracker_store(getattr(agent, "tracker_store", None))
    if store is None:
        return {"status": "down", "backend": None}
    backend = type(store).__name__
    database = getattr(store, "db", None)
    if database is None:
        return {"status": "ok", "backend": backend}
    if isinstance(database, SerializedDatabase):
        return {"status": "ok", "backend": f"{backend} (in memory)"}
    try:
        await asyncio.wait_for(asyncio.to_thread(database.command, "ping"), CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # any failure is "down"; the reason goes to the log, not the answer
        logger.warning("health: the tracker store did not answer a ping (%s)", type(error).__name__)
        return {"status": "down", "backend": backend}
    return {"status": "ok", "backend": backend}


def real_tracker_store(store: Any) -> Any:
    """The store that holds the trackers: Rasa wraps it (FailSafeTrackerStore, AwaitableTrackerStore),
    each wrapper keeping the one inside in ``_tracker_store``."""
    for _ in range(MAX_WRAPPERS):
        inner = getattr(store, "_tracker_store", None)
        if inner is None:
            break
        store = inner
    return store


async def cached_action_server_status(holder: Any, agent: Any) -> dict[str, Any]:
    """The action server's answer, asked at most once every ACTION_PROBE_CACHE_SECONDS per server, so
    a flood of /health requests is not a flood of requests to the action server."""
    url = getattr(getattr(agent, "action_endpoint", None), "url", None)
    cached = getattr(holder, "health_action_probe", None)
    now = time.monotonic()
    if cached is not None and cached[1] == url and now - cached[0] < ACTION_PROBE_CACHE_SECONDS:
        return dict(cached[2])
    lock = getattr(holder, "health_action_lock", None)
    if lock is None:
        lock = holder.health_action_lock = asyncio.Lock()
    async with lock:
        cached = getattr(holder, "health_action_probe", None)
        if cached is not None and cached[1] == url and time.monotonic() - cached[0] < ACTION_PROBE_CACHE_SECONDS:
            return dict(cached[2])
        result = await action_server_status(agent)
        holder.health_action_probe = (time.monotonic(), url, result)
        return dict(result)


async def action_server_status(agent: Any) -> dict[str, Any]:
    endpoint = getattr(agent, "action_endpoint", None)
    url = getattr(endpoint, "url", None)
    if not url:
        return {"status": "not configured"}
    health_url = url.rsplit("/webhook", 1)[0].rstrip("/") + "/health"
    try:
        timeout = aiohttp.ClientTimeout(total=CHECK_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(health_url) as answer:
            return {"status": "ok" if answer.status == 200 else "down"}
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        logger.warning("health: the action server did not answer (%s)", type(error).__name__)
        return {"status": "down"}


def bank_provider_status(environ: Mapping[str, str]) -> dict[str, Any]:
    """Which provider, and whether its settings are complete and (in production) safe; the problems
    themselves go to the log, never into the answer."""
    try:
        provider = Settings.from_env(environ).bank_provider
    except ConfigError:
        return {"status": "down", "provider": None, "configured": False}
    problems = provider_setting_problems(environ)
    if problems:
        logger.debug("health: the bank provider is misconfigured: %s", "; ".join(problems))
    configured = not problems
    return {"status": "ok" if configured else "down", "provider": provider, "configured": configured}
