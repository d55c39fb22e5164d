"""The fake Meta's aiohttp application: the Graph API and the chat page over one running
``Sandbox``, and the server that serves them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web

from sandbox.config import SandboxConfig, check_allowed
from sandbox.fake_meta import page_api
from sandbox.fake_meta.graph_api import MAX_UPLOAD_BYTES, GraphApi
from sandbox.fake_meta.state import DEFAULT_USERS
from sandbox.fake_meta.webhooks import Sandbox

GRAPH_KEY = web.AppKey("graph", GraphApi)


def create_app(
    config: SandboxConfig,
    *,
    environ: Mapping[str, str] | None = None,
    users: Sequence[tuple[str, str]] = DEFAULT_USERS,
) -> web.Application:
    """The fake Meta and chat page; refuses where ``ENVIRONMENT=production``."""
    check_allowed(os.environ if environ is None else environ)
    sandbox = Sandbox(config, users)
    app = web.Application(client_max_size=MAX_UPLOAD_BYTES)

    async def on_startup(app: web.Application) -> None:
        await sandbox.start()

    async def on_shutdown(app: web.Application) -> None:
        sandbox.close_streams()

    async def on_cleanup(app: web.Application) -> None:
        await sandbox.stop()

    # The ignores: aiohttp 3.9 types its signals for aiosignal < 1.4, and 1.4 made Signal generic another way.
    app.on_startup.append(on_startup)  # type: ignore[arg-type]
    app.on_shutdown.append(on_shutdown)  # type: ignore[arg-type]
    app.on_cleanup.append(on_cleanup)  # type: ignore[arg-type]

    graph = GraphApi(sandbox)
    app[GRAPH_KEY] = graph
    graph.add_routes(app)
    page_api.add_routes(app, sandbox)
    return app


@dataclass
class RunningSandbox:
    """A started sandbox server; ``config.port`` is the real port (also when asked for 0).

    ``graph`` records the bot's Graph API calls and takes scripted faults (fail, refuse, stall).
    """

    runner: web.AppRunner
    sandbox: Sandbox
    graph: GraphApi

    @property
    def config(self) -> SandboxConfig:
        return self.sandbox.config

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_server(
    config: SandboxConfig,
    *,
    environ: Mapping[str, str] | None = None,
    users: Sequence[tuple[str, str]] = DEFAULT_USERS,
) -> RunningSandbox:
    """Start the sandbox on ``config.host``/``config.port`` (0 picks a free port)."""
    app = create_app(config, environ=environ, users=users)
    # No access log: page API paths carry the simulated users' phone numbers.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    sandbox = app[page_api.SANDBOX_KEY]
    with contextlib.suppress(IndexError, TypeError):
        sandbox.config = config.with_port(int(runner.addresses[0][1]))
    return RunningSandbox(runner=runner, sandbox=sandbox, graph=app[GRAPH_KEY])
