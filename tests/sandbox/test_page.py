"""The chat page's own files: served by the sandbox, self-contained (no CDN, no external
asset), and wired to the page API."""

from __future__ import annotations

import re

from tests.sandbox.sandbox_fakes import Stack


async def fetch(stack: Stack, path: str) -> tuple[int, str, str]:
    async with stack.http.get(f"{stack.base}{path}") as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def test_the_page_and_its_assets_are_served(stack: Stack) -> None:
    status, content_type, html = await fetch(stack, "/")
    assert status == 200 and content_type.startswith("text/html")
    assert 'src="/static/chat.js"' in html and 'href="/static/chat.css"' in html
    for asset, kind in (("/static/chat.js", "javascript"), ("/static/chat.css", "text/css")):
        status, content_type, _ = await fetch(stack, asset)
        assert status == 200 and kind in content_type


async def test_the_page_loads_nothing_from_outside(stack: Stack) -> None:
    for path in ("/", "/static/chat.js", "/static/chat.css"):
        _, _, text = await fetch(stack, path)
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), path
        assert not re.search(r"""url\(\s*["']?(https?:)?//""", text), path
        assert "@import" not in text and "cdn" not in text.lower()


async def test_state_lists_the_simulated_users_and_the_bot_webhook(stack: Stack) -> None:
    async with stack.http.get(f"{stack.base}/api/state") as response:
        state = await response.json()

    assert [(u["wa_id"], u["name"]) for u in state["users"]] == [
        ("2348000000001", "Ada Okafor"),
        ("2348000000002", "Tunde Bakare"),
    ]
    assert state["bot_webhook_url"] == stack.bot.webhook_url
    assert state["graph_api_url"] == stack.config.graph_api_url
    assert stack.config.access_token not in str(state) and stack.config.app_secret not in str(state)
